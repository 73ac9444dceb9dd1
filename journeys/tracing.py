"""Datadog APM for the load generator: one trace per journey, one child span per HTTP attempt.

Tracing is off unless asked for, and then costs nothing (ddtrace is not even imported)::

    DD_AGENT_HOST=127.0.0.1 DD_ENV=staging locust -f locustfile.py     # on: agent at :8126
    DD_TRACE_AGENT_URL=http://127.0.0.1:9126 locust -f locustfile.py   # on: that agent
    DD_TRACE_ENABLED=true locust -f locustfile.py                      # on: agent at 127.0.0.1:8126
    DD_TRACE_ENABLED=false DD_AGENT_HOST=... locust -f locustfile.py   # off: false always wins

It starts from our own code (``events.init``), not ``ddtrace-run``: the wrapper deadlocks Locust
with ddtrace >= 3.17. Journeys and the API client use three calls::

    with tracing.journey_span("checkout", "shopper") as journey:        # a new trace
        journey.set_tag("batch_id", batch_id)
        with tracing.attempt_span("checkout: pay", "POST", "/pay", retry=0) as span:
            tracing.inject(headers)                                        # datadog + traceparent
            span.set_tag("http.status_code", 402)

Each Locust user is a greenlet with its own ``contextvars`` context, so the journey and attempt in
flight are kept per user; spans never cross users. String tag values are scrubbed of card numbers
and the internal token. An absent or failing agent costs one warning; the run carries on.
"""

from __future__ import annotations

import atexit
import http.client
import logging
import os
import random
import re
import socket
import sys
import urllib.parse
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Self

from locust import events
from locust.runners import MasterRunner

from payment_contract import luhn_valid

log = logging.getLogger(__name__)

DEFAULT_SERVICE = "payment-load-generator"
DEFAULT_AGENT_PORT = "8126"
OFF_BANNER = "tracing: off (set DD_TRACE_ENABLED=true or DD_AGENT_HOST to enable)"
#: Defaults we give ddtrace when tracing is on (a DD_* variable that is set wins).
DDTRACE_DEFAULTS = {
    "DD_TRACE_PROPAGATION_STYLE_INJECT": "datadog,tracecontext",
    "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",  # no extra intake traffic or log noise
    "DD_REMOTE_CONFIGURATION_ENABLED": "false",
    "DD_TRACE_STARTUP_LOGS": "false",
    "DD_TRACE_LOG_STREAM_HANDLER": "false",  # ddtrace's own stderr handler; see quiet_ddtrace_logs
}
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


# -- settings (pure: the same rules as payment_service/tracing.py) --------------------------------


@dataclass(frozen=True)
class Settings:
    """Whether to trace, where to, and as whom."""

    enabled: bool
    agent_url: str = ""
    service: str = DEFAULT_SERVICE
    env: str | None = None
    version: str | None = None

    def banner(self) -> str:
        if not self.enabled:
            return OFF_BANNER
        extra = "".join(
            f", {k} {v}" for k, v in (("env", self.env), ("version", self.version)) if v
        )
        return f"tracing: on → {self.agent_url} (service {self.service}{extra})"


def settings_from_env(
    environ: Mapping[str, str], default_service: str = DEFAULT_SERVICE
) -> Settings:
    """On when DD_TRACE_ENABLED=true or an agent is named; DD_TRACE_ENABLED=false always wins.

    An empty variable counts as unset (compose files pass ``DD_AGENT_HOST=`` through).
    """

    def get(name: str) -> str | None:
        return (environ.get(name) or "").strip() or None

    flag = (get("DD_TRACE_ENABLED") or "").lower()
    url, host = get("DD_TRACE_AGENT_URL"), get("DD_AGENT_HOST")
    if flag in _FALSE or not (flag in _TRUE or url or host):
        return Settings(False)
    if not url:
        host = host or "127.0.0.1"
        url = f"http://{f'[{host}]' if ':' in host else host}:{get('DD_TRACE_AGENT_PORT') or DEFAULT_AGENT_PORT}"
    return Settings(
        True,
        url,
        get("DD_SERVICE") or default_service,
        get("DD_ENV"),
        get("DD_VERSION"),
    )


# -- values tracing cannot run with (exit 2 before any traffic) ---------------------------------

#: The way out of a bad DD_* value, at the end of every message about one.
WAY_OUT = "fix the value or remove it (DD_TRACE_ENABLED=false runs without tracing)"
#: The trace header styles ddtrace knows (it skips any other with a warning, and with none left
#: injects no header: the service's spans would start traces of their own).
PROPAGATION_STYLES = ("datadog", "tracecontext", "b3multi", "b3", "baggage", "none")


class SetupError(Exception):
    """A DD_* value tracing cannot run with; the message names it and the way out."""


def setup_problem(environ: Mapping[str, str]) -> str | None:
    """What is wrong with the DD_* variables that switch tracing on and name the agent, or None.

    ddtrace takes most of these without a word and then never sends a trace (a port ``abc``)
    or, for a flag it cannot read, is simply off: the run would end without its traces.
    """

    def get(name: str) -> str | None:
        return (environ.get(name) or "").strip() or None

    flag = get("DD_TRACE_ENABLED")
    if flag and flag.lower() not in _TRUE | _FALSE:
        return f"DD_TRACE_ENABLED={flag!r} is neither true nor false"
    if not settings_from_env(environ).enabled:
        return None
    for name in ("DD_TRACE_PROPAGATION_STYLE", "DD_TRACE_PROPAGATION_STYLE_INJECT"):
        styles = get(name) or ""
        unknown = [
            style
            for style in (s.strip().lower() for s in styles.split(","))
            if style and style not in PROPAGATION_STYLES
        ]
        if unknown:
            return (
                f"{name}={styles!r} names an unknown style {unknown[0]!r} "
                f"(known: {', '.join(PROPAGATION_STYLES)})"
            )
    url, host, port = (
        get("DD_TRACE_AGENT_URL"),
        get("DD_AGENT_HOST"),
        get("DD_TRACE_AGENT_PORT"),
    )
    if url:
        return _agent_url_problem(url)
    if host and any(c in host for c in "/ "):
        return f"DD_AGENT_HOST={host!r} is not a host name (a URL goes in DD_TRACE_AGENT_URL)"
    if port and not _is_port(port):
        return f"DD_TRACE_AGENT_PORT={port!r} is not a port number (1-65535)"
    return None


def _agent_url_problem(url: str) -> str | None:
    """Why ``url`` (DD_TRACE_AGENT_URL) cannot reach an agent, or None."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix" and parts.path:
        return None
    shape = "http://host:port, https://host:port or unix:///path/to/socket"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"DD_TRACE_AGENT_URL={url!r} is not an agent URL ({shape})"
    try:
        port_ok = parts.port != 0  # None: no port given, the scheme's default
    except ValueError:  # not a number, or out of range
        port_ok = False
    return (
        None if port_ok else f"DD_TRACE_AGENT_URL={url!r} has no valid port (1-65535)"
    )


def _is_port(text: str) -> bool:
    return text.isdigit() and 1 <= int(text) <= 65535


def _start_failure(exc: Exception, environ: Mapping[str, str]) -> str:
    """ddtrace refused to start: name the DD_* values its message quotes (it names none)."""
    said = f"{type(exc).__name__}: {exc}"
    named = [
        f"{name}={value.strip()!r}"
        for name, value in sorted(environ.items())
        if name.startswith("DD_")
        and value.strip()
        and re.search(rf"(?<![\w.]){re.escape(value.strip())}(?![\w.])", str(exc))
    ]
    culprit = " or ".join(named) if named else "one of the DD_* variables"
    return f"ddtrace cannot start with {culprit} ({said})"


# -- scrubbing ------------------------------------------------------------------------------------

_DIGIT_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
CARD_REDACTED = "[card redacted]"
TOKEN_REDACTED = "[token redacted]"


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` without card numbers (13-19 Luhn-valid digits, spaces/dashes allowed) or secrets."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, TOKEN_REDACTED)
    # most tags are short names (an outcome, a request name): no room for 13 digits
    if len(text) < 13 or sum(map(str.isdigit, text)) < 13:
        return text

    def redact(match: re.Match) -> str:
        digits = re.sub(r"[ -]", "", match.group())
        return CARD_REDACTED if luhn_valid(digits) else match.group()

    return _DIGIT_RUN.sub(redact, text)


def _secrets() -> tuple[str, ...]:
    token = os.environ.get("PAYMENT_INTERNAL_TOKEN", "")
    return (token,) if len(token) >= 6 else ()


# -- spans ----------------------------------------------------------------------------------------


class _NoSpan:
    """What the span helpers give when tracing is off: a do-nothing span that is its own context
    manager, so the hot path pays no generator-based context manager per request."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> bool:
        return False

    def set_tag(self, key: str, value: Any) -> None:
        pass

    def set_error(self, message: str) -> None:
        pass


NO_SPAN = _NO_SPAN = _NoSpan()  # what the span helpers yield while tracing is off


class TracedSpan:
    """A ddtrace span behind the two calls journeys and the client use; values are scrubbed."""

    __slots__ = ("span",)

    def __init__(self, span) -> None:
        self.span = span

    def set_tag(self, key: str, value: Any) -> None:
        if key == "http.status_code":
            # a string, as ddtrace's own HTTP integrations set it; none for the client's 0 (no
            # answer: a timeout or a refused connection), which no HTTP status is
            if value:
                self.span.set_tag(key, str(value))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            self.span.set_tag(key, value)
        # a hash: nothing to scrub (and hex can look like digits)
        elif key.endswith(".sha256"):
            self.span.set_tag(key, str(value))
        else:
            self.span.set_tag(key, scrub(str(value), _state.secrets))

    def set_error(self, message: str) -> None:
        self.span.error = 1
        self.span.set_tag("error.type", "journey.failure")
        self.span.set_tag("error.message", scrub(str(message), _state.secrets))


class _Unsampled(_NoSpan):
    """A journey left out by ``--trace-sample-rate``: no spans, but its requests carry trace
    headers that say "drop" (sampling priority -1), so the service's spans are dropped too instead
    of starting traces of their own. The headers are built once per journey, not per request."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


class _State:
    """Decided once per process by ``configure``; ``tracer`` is None while tracing is off."""

    def __init__(self) -> None:
        # Locust's parsed options (workers get the master's with each spawn)
        self.options = None
        self.settings: Settings | None = None
        self.tracer = None
        self.propagator = None
        self.secrets: tuple[str, ...] = ()
        self.log_handler: _OneWarning | None = None
        # found at the end of the run (``quitting``), and the code Locust is about to exit with
        self.agent_down = False
        self.exit_code: int | None = None
        # a DD_* value tracing cannot run with (the run's checks stop the run for it)
        self.problem: str | None = None


_state = _State()
#: The journey and the attempt in flight for the running greenlet (each Locust user has its own).
_journey: ContextVar[TracedSpan | None] = ContextVar("journey_span", default=None)
_attempt: ContextVar[TracedSpan | None] = ContextVar("attempt_span", default=None)


def configure(environment=None) -> str:
    """Decide on/off from DD_* variables (once per process) and return the banner line.

    Safe to call again: the first call decides. With Locust's ``environment`` of a master (which
    runs no users) ddtrace is not started there; every worker configures itself. A DD_* value
    tracing cannot run with raises ``SetupError``.
    """
    if _state.settings is not None:
        return _state.settings.banner()
    problem = setup_problem(os.environ)
    if problem:
        raise SetupError(f"Tracing: {problem}: {WAY_OUT}.")
    settings = settings_from_env(os.environ)
    if settings.enabled and isinstance(
        getattr(environment, "runner", None), MasterRunner
    ):
        # a master runs no users: its workers trace their journeys
        _state.settings = settings
        return settings.banner() + "; the workers send the traces"
    if settings.enabled:
        environ = dict(os.environ)  # as set: starting ddtrace rewrites some
        try:
            _start_ddtrace(settings)
        except Exception as exc:  # noqa: BLE001  (any refusal: said before any traffic)
            _state.settings = Settings(False)
            raise SetupError(
                f"Tracing: {_start_failure(exc, environ)}: {WAY_OUT}."
            ) from None
    _state.settings = settings
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
    quiet_ddtrace_logs(log)

    from ddtrace.propagation.http import HTTPPropagator
    from ddtrace.trace import tracer

    _state.tracer, _state.propagator, _state.secrets = (
        tracer,
        HTTPPropagator,
        _secrets(),
    )
    # after ddtrace's own exit hooks, so this one runs before them (atexit runs last-in first-out)
    atexit.register(_exit_now_if_agent_down)


def enabled() -> bool:
    """True when tracing is on (decides first if nobody has)."""
    if _state.settings is None:
        configure()
    return _state.tracer is not None


def _sampled_out() -> bool:
    rate = getattr(_state.options, "trace_sample_rate", 1.0)
    return rate < 1.0 and random.random() >= rate


def _unsampled() -> _Unsampled:
    from ddtrace.constants import USER_REJECT
    from ddtrace.trace import Context

    headers: dict[str, str] = {}
    context = Context(
        trace_id=random.getrandbits(64),
        span_id=random.getrandbits(64),
        sampling_priority=USER_REJECT,
    )
    _state.propagator.inject(context, headers)
    return _Unsampled(headers)


def drop_headers() -> dict[str, str]:
    """Trace headers saying "drop" (priority -1) for a request that is not load (the preflight's
    checks, ``--reconcile-run``'s report), so a traced service starts no trace of its own for it. While ddtrace runs here
    they come from its propagator, in the styles it injects (``DD_TRACE_PROPAGATION_STYLE_INJECT``);
    otherwise (tracing off, or a master) Datadog's and W3C's, written out."""
    if _state.tracer is not None:
        return dict(_unsampled().headers)
    trace_id, parent_id = random.getrandbits(63) or 1, random.getrandbits(63) or 1
    return {
        "x-datadog-trace-id": str(trace_id),
        "x-datadog-parent-id": str(parent_id),
        "x-datadog-sampling-priority": "-1",
        "traceparent": f"00-{trace_id:032x}-{parent_id:016x}-00",
        "tracestate": "dd=s:-1",
    }


def journey_span(journey: str, persona: str):
    """The root span of one journey: always a new trace, never a child of anything active.
    A context manager giving a ``TracedSpan``, or ``NO_SPAN`` while tracing is off."""
    if not enabled():
        return _NO_SPAN
    if _sampled_out():
        return _Current(_unsampled(), _journey)
    span = _state.tracer.start_span(
        "journey", child_of=None, resource=journey, span_type="worker", activate=False
    )
    span.set_tag("journey", journey)
    span.set_tag("persona", persona)
    return _InFlight(span, _journey)


def attempt_span(name: str, method: str, route: str, retry: int = 0):
    """One HTTP attempt, a child of this user's journey span (its own trace outside a journey).
    A context manager giving a ``TracedSpan``, or ``NO_SPAN`` while tracing is off or the journey
    is not sampled (``inject()`` then still sends the journey's "drop" headers)."""
    if not enabled():
        return _NO_SPAN
    parent = _journey.get()
    if isinstance(parent, _Unsampled):
        return _NO_SPAN
    span = _state.tracer.start_span(
        "http.request",
        child_of=parent.span if parent is not None else None,
        resource=f"{method} {route}",
        span_type="http",
        activate=False,  # our own context (contextvars) decides parents and headers
    )
    span.set_tag("span.kind", "client")
    span.set_tag("component", "locust")
    span.set_tag("http.method", method)
    span.set_tag("http.route", route)
    span.set_tag("request.name", name)
    span.set_tag("retry", retry)
    return _InFlight(span, _attempt)


#: The run or the user stopping a journey: not an error of the journey.
_STOPS = frozenset({"GreenletExit", "StopUser", "InterruptTaskSet"})


class _Current:
    """Makes ``value`` this greenlet's current journey or attempt inside the ``with``.

    Classes rather than ``@contextmanager`` generators: a span's way in and out is on every
    request's path, and a generator context manager costs several microseconds more."""

    __slots__ = ("token", "value", "var")

    def __init__(self, value, var: ContextVar) -> None:
        self.value, self.var = value, var

    def __enter__(self):
        self.token = self.var.set(self.value)
        return self.value

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.var.reset(self.token)
        return False


class _InFlight(_Current):
    """A started span made current; it finishes at the end of the ``with``, as an error when an
    exception (other than the run or the user stopping) ends it. One the stop cut off is tagged
    ``outcome: interrupted`` (as its journey is), so an attempt without a status code says why."""

    __slots__ = ()

    def __init__(self, span, var: ContextVar) -> None:
        self.value, self.var = TracedSpan(span), var  # _Current's, without a call to it

    def __exit__(self, exc_type, exc, tb) -> bool:
        span = self.value.span
        try:
            if exc_type is None or span.error:
                pass
            elif exc_type.__name__ in _STOPS:
                if span.get_tag("outcome") is None:
                    span.set_tag("outcome", "interrupted")
            else:
                self.value.set_error(f"{exc_type.__name__}: {exc}")
        finally:
            self.var.reset(self.token)
            span.finish()
        return False


def inject(headers: dict) -> None:
    """Add the current attempt's trace headers (``x-datadog-*`` and W3C ``traceparent``)."""
    if _state.tracer is None:
        return
    current = _attempt.get() or _journey.get()
    if isinstance(current, _Unsampled):
        headers.update(current.headers)
    elif current is not None:
        _state.propagator.inject(current.span.context, headers)


# -- logging --------------------------------------------------------------------------------------


class _OneWarning(logging.Handler):
    """Turns ddtrace's log output into at most one warning per process (on ``owner``)."""

    def __init__(self, owner: logging.Logger) -> None:
        super().__init__(logging.WARNING)
        self.owner = owner
        self.warned = False
        self.send_failed = False

    def emit(self, record: logging.LogRecord) -> None:
        self.send_failed = self.send_failed or "failed to send" in str(record.msg)
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


def quiet_ddtrace_logs(owner: logging.Logger) -> None:
    """An absent or failing agent must not flood a run's log: one warning, then silence.

    Left alone with DD_TRACE_DEBUG=true (ddtrace's own debug logging then).
    """
    if (os.environ.get("DD_TRACE_DEBUG") or "").lower() in _TRUE:
        return
    ddlog = logging.getLogger("ddtrace")
    if _state.log_handler is None:
        _state.log_handler = _OneWarning(owner)
        ddlog.addHandler(_state.log_handler)
    ddlog.propagate = False


#: An upload of no traces (msgpack's empty array) to the v0.4 endpoint every agent takes.
EMPTY_UPLOAD = ("/v0.4/traces", b"\x90")


def agent_answers(url: str, timeout: float = 0.5) -> bool:
    """True when the trace agent at ``url`` takes an upload of no traces within ``timeout`` s.

    The upload, not ``GET /info``: an agent whose intake is backed up still answers /info at
    once while every upload of ours waits ~20 s (and ddtrace waits for them at exit). Any
    answer counts, an error status too: the agent is there.
    """
    parts = urllib.parse.urlsplit(url)
    path, body = EMPTY_UPLOAD
    headers = {"Content-Type": "application/msgpack", "X-Datadog-Trace-Count": "0"}
    connection = _agent_connection(parts, timeout)
    try:
        prefix = "" if parts.scheme == "unix" else parts.path.rstrip("/")
        connection.request("PUT", prefix + path, body, headers)
        connection.getresponse().read()
        return True
    except Exception:  # noqa: BLE001  (any failure means: no answer)
        return False
    finally:
        connection.close()


def _agent_connection(parts, timeout: float) -> http.client.HTTPConnection:
    """An HTTP connection to the agent at ``parts`` (http, https or a unix socket)."""
    if parts.scheme == "unix":
        return _UnixConnection(parts.path, timeout)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.netloc, timeout=timeout)
    return http.client.HTTPConnection(parts.netloc, timeout=timeout)


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (``unix:///var/run/datadog/apm.socket``)."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def drop_unsent_if_agent_down() -> bool:
    """At the end of a run, forget buffered traces when the agent doesn't answer; True if so.

    ddtrace flushes its buffer at exit and retries a failing agent for seconds (about 20 s per
    send when the agent accepts connections but never answers); with the buffer empty that final
    flush is instant. A send already under way is cut short by ``_exit_now_if_agent_down``.
    """
    if _state.tracer is None:
        return False
    handler = _state.log_handler
    failing = handler is not None and handler.send_failed
    if not failing and agent_answers(_state.settings.agent_url):
        return False
    # an agent that never answers has given ddtrace no error to warn about yet
    if handler is None or not handler.warned:
        if handler is not None:
            handler.warned = True
        log.warning(
            "tracing: the trace agent at %s does not answer; traces not sent yet are dropped",
            _state.settings.agent_url,
        )
    try:
        # ddtrace internals: best effort
        for client in _state.tracer._span_aggregator.writer._clients:
            client.encoder.encode()
    except Exception:
        log.debug("tracing: could not drop unsent traces", exc_info=True)
    return True


def _exit_now_if_agent_down() -> None:
    """End the process once Locust is done with it, without waiting for ddtrace's writer.

    At process exit ddtrace joins its writer thread, and a send under way to an agent that
    accepts connections but never answers gives up only after ~20 s (no setting shortens it for
    the agent transport). When the agent was found down at the end of the run there is nothing
    left to deliver, so after Locust has printed and written everything (its ``quit`` event
    came), flush the logs and leave with Locust's exit code.
    """
    if not _state.agent_down or _state.exit_code is None:
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110  (a closed stream has nothing left to flush)
            pass
    os._exit(_state.exit_code)


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    _state.options = environment.parsed_options
    try:
        banner = configure(environment)
    except SetupError as exc:
        _state.problem = str(
            exc
        )  # the run's checks (journeys.users) stop it before traffic
        return
    rate = getattr(_state.options, "trace_sample_rate", 1.0)
    if _state.settings is not None and _state.settings.enabled and rate < 1.0:
        banner += f"; {rate:.0%} of journeys traced (--trace-sample-rate)"
    log.info(banner)


@events.quitting.add_listener
def _on_quitting(environment, **_kwargs) -> None:
    _state.agent_down = drop_unsent_if_agent_down()


@events.quit.add_listener
def _on_quit(exit_code: int, **_kwargs) -> None:
    _state.exit_code = exit_code


def setup_failure() -> str | None:
    """Why tracing cannot run with this process's ``DD_*`` values, else None. The run's checks
    (``journeys.users``) act on it: a master or standalone run exits 2 before any traffic; a
    worker leaves at its first spawn, telling the master (which would wait for it forever)."""
    return _state.problem
