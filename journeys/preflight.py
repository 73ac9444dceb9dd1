"""Preflight: make sure the target answers before any user starts (or wait for it, if asked),
and that it takes the internal token; and that the web UI's and the master's ports are free: a
misconfiguration found now is exit 2 in a second, not a failed run minutes later."""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import time
from urllib.parse import urlsplit

from journeys.service_http import (
    TOKEN_ENV,
    error_code,
    internal_token,
    no_answer,
    post_json,
    post_report,
    report_url,
    without_credentials,
)
from payment_contract import PAY_PATH

log = logging.getLogger(__name__)

CHECK_HOST = (
    "Check --host / LOCUST_HOST: it is the service's base URL, the one /pay and "
    "/internal/generate-report hang off."
)
UNUSABLE_TOKEN = (
    f"{TOKEN_ENV} has a character an Authorization header cannot carry (not printable ASCII: "
    "a line break inside it, a letter with an accent). Use letters, digits and punctuation, "
    "as the payment service's token is."
)
NO_TARGET = (
    "No target: pass --host http://127.0.0.1:8000 or set LOCUST_HOST "
    "(the reference service: python -m payment_service)."
)


def token_unusable() -> str | None:
    """Why the token cannot be sent, never quoting it: with a control character in it, each
    report request would fail with the HTTP client's error, which quotes the header whole (in
    the failures and exceptions tables, their CSVs and the verdict)."""
    token = internal_token()
    if token and not (token.isascii() and token.isprintable()):
        return UNUSABLE_TOKEN
    return None


def target_address(host: str) -> tuple[str, int]:
    """``(host name, port)`` that ``--host`` names; ValueError with the sentence to show."""
    try:
        parts = urlsplit(host)
        port = (
            parts.port
        )  # urllib reads it only now: 'abc', 99999, a space pasted with it
    except ValueError as exc:  # ... or an unclosed [IPv6 address
        raise ValueError(
            f"--host {_shown(host)!r} is not a URL like http://127.0.0.1:8000 ({exc})."
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = _shown(host)
        meant = f" Did you mean http://{shown}?" if shown and "://" not in shown else ""
        raise ValueError(
            f"--host {shown!r} is not a URL like http://127.0.0.1:8000.{meant}"
        )
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _shown(host: str) -> str:
    """``host`` without ``user:password@``, also one urllib cannot read."""
    scheme, sep, rest = host.partition("://")
    if not sep:  # the scheme left out: localhost:8000
        return host.rpartition("@")[2]
    netloc, slash, path = rest.partition("/")
    return f"{scheme}{sep}{netloc.rpartition('@')[2]}{slash}{path}"


def web_port_problem(web_host: str, web_port: int) -> str | None:
    """None when the web UI can listen on ``web_port``; else why not. Locust would find out
    after start-up: a traceback, exit 1 and a verdict failed for "no HTTP requests"."""
    problem = _bind_problem(web_host, web_port)
    return problem and (
        f"The web UI cannot listen on {problem}: stop what holds the port or choose another "
        "with --web-port (LOCUST_WEB_PORT)."
    )


def master_port_problem(bind_host: str, bind_port: int) -> str | None:
    """None when a master can listen for its workers on ``bind_port``; else why not. Locust
    would find out after ``--processes`` forked its workers: a traceback, exit 1, and the
    forked workers left running, knocking at the port for good."""
    problem = _bind_problem(bind_host, bind_port)
    return problem and (
        f"The master cannot listen for its workers on {problem}: stop what holds the port or "
        "choose another with --master-bind-port (LOCUST_MASTER_BIND_PORT; with --processes "
        "pass the same port as --master-port too)."
    )


def _bind_problem(host: str, port: int) -> str | None:
    """None when a server can listen on ``host:port``; else ``host:port (why)``."""
    host = host if host not in ("", "*") else "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            probe.bind((host, port))
        except OSError as exc:
            return f"{host}:{port} ({exc.strerror or exc})"
    return None


def wait_for_host(host: str, wait_s: float, *, poll_s: float = 0.5) -> str | None:
    """None when ``host`` accepts connections (within ``wait_s``), else a one-paragraph error."""
    try:
        address = target_address(host)
    except ValueError as exc:
        return str(exc)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with socket.create_connection(address, timeout=2):
                return None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
        if time.monotonic() >= deadline:
            waited = f" after waiting {wait_s:g}s" if wait_s else ""
            wait = "raise --wait-for-host" if wait_s else "pass --wait-for-host SECONDS"
            return (
                f"The target {without_credentials(host)} cannot be reached{waited} ({reason}). Start the payment service "
                f"or fix --host / LOCUST_HOST; {wait} to wait for it to come up."
            )
        time.sleep(poll_s)


def pay_endpoint_problem(host: str, timeout: float = 5.0) -> str | None:
    """A one-line error when ``POST /pay`` is not there (404/405: a wrong base path in ``--host``).

    The check sends an empty object without an ``Idempotency-Key``, which the contract refuses
    with a 400 or 422 and which stores nothing, whatever the service. Any other answer, or none,
    is left to the run: only a missing endpoint is sure to fail every payment.
    """
    url = without_credentials(host).rstrip("/") + PAY_PATH
    try:
        status, _body, _headers = post_json(url, {}, {}, timeout)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if _tls_refused(exc) and _answers_plain_http(url, timeout):
            plain = "http://" + without_credentials(host).split("://", 1)[1]
            return (
                f"The target {without_credentials(host)} does not speak TLS: it answers plain "
                f"HTTP there. Use {plain} in --host / LOCUST_HOST."
            )
        log.warning(
            "payment endpoint check: no answer from %s (%s); not checked",
            url,
            no_answer(exc),
        )
        return None
    if status in (404, 405):
        return (
            f"The target has no payment endpoint: POST {url} answered {status}. "
            + CHECK_HOST
        )
    return None


def _tls_refused(exc: BaseException) -> bool:
    """The TLS handshake failed (urllib wraps the ``ssl.SSLError`` in a ``URLError``)."""
    return isinstance(getattr(exc, "reason", exc), ssl.SSLError)


def _answers_plain_http(url: str, timeout: float) -> bool:
    """``url`` (an ``https://`` one) answers when asked in plain HTTP: ``--host`` says https
    to a service without TLS, and every request of the run would fail its handshake."""
    try:
        post_json("http://" + url.split("://", 1)[1], {}, {}, timeout)
    except (OSError, http.client.HTTPException, ValueError):
        return False
    return True


def token_problem(host: str, token: str, timeout: float = 5.0) -> str | None:
    """A one-line error when the target refuses ``token`` (401/403 from the report endpoint) or
    has no report endpoint there (404/405: a wrong base path in ``--host``).

    Anything else (200, 5xx, no answer in ``timeout``) is left to the run, with a warning:
    a service that speaks the contract but is slow or flaky must still be load-tested.
    """
    host, url = without_credentials(host), report_url(host)
    try:
        status, body, _headers = post_report(
            host, token, {"batch_id": "preflight-token-check"}, timeout
        )
    except (OSError, http.client.HTTPException, ValueError) as exc:
        log.warning(
            "token check: no answer from %s (%s); not checked", url, no_answer(exc)
        )
        return None
    if status in (401, 403):
        return (
            f"The target {host} refused {TOKEN_ENV}: {status} {error_code(body)}; "
            f"set {TOKEN_ENV} to the service's internal token."
        )
    if status in (404, 405):
        return (
            f"The target has no report endpoint: POST {url} answered {status}. "
            + CHECK_HOST
        )
    if status >= 300:
        log.warning("token check: %s answered %s; not checked", url, status)
    return None
