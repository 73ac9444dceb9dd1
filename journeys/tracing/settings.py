"""Whether to trace, where to and as whom, from the DD_* variables; and the values tracing
cannot run with (exit 2 before any traffic). Pure: no ddtrace, no Locust; the same rules as
``payment_service/tracing.py``."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from journeys.scrub import scrub, secrets_from_env

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
TRUE = frozenset({"true", "1", "yes", "on"})
FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True)
class Settings:
    """Whether to trace, where to, and as whom."""

    enabled: bool
    agent_url: str = ""
    service: str = DEFAULT_SERVICE
    env: str | None = None
    version: str | None = None
    #: what turned tracing off when it was asked to (``DD_TRACE_ENABLED=false``), else None
    off_by: str | None = None

    def banner(self) -> str:
        if not self.enabled:
            return f"tracing: off ({self.off_by})" if self.off_by else OFF_BANNER
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
    if flag in FALSE:  # wins over an agent: the banner says so, not "set DD_AGENT_HOST"
        return Settings(False, off_by=f"DD_TRACE_ENABLED={get('DD_TRACE_ENABLED')}")
    if not (flag in TRUE or url or host):
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
    """A DD_* value tracing cannot run with; the message names it and the way out (quoting the
    value, scrubbed: the token mapped to the wrong variable by a CI job is not shown)."""

    def __init__(self, message: str) -> None:
        super().__init__(scrub(message, secrets_from_env()))


def setup_problem(environ: Mapping[str, str]) -> str | None:
    """What is wrong with the DD_* variables that switch tracing on and name the agent, or None.

    ddtrace takes most of these without a word and then never sends a trace (a port ``abc``)
    or, for a flag it cannot read, is simply off: the run would end without its traces.
    """

    def get(name: str) -> str | None:
        return (environ.get(name) or "").strip() or None

    flag = get("DD_TRACE_ENABLED")
    if flag and flag.lower() not in TRUE | FALSE:
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


def start_failure(exc: Exception, environ: Mapping[str, str]) -> str:
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
