"""Requests to the payment service outside Locust's client (urllib): the preflight's checks and
``--reconcile-run``'s report. Proxies are bypassed, redirects are not followed (they would
carry the token), interim 1xx answers are read past, an HTTPS service's certificate is taken as
Locust's users take it (unverified), and what a message may show of an answer never quotes the
service's bytes.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import urllib.error
import urllib.request
from email.message import Message
from urllib.parse import urlsplit, urlunsplit

from journeys import tracing
from journeys.wording import quotable_code
from payment_contract import REPORT_PATH

#: The service's internal token (report endpoint), from the environment only: never a flag.
TOKEN_ENV = "PAYMENT_INTERNAL_TOKEN"


def internal_token() -> str:
    """The internal token as it is sent: ``PAYMENT_INTERNAL_TOKEN`` without surrounding white
    space (the line end of a file it was read from), as the reference service reads it."""
    return os.environ.get(TOKEN_ENV, "").strip()


def without_credentials(host: str) -> str:
    """``host`` without ``user:password@``: safe to print, and what the checks connect to."""
    parts = urlsplit(host)
    if "@" not in parts.netloc:
        return host
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


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


def _as_the_users_do() -> ssl.SSLContext:
    """TLS without verifying the certificate, as Locust's users (``FastHttpUser.insecure``,
    True) reach the service: verified here, a service with a self-signed certificate took the
    load, but the checks were skipped and ``--reconcile-run`` failed the books for no report."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA certificates to load
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


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
    return post_json(
        report_url(host),
        filter_,
        {"Authorization": f"Bearer {token}"},
        timeout,
        read_bytes,
    )


def post_json(
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
        urllib.request.ProxyHandler({}),
        _NoRedirects,
        _FinalAnswers(context=_as_the_users_do()),
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


def error_code(body: bytes) -> str:
    """The contract's ``error.code`` (e.g. ``invalid_token``) if the body has one."""
    try:
        code = json.loads(body)["error"]["code"]
    except Exception:  # noqa: BLE001  (any body will do; the status says enough)
        return "(no error code)"
    # as the client shows codes: \w also let through digits (a card number) and any script
    return code if quotable_code(code) else "(no error code)"
