"""Preflight: make sure the target answers before any user starts (or wait for it, if asked),
and that it takes the internal token: a misconfiguration found now is exit 2 in a second, not a
failed run minutes later."""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import time
import urllib.error
import urllib.request
from email.message import Message
from urllib.parse import urlsplit, urlunsplit

from journeys import tracing
from journeys.wording import quotable_code
from payment_contract import PAY_PATH, REPORT_PATH

log = logging.getLogger(__name__)

#: The service's internal token (report endpoint), from the environment only: never a flag.
TOKEN_ENV = "PAYMENT_INTERNAL_TOKEN"
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


def internal_token() -> str:
    """The internal token as it is sent: ``PAYMENT_INTERNAL_TOKEN`` without surrounding white
    space (the line end of a file it was read from), as the reference service reads it."""
    return os.environ.get(TOKEN_ENV, "").strip()


def token_unusable() -> str | None:
    """Why the token cannot be sent, never quoting it: with a control character in it, each
    report request would fail with the HTTP client's error, which quotes the header whole (in
    the failures and exceptions tables, their CSVs and the verdict)."""
    token = internal_token()
    if token and not (token.isascii() and token.isprintable()):
        return UNUSABLE_TOKEN
    return None


def without_credentials(host: str) -> str:
    """``host`` without ``user:password@``: safe to print, and what the checks connect to."""
    parts = urlsplit(host)
    if "@" not in parts.netloc:
        return host
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def target_address(host: str) -> tuple[str, int]:
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"--host {without_credentials(host)!r} is not a URL like http://127.0.0.1:8000."
        )
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def web_port_problem(web_host: str, web_port: int) -> str | None:
    """None when the web UI can listen on ``web_port``; else why not. Locust would find out
    after start-up: a traceback, exit 1 and a verdict failed for "no HTTP requests"."""
    host = web_host if web_host not in ("", "*") else "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
        )  # as gevent's server
        try:
            probe.bind((host, web_port))
        except OSError as exc:
            return (
                f"The web UI cannot listen on {host}:{web_port} ({exc.strerror or exc}): stop "
                "what holds the port or choose another with --web-port (LOCUST_WEB_PORT). "
                "No traffic was sent."
            )
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


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is not the service answering, and following it would carry the token to
    wherever it points (urllib keeps the Authorization header): it stays a 3xx, not checked."""

    def redirect_request(self, *_args, **_kwargs):
        return None


class _FinalResponse(http.client.HTTPResponse):
    """An answer read past interim 1xx answers (a ``103 Early Hints``), as HTTP asks of a
    client (RFC 9110, 15.2): ``http.client`` reads past a ``100 Continue`` only."""

    def _read_status(self):
        while True:
            version, status, reason = super()._read_status()
            if not 100 < status < 200 or status == 101:
                return version, status, reason
            http.client._read_headers(self.fp)  # the interim answer's, not kept


class _Connection(http.client.HTTPConnection):
    response_class = _FinalResponse


class _TlsConnection(http.client.HTTPSConnection):
    response_class = _FinalResponse


class _FinalAnswers(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    """urllib's handlers, reading past interim answers."""

    def http_open(self, req):
        return self.do_open(_Connection, req)

    def https_open(self, req):
        return self.do_open(_TlsConnection, req, context=self._context)


def report_url(host: str) -> str:
    """The report endpoint's URL on ``host``, without credentials (safe to print)."""
    return without_credentials(host).rstrip("/") + REPORT_PATH


#: What the checks read of an answer: enough for any error body.
CHECK_READ_BYTES = 65536
#: What a report is read up to: the contract lets it carry fields the generator does not read
#: (a service may list the payments it counted), so it is read whole, within reason.
REPORT_READ_BYTES = 64 * 1024 * 1024


def post_report(
    host: str,
    token: str,
    filter_: dict,
    timeout: float = 5.0,
    read_bytes: int = CHECK_READ_BYTES,
) -> tuple[int, bytes, Message]:
    """``POST /internal/generate-report`` with ``filter_``: (status, the body's first
    ``read_bytes``, headers).

    Proxies are bypassed (Locust's client does not use them, and a proxy's 403 is not the
    service's) and redirects are not followed. No answer raises ``OSError`` or
    ``http.client.HTTPException``.
    """
    return _post(
        report_url(host),
        filter_,
        {"Authorization": f"Bearer {token}"},
        timeout,
        read_bytes,
    )


def _post(
    url: str,
    body: dict,
    headers: dict[str, str],
    timeout: float,
    read_bytes: int = CHECK_READ_BYTES,
) -> tuple[int, bytes, Message]:
    """POST ``body`` as JSON to ``url``, no proxy, no redirect: (status, the body's first
    ``read_bytes``, headers)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            **headers,
            "Content-Type": "application/json",
            **tracing.drop_headers(),
        },
        method="POST",
    )
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), _NoRedirects, _FinalAnswers
    )
    try:
        with opener.open(request, timeout=timeout) as answer:
            return answer.status, answer.read(read_bytes), answer.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(read_bytes), exc.headers


def no_answer(exc: BaseException) -> str:
    """What a request's error may show: an OS error's text (connection refused, a name not
    found), else only its kind: an ``HTTPException`` quotes the service's bytes (a garbled
    status line: markup, terminal escapes, a card number), which went to the log and, through
    ``--reconcile-run``, to the verdict."""
    if isinstance(exc, OSError) and not isinstance(exc, http.client.HTTPException):
        return str(exc)
    return type(exc).__name__


def pay_endpoint_problem(host: str, timeout: float = 5.0) -> str | None:
    """A one-line error when ``POST /pay`` is not there (404/405: a wrong base path in ``--host``).

    The check sends an empty object without an ``Idempotency-Key``, which the contract refuses
    with a 400 or 422 and which stores nothing, whatever the service. Any other answer, or none,
    is left to the run: only a missing endpoint is sure to fail every payment.
    """
    url = without_credentials(host).rstrip("/") + PAY_PATH
    try:
        status, _body, _headers = _post(url, {}, {}, timeout)
    except (OSError, http.client.HTTPException, ValueError) as exc:
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


def error_code(body: bytes) -> str:
    """The contract's ``error.code`` (e.g. ``invalid_token``) if the body has one."""
    try:
        code = json.loads(body)["error"]["code"]
    except Exception:  # noqa: BLE001  (any body will do; the status says enough)
        return "(no error code)"
    # as the client shows codes: \w also let through digits (a card number) and any script
    return code if quotable_code(code) else "(no error code)"
