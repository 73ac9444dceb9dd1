"""ddtrace's life in a Locust process: started once from the DD_* variables (``configure``), and
at the end of a run kept from holding the process when the agent is down."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys

from locust import events
from locust.runners import MasterRunner

from journeys.scrub import secrets_from_env
from journeys.tracing.agent import OneWarning, agent_problem, quiet_ddtrace_logs
from journeys.tracing.settings import (
    DDTRACE_DEFAULTS,
    WAY_OUT,
    Settings,
    SetupError,
    settings_from_env,
    setup_problem,
    start_failure,
)

log = logging.getLogger(
    "journeys.tracing"
)  # as before the package: logs keep their name


class _State:
    """Decided once per process by ``configure``; ``tracer`` is None while tracing is off."""

    def __init__(self) -> None:
        # Locust's parsed options (workers get the master's with each spawn)
        self.options = None
        self.settings: Settings | None = None
        self.tracer = None
        self.propagator = None
        self.secrets: tuple[str, ...] = ()
        self.log_handler: OneWarning | None = None
        # found at the end of the run (``quitting``), and the code Locust is about to exit with
        self.agent_down = False
        self.exit_code: int | None = None
        # a DD_* value tracing cannot run with (the run's checks stop the run for it)
        self.problem: str | None = None


state = _State()


def configure(environment=None) -> str:
    """Decide on/off from DD_* variables (once per process) and return the banner line.

    Safe to call again: the first call decides. With Locust's ``environment`` of a master (which
    runs no users) ddtrace is not started there; every worker configures itself. A DD_* value
    tracing cannot run with raises ``SetupError``.
    """
    if state.settings is not None:
        return state.settings.banner()
    problem = setup_problem(os.environ)
    if problem:
        raise SetupError(f"Tracing: {problem}: {WAY_OUT}.")
    settings = settings_from_env(os.environ)
    if settings.enabled and isinstance(
        getattr(environment, "runner", None), MasterRunner
    ):
        # a master runs no users: its workers trace their journeys
        state.settings = settings
        return settings.banner() + "; the workers send the traces"
    if settings.enabled:
        environ = dict(os.environ)  # as set: starting ddtrace rewrites some
        try:
            _start_ddtrace(settings)
        except Exception as exc:  # noqa: BLE001  (any refusal: said before any traffic)
            state.settings = Settings(False)
            raise SetupError(
                f"Tracing: {start_failure(exc, environ)}: {WAY_OUT}."
            ) from None
    state.settings = settings
    return settings.banner()


def _start_ddtrace(settings: Settings) -> None:
    for name in [
        k for k, v in os.environ.items() if k.startswith("DD_") and not v.strip()
    ]:
        del os.environ[name]  # empty means unset, for ddtrace too
    os.environ.update(
        DD_TRACE_ENABLED="true",
        DD_TRACE_AGENT_URL=settings.agent_url,
        DD_SERVICE=settings.service,
    )
    for name, value in DDTRACE_DEFAULTS.items():
        if (
            name == "DD_TRACE_PROPAGATION_STYLE_INJECT"
            and "DD_TRACE_PROPAGATION_STYLE" in os.environ
        ):
            continue  # the user chose the styles
        os.environ.setdefault(name, value)
    state.log_handler = quiet_ddtrace_logs(log)

    # ddtrace's tracer takes SIGTERM for itself: it shuts down (the journeys the stop cuts off are
    # never sent) and then kills the process by the signal, so `docker stop` or `timeout` ended a
    # run with 143 and no summary, CSV or verdict. Locust stops the run on SIGTERM and exits
    # normally; ddtrace's atexit hook flushes then. (Before journeys.ctrl_c's handlers: a Python
    # handler set after them would replace them, gevent's being below Python's.)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    from ddtrace.propagation.http import HTTPPropagator
    from ddtrace.trace import tracer

    for sig, handler in handlers.items():
        if handler is not None and signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)

    state.tracer, state.propagator, state.secrets = (
        tracer,
        HTTPPropagator,
        secrets_from_env(),
    )
    # after ddtrace's own exit hooks, so this one runs before them (atexit runs last-in first-out)
    atexit.register(_exit_without_waiting_for_ddtrace)


def enabled() -> bool:
    """True when tracing is on (decides first if nobody has)."""
    if state.settings is None:
        configure()
    return state.tracer is not None


def drop_unsent_if_agent_down() -> bool:
    """At the end of a run, forget buffered traces when the agent doesn't take them; True if so.

    ddtrace flushes its buffer at exit and resends to a failing agent for seconds (~3 s when it
    answers 500, about 20 s per send when it accepts connections but never answers); with the
    buffer empty that final flush is instant. A send already under way is cut short by
    ``_exit_without_waiting_for_ddtrace``. The agent is asked even when a send failed earlier:
    one back from a restart takes the last traces, those of the journeys the stop cut off.
    """
    if state.tracer is None:
        return False
    problem = agent_problem(state.settings.agent_url)
    if problem is None:
        return False
    if state.log_handler is not None:
        # ddtrace's complaints at exit would add nothing to this warning
        state.log_handler.warned = True
    log.warning(
        "tracing: the trace agent at %s %s; traces not sent yet are dropped",
        state.settings.agent_url,
        problem,
    )
    try:
        # ddtrace internals: best effort
        for client in state.tracer._span_aggregator.writer._clients:
            client.encoder.encode()
    except Exception:
        log.debug("tracing: could not drop unsent traces", exc_info=True)
    return True


#: How long the end of a run gives an agent that took the check's upload to take the last traces.
LAST_SEND_WAIT_S = 1.0


def _exit_without_waiting_for_ddtrace() -> None:
    """End the process once Locust is done with it, without waiting for ddtrace's writer.

    At process exit ddtrace joins its writer thread, and a send under way to an agent that
    accepts connections but never answers gives up only after ~20 s; one the agent refuses (a
    busy agent's 429, a 413) is resent for ~3 s. No setting shortens that for the agent
    transport. So once Locust has printed and written everything (its ``quit`` event came), the
    last traces get ``LAST_SEND_WAIT_S`` to reach an agent that took the end of run's check (none
    when it did not); if they could not, flush the logs and leave with Locust's exit code.
    """
    if state.exit_code is None:
        return
    if not state.agent_down:
        if _sent_within(LAST_SEND_WAIT_S):
            return  # nothing left for ddtrace's own exit to wait for
        log.warning(
            "tracing: the trace agent at %s did not take the last traces within %g s; "
            "they are dropped",
            state.settings.agent_url,
            LAST_SEND_WAIT_S,
        )
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110  (a closed stream has nothing left to flush)
            pass
    os._exit(state.exit_code)


def _sent_within(seconds: float) -> bool:
    """Send the traces ddtrace still holds; True when that ended within ``seconds``.

    The send runs in an OS thread (as ddtrace's own writer does): a greenlet blocked in
    ddtrace's native send would never let this wait end.
    """
    from gevent import monkey

    start_thread = monkey.get_original("_thread", "start_new_thread")
    done = monkey.get_original("_thread", "allocate_lock")()
    done.acquire()

    def send() -> None:
        try:
            state.tracer.flush()
        except Exception:  # ddtrace warns of its own failures
            log.debug("tracing: the last flush failed", exc_info=True)
        finally:
            done.release()

    start_thread(send, ())
    return done.acquire(timeout=seconds)


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    state.options = getattr(environment, "parsed_options", None)
    try:
        banner = configure(environment)
    except SetupError as exc:
        # the run's checks (journeys.run_checks) stop it before traffic
        state.problem = str(exc)
        return
    rate = getattr(state.options, "trace_sample_rate", 1.0)
    if state.settings is not None and state.settings.enabled and rate < 1.0:
        banner += f"; {rate:.0%} of journeys traced (--trace-sample-rate)"
    log.info(banner)


@events.quitting.add_listener
def _on_quitting(environment, **_kwargs) -> None:
    state.agent_down = drop_unsent_if_agent_down()


@events.quit.add_listener
def _on_quit(exit_code: int, **_kwargs) -> None:
    state.exit_code = exit_code


def setup_failure() -> str | None:
    """Why tracing cannot run with this process's ``DD_*`` values, else None. The run's checks
    (``journeys.run_checks``) act on it: a master or standalone run exits 2 before any traffic; a
    worker leaves at its first spawn, telling the master (which would wait for it forever)."""
    return state.problem
