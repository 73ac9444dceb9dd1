"""Preflight: make sure the target answers before any user starts (or wait for it, if asked),
and that it takes the internal token: a misconfiguration found now is exit 2 in a second, not a
failed run minutes later."""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

from journeys import tracing

log = logging.getLogger(__name__)

NO_TARGET = (
    "No target: pass --host http://127.0.0.1:8000 or set LOCUST_HOST "
    "(the reference service: python -m payment_service)."
)


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
            return (
                f"The target {without_credentials(host)} cannot be reached{waited} ({reason}). Start the payment service "
                f"or fix --host / LOCUST_HOST; pass --wait-for-host SECONDS to wait for it to come up."
            )
        time.sleep(poll_s)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is not the service answering, and following it would carry the token to
    wherever it points (urllib keeps the Authorization header): it stays a 3xx, not checked."""

    def redirect_request(self, *_args, **_kwargs):
        return None


def token_problem(host: str, token: str, timeout: float = 5.0) -> str | None:
    """A one-line error when the target refuses ``token`` (401/403 from the report endpoint).

    Anything else (200, 404, 5xx, no answer in ``timeout``) is left to the run, with a warning:
    a service that speaks the contract but is slow or flaky must still be load-tested. Proxies
    are bypassed (Locust's client does not use them, and a proxy's 403 is not the service's).
    """
    host = without_credentials(host)
    url = host.rstrip("/") + "/internal/generate-report"
    request = urllib.request.Request(
        url,
        data=json.dumps({"batch_id": "preflight-token-check"}).encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            **tracing.drop_headers(),
        },
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects)
    try:
        with opener.open(request, timeout=timeout):
            return None
    except urllib.error.HTTPError as exc:
        if exc.code not in (401, 403):
            log.warning("token check: %s answered %s; not checked", url, exc.code)
            return None
        return (
            f"The target {host} refused PAYMENT_INTERNAL_TOKEN: {exc.code} {_error_code(exc)}; "
            "set PAYMENT_INTERNAL_TOKEN to the service's internal token."
        )
    except (OSError, http.client.HTTPException, ValueError) as exc:
        log.warning("token check: no answer from %s (%s); not checked", url, exc)
        return None


def _error_code(exc: urllib.error.HTTPError) -> str:
    """The contract's ``error.code`` (e.g. ``invalid_token``) if the body has one."""
    try:
        code = json.loads(exc.read(2000))["error"]["code"]
    except Exception:  # noqa: BLE001  (any body will do; the status says enough)
        return "(no error code)"
    return (
        code
        if isinstance(code, str) and re.fullmatch(r"\w{1,40}", code)
        else "(no error code)"
    )
