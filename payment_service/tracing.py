"""Datadog APM for the reference service: continue the load generator's traces.

Call ``configure_tracing()`` before the FastAPI app is imported (``python -m payment_service`` does)::

    DD_TRACE_AGENT_URL=http://127.0.0.1:8126 python -m payment_service --port 8000 --db pay.sqlite

The rules are the generator's (``journeys/tracing/settings.py``): on when DD_TRACE_ENABLED=true or
DD_AGENT_HOST / DD_TRACE_AGENT_URL is set, off otherwise; DD_TRACE_ENABLED=false always wins; an
empty variable counts as unset. The service name defaults to ``payment-service``. When on, ddtrace's
FastAPI/Starlette and sqlite3 integrations trace every request and query; incoming ``x-datadog-*`` /
``traceparent`` headers make those spans children of the generator's attempt span. Card numbers and
the internal token are scrubbed from every span before it leaves the process. When off, ddtrace is
not imported. An agent that is down or never answers costs one warning line, at start
(``check_agent``) or when ddtrace first fails to send, and never holds up a request.
"""

from __future__ import annotations

import http.client
import logging
import os
import threading
from urllib.parse import quote, unquote, unquote_plus

from payment_contract import CARD_REDACTED, redact_card_numbers
from payment_contract.trace_agent import agent_connection, send_empty_upload

log = logging.getLogger(__name__)

DEFAULT_SERVICE = "payment-service"
OFF_BANNER = "tracing: off (set DD_TRACE_ENABLED=true or DD_AGENT_HOST to enable)"
DDTRACE_DEFAULTS = {
    "DD_TRACE_PROPAGATION_STYLE_EXTRACT": "datadog,tracecontext,baggage",
    "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
    "DD_REMOTE_CONFIGURATION_ENABLED": "false",
    "DD_TRACE_STARTUP_LOGS": "false",
    "DD_TRACE_LOG_STREAM_HANDLER": "false",
    "DD_TRACE_REMOVE_INTEGRATION_SERVICE_NAMES_ENABLED": "true",  # SQLite spans under payment-service
}
#: Seconds the service waits at exit for ddtrace's last send to the agent (ddtrace's own: 5).
SHUTDOWN_WAIT_S = 1
#: Seconds the start-up check waits for the agent to take an upload of no traces (ddtrace's
#: own timeout for a send: 2).
AGENT_WAIT_S = 2
#: The shortest token ``scrub`` redacts (a shorter one would redact ordinary words); the
#: service refuses to start with a shorter one.
MIN_TOKEN_LENGTH = 6
TOKEN_REDACTED = "[token redacted]"
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _get(name: str) -> str | None:
    return (os.environ.get(name) or "").strip() or None


def _agent_url() -> str | None:
    """The agent URL when tracing should be on, else None (same rules as journeys/tracing.py)."""
    flag = (_get("DD_TRACE_ENABLED") or "").lower()
    url, host = _get("DD_TRACE_AGENT_URL"), _get("DD_AGENT_HOST")
    if flag in _FALSE or not (flag in _TRUE or url or host):
        return None
    if url:
        return url
    host = host or "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{_get('DD_TRACE_AGENT_PORT') or '8126'}"


def configure_tracing() -> str:
    """Turn tracing on or off from DD_* env vars before the app is imported; returns a banner line."""
    url = _agent_url()
    if url is None:
        flag = _get("DD_TRACE_ENABLED")
        # it wins over an agent: say so, not "set DD_AGENT_HOST"
        off_by = (flag or "").lower() in _FALSE and f"DD_TRACE_ENABLED={flag}"
        return f"tracing: off ({off_by})" if off_by else OFF_BANNER
    service = _get("DD_SERVICE") or DEFAULT_SERVICE
    try:
        _start_ddtrace(url, service)
        _state["url"] = url
    except Exception as exc:  # noqa: BLE001  (tracing must never stop the service)
        return f"tracing: off (ddtrace failed to start: {type(exc).__name__}: {exc})"
    extra = "".join(
        f", {k} {v}"
        for k, v in (("env", _get("DD_ENV")), ("version", _get("DD_VERSION")))
        if v
    )
    return f"tracing: on → {url} (service {service}{extra})"


def _start_ddtrace(url: str, service: str) -> None:
    for name in [
        k for k, v in os.environ.items() if k.startswith("DD_") and not v.strip()
    ]:
        del os.environ[name]
    os.environ.update(
        DD_TRACE_ENABLED="true", DD_TRACE_AGENT_URL=url, DD_SERVICE=service
    )
    for name, value in DDTRACE_DEFAULTS.items():
        if (
            name == "DD_TRACE_PROPAGATION_STYLE_EXTRACT"
            and "DD_TRACE_PROPAGATION_STYLE" in os.environ
        ):
            # the user chose the styles (for both sides): ddtrace lets the _EXTRACT variable
            # win over it, so our default would read none of the generator's B3 headers
            continue
        os.environ.setdefault(name, value)
    _quiet_ddtrace_logs()

    import ddtrace
    from ddtrace.trace import TraceFilter, tracer

    class Scrubber(TraceFilter):
        """Replaces card numbers and the internal token in every span's resource and string tags."""

        def process_trace(self, trace):
            for span in trace:
                _scrub_trace_tags(span.context)
                if span.resource:
                    span.resource = scrub(span.resource)
                for key, value in list(span.get_tags().items()):
                    if isinstance(value, str):
                        # the request's URL as sent: its query string percent-encoded
                        clean = scrub_url(value) if key == "http.url" else scrub(value)
                        if clean != value:
                            span.set_tag(key, clean)
            return trace

    _require_trace_tags()
    ddtrace.patch(fastapi=True, starlette=True, sqlite3=True)
    tracer.configure(trace_processors=[Scrubber()])
    # ddtrace waits up to 5 s at exit for its last send: an agent that is down or never
    # answers held every stop that long; a local agent takes the last second's spans at once
    tracer.SHUTDOWN_TIMEOUT = SHUTDOWN_WAIT_S


def _require_trace_tags() -> None:
    """Refuse to trace when ddtrace's ``Context._meta`` (read by ``_scrub_trace_tags``) is gone:
    the scrubber would raise on every trace, and ddtrace logs a processor's error and sends the
    trace on unscrubbed."""
    from ddtrace.trace import Context

    meta = getattr(Context(), "_meta", None)
    if not isinstance(meta, dict):
        raise RuntimeError(  # noqa: TRY004  (ddtrace changed, not a caller's value)
            "this ddtrace has no Context._meta, where the span scrubber finds a client's "
            "baggage tags; install the ddtrace version requirements.txt names"
        )


def _scrub_trace_tags(context) -> None:
    """The trace-level tags a client's headers set (its ``baggage`` items, ``x-datadog-tags``),
    scrubbed: ddtrace puts them on the span after every trace filter has run."""
    # no public way to reach them before they are copied onto the span
    meta = context._meta
    for key, value in list(meta.items()):
        if isinstance(value, str):
            clean = scrub(value)  # baggage items come percent-decoded
            if clean != value:
                meta[key] = clean


def scrub(text: str) -> str:
    """``text`` without card numbers (13-19 Luhn-valid digits) or the internal token."""
    if not text:
        return text
    token = os.environ.get("PAYMENT_INTERNAL_TOKEN") or ""
    if len(token) >= MIN_TOKEN_LENGTH and token in text:
        text = text.replace(token, TOKEN_REDACTED)
    return redact_card_numbers(text)


#: what stays readable when a scrubbed URL is encoded again: RFC 3986's delimiters
_URL_DELIMITERS = ":/?#[]@!$&'()*+,;="


def scrub_url(url: str) -> str:
    """``url`` (or its path), percent-encoded as sent, scrubbed as ``scrub`` does, and of what
    its escapes hide from ``scrub``: a card number written with spaces (``4242%204242...``,
    ``4242+4242...`` in a query string) or glued to an escape's hex digits (``%20`` and 16
    digits read as 18 digits). When decoding it shows one, the decoded URL is scrubbed and
    encoded again (the redaction marks left readable); else it is kept as it was."""
    clean = scrub(url)
    if "%" not in url and "+" not in url:
        return clean
    path, mark, query = url.partition("?")
    decoded = unquote(path) + mark + unquote_plus(query)
    scrubbed = scrub(decoded)
    if scrubbed == decoded:
        return clean
    encoded = quote(scrubbed, safe=_URL_DELIMITERS)
    for redacted in (CARD_REDACTED, TOKEN_REDACTED):
        encoded = encoded.replace(quote(redacted, safe=_URL_DELIMITERS), redacted)
    return encoded


class _OneWarning(logging.Handler):
    """ddtrace's log output and the start-up check of the agent, as at most one warning per
    process."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.warned = False
        # ddtrace's writer and the agent check are threads of their own. Not ``self.lock``:
        # that is the handler's own, which ``handle`` holds around ``emit`` (taken twice, it
        # hung ddtrace's writer for good, and with it the service's stop on Ctrl-C)
        self.once = threading.Lock()

    def warn(self, message: str, *args) -> None:
        with self.once:
            if self.warned:
                return
            self.warned = True
        log.warning(message, *args)

    def emit(self, record: logging.LogRecord) -> None:
        self.warn(
            "tracing: ddtrace reported a problem, traces may be lost (further ddtrace messages "
            "are hidden; set DD_TRACE_DEBUG=true to see them): %s",
            str(record.msg)[:300]
            if record.args is None
            else record.getMessage().splitlines()[0][:300],
        )


#: What tracing started with: the agent's ``url`` and the ``warning`` (``_OneWarning``).
_state: dict = {"url": None, "warning": _OneWarning()}


def _quiet_ddtrace_logs() -> None:
    if (_get("DD_TRACE_DEBUG") or "").lower() in _TRUE:
        return
    ddlog = logging.getLogger("ddtrace")
    ddlog.addHandler(_state["warning"])
    ddlog.propagate = False


def check_agent() -> None:
    """When tracing is on, check in a thread of its own (start-up and /pay never wait for it)
    that the agent takes an upload of no traces within ``AGENT_WAIT_S``, and warn once if not:
    ddtrace itself said nothing about a silent agent for ~20 s (a short run's whole life)."""
    url = _state["url"]
    if url is not None:
        threading.Thread(
            target=_check, args=(url,), name="trace-agent-check", daemon=True
        ).start()


def _check(url: str) -> None:
    problem = _upload_problem(url, AGENT_WAIT_S)
    if problem:
        _state["warning"].warn(
            "tracing: the trace agent at %s does not answer (%s): this service's spans are "
            "lost until it does; check DD_TRACE_AGENT_URL or DD_AGENT_HOST",
            url,
            problem,
        )


def _upload_problem(url: str, timeout: float) -> str | None:
    """None when the agent at ``url`` answers an upload of no traces within ``timeout`` s (any
    status: it is there), else what went wrong. An upload, not ``GET /info``: an agent whose
    intake is stuck answers /info at once (the generator's ``agent_problem`` sends the same,
    ``payment_contract.trace_agent``, but takes only a 2xx)."""
    connection = agent_connection(url, timeout)
    try:
        send_empty_upload(connection, url)
        return None
    except TimeoutError:
        return f"an upload waited {timeout:g} s"
    except (OSError, http.client.HTTPException) as exc:
        return (
            getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        ).lower()
    finally:
        connection.close()
