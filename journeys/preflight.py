"""Preflight: make sure the target answers before any user starts (or wait for it, if asked)."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit


def target_address(host: str) -> tuple[str, int]:
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--host {host!r} is not a URL like http://127.0.0.1:8000")
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
                f"The target {host} cannot be reached{waited} ({reason}). Start the payment service "
                f"or fix --host / LOCUST_HOST; pass --wait-for-host SECONDS to wait for it to come up."
            )
        time.sleep(poll_s)
