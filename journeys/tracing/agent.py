"""The trace agent as the run sees it: is it there, and ddtrace's complaints about it kept to one
warning per process."""

from __future__ import annotations

import logging
import os

from journeys.tracing.settings import TRUE
from payment_contract.trace_agent import agent_connection, send_empty_upload


class OneWarning(logging.Handler):
    """Turns ddtrace's log output into at most one warning per process (on ``owner``)."""

    def __init__(self, owner: logging.Logger) -> None:
        super().__init__(logging.WARNING)
        self.owner = owner
        self.warned = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.warned:
            return
        self.warned = True
        try:
            message = record.getMessage().splitlines()[0][:300]
        except Exception:  # noqa: BLE001  (a malformed record must not break logging)
            message = str(record.msg)[:300]
        self.owner.warning(
            "tracing: ddtrace reported a problem, traces may be lost (further ddtrace messages are "
            "hidden; set DD_TRACE_DEBUG=true to see them): %s",
            message,
        )


def quiet_ddtrace_logs(owner: logging.Logger) -> OneWarning | None:
    """An absent or failing agent must not flood a run's log: one warning, then silence.

    Returns the handler that keeps ddtrace's log to that warning (the same one when called again),
    or None with DD_TRACE_DEBUG=true, which leaves ddtrace's own debug logging alone.
    """
    if (os.environ.get("DD_TRACE_DEBUG") or "").lower() in TRUE:
        return None
    ddlog = logging.getLogger("ddtrace")
    ddlog.propagate = False
    for handler in ddlog.handlers:
        if isinstance(handler, OneWarning):
            return handler
    handler = OneWarning(owner)
    ddlog.addHandler(handler)
    return handler


#: How long the end of a run waits for the agent to take an upload of no traces.
ANSWER_WAIT_S = 0.5


def agent_problem(url: str, timeout: float = ANSWER_WAIT_S) -> str | None:
    """What keeps the trace agent at ``url`` from taking traces, or None when it takes an upload
    of no traces (a 2xx answer) within ``timeout`` s.

    The upload, not ``GET /info``: an agent whose intake is backed up still answers /info at
    once while every upload of ours waits ~20 s (and ddtrace waits for them at exit). An error
    status counts as a refusal: ddtrace resends a payload answered 4xx or 5xx for ~3 s, the
    last one at exit too. The answer reads as the end of "the trace agent at URL ...".
    """
    connection = agent_connection(url, timeout)
    try:
        answer = send_empty_upload(connection, url)
    except TimeoutError:
        return f"does not answer (an upload waited {timeout:g} s)"
    except Exception as exc:  # noqa: BLE001  (any failure means: not reachable)
        return f"is not reachable ({type(exc).__name__}: {exc})"
    finally:
        connection.close()
    if 200 <= answer.status < 300:
        return None
    return f"answers an upload with {answer.status} {answer.reason}".rstrip()
