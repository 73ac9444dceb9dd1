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

The modules: ``settings`` (the DD_* rules, pure), ``lifecycle`` (ddtrace started once per process,
and the end of the run), ``spans`` (journeys, attempts, headers), ``agent`` (is the agent there;
ddtrace's log kept to one warning); tag values are scrubbed by ``journeys.scrub``. Importing this
package registers its Locust event listeners.
"""

from journeys.scrub import TOKEN_REDACTED, scrub
from journeys.tracing.agent import agent_problem, quiet_ddtrace_logs
from journeys.tracing.lifecycle import (
    configure,
    drop_unsent_if_agent_down,
    enabled,
    setup_failure,
)
from journeys.tracing.settings import (
    DDTRACE_DEFAULTS,
    DEFAULT_SERVICE,
    OFF_BANNER,
    PROPAGATION_STYLES,
    WAY_OUT,
    Settings,
    SetupError,
    settings_from_env,
    setup_problem,
)
from journeys.tracing.spans import (
    NO_SPAN,
    TracedSpan,
    attempt_span,
    drop_headers,
    inject,
    journey_span,
)
from payment_contract.trace_agent import EMPTY_UPLOAD

__all__ = [
    "DDTRACE_DEFAULTS",
    "DEFAULT_SERVICE",
    "EMPTY_UPLOAD",
    "NO_SPAN",
    "OFF_BANNER",
    "PROPAGATION_STYLES",
    "TOKEN_REDACTED",
    "WAY_OUT",
    "Settings",
    "SetupError",
    "TracedSpan",
    "agent_problem",
    "attempt_span",
    "configure",
    "drop_headers",
    "drop_unsent_if_agent_down",
    "enabled",
    "inject",
    "journey_span",
    "quiet_ddtrace_logs",
    "scrub",
    "settings_from_env",
    "setup_failure",
    "setup_problem",
]
