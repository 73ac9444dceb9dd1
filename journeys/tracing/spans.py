"""Spans: one trace per journey, one child span per HTTP attempt, and the trace headers each
attempt carries. Each Locust user is a greenlet with its own ``contextvars`` context, so the
journey and attempt in flight are kept per user; spans never cross users."""

from __future__ import annotations

import random
from contextvars import ContextVar
from typing import Any, Self

from journeys.scrub import scrub
from journeys.tracing.lifecycle import enabled, state


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
            self.span.set_tag(key, scrub(str(value), state.secrets))

    def set_error(self, message: str) -> None:
        self.span.error = 1
        # an attempt's failure is not its journey's: a 503 resent and then paid is a failed
        # attempt of a journey that succeeded, and @error.type:journey.failure counts journeys
        kind = "journey" if self.span.name == "journey" else "http.request"
        self.span.set_tag("error.type", f"{kind}.failure")
        self.span.set_tag("error.message", scrub(str(message), state.secrets))


class _Unsampled(_NoSpan):
    """A journey left out by ``--trace-sample-rate``: no spans, but its requests carry trace
    headers that say "drop" (sampling priority -1), so the service's spans are dropped too instead
    of starting traces of their own. The headers are built once per journey, not per request."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


#: The journey and the attempt in flight for the running greenlet (each Locust user has its own).
_journey: ContextVar[TracedSpan | None] = ContextVar("journey_span", default=None)
_attempt: ContextVar[TracedSpan | None] = ContextVar("attempt_span", default=None)


def _sampled_out() -> bool:
    rate = getattr(state.options, "trace_sample_rate", 1.0)
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
    state.propagator.inject(context, headers)
    return _Unsampled(headers)


def drop_headers() -> dict[str, str]:
    """Trace headers saying "drop" (priority -1) for a request that is not load (the preflight's
    checks, ``--reconcile-run``'s report), so a traced service starts no trace of its own for it. While ddtrace runs here
    they come from its propagator, in the styles it injects (``DD_TRACE_PROPAGATION_STYLE_INJECT``);
    otherwise (tracing off, or a master) Datadog's and W3C's, written out (as the Docker health
    check, ``docker/healthcheck.py``, writes them too)."""
    if state.tracer is not None:
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
    span = state.tracer.start_span(
        "journey", child_of=None, resource=journey, span_type="worker", activate=False
    )
    span.set_tag("journey", journey)
    span.set_tag("persona", persona)
    return _InFlight(span, _journey)


def attempt_span(
    name: str,
    method: str,
    route: str,
    retry: int = 0,
    url: str | None = None,
    host: str | None = None,
):
    """One HTTP attempt, a child of this user's journey span (its own trace outside a journey);
    ``url`` and ``host`` (``http.url``, ``out.host``) name the target, as ddtrace's own HTTP
    clients do: Datadog shows an untraced service as an inferred one from them.
    A context manager giving a ``TracedSpan``, or ``NO_SPAN`` while tracing is off or the journey
    is not sampled (``inject()`` then still sends the journey's "drop" headers)."""
    if not enabled():
        return _NO_SPAN
    parent = _journey.get()
    if isinstance(parent, _Unsampled):
        return _NO_SPAN
    span = state.tracer.start_span(
        "http.request",
        child_of=parent.span if parent is not None else None,
        resource=f"{method} {route}",
        span_type="http",
        activate=False,  # our own context (contextvars) decides parents and headers
    )
    span.set_tag("span.kind", "client")
    span.set_tag("component", "locust")
    # APM's request, error and latency metrics come from top-level and measured spans only;
    # an attempt shares its journey's service, so it is measured, as ddtrace's HTTP clients do
    span.set_metric("_dd.measured", 1)
    span.set_tag("http.method", method)
    span.set_tag("http.route", route)
    span.set_tag("request.name", name)
    span.set_tag("retry", retry)
    if url:
        span.set_tag("http.url", scrub(url, state.secrets))
    if host:
        span.set_tag("out.host", host)
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
    """Add the current attempt's trace headers (``x-datadog-*`` and W3C ``traceparent``), with
    the journey's sampling decision."""
    if state.tracer is None:
        return
    current = _attempt.get() or _journey.get()
    if isinstance(current, _Unsampled):
        headers.update(current.headers)
    elif current is not None:
        # the span, not its context: ddtrace then makes the trace's sampling decision (its
        # rules, the agent's rates) at the journey and sends it; a context without one left
        # the service to decide alone (and W3C's flag said "not sampled")
        state.propagator.inject(current.span, headers)
