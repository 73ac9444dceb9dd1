"""Docker HEALTHCHECK for both targets, with the standard library only (the image has no curl).

python3 healthcheck.py service     GET /health on the payment service -> 200
python3 healthcheck.py generator   GET / on the Locust web UI -> 200 (a login page counts);
                                   https with --tls-cert (self-signed is fine); port, base path
                                   and TLS from Locust's arguments or LOCUST_* env; headless
                                   runs and workers have no UI: the container is running, so
                                   Locust (PID 1) is alive -> healthy
"""

from __future__ import annotations

import os
import random
import ssl
import sys
import urllib.request


def _truthy(name: str) -> bool:
    # the values Locust itself takes as true (LOCUST_HEADLESS=on runs headless)
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _cmdline() -> list[str]:
    """Locust's arguments: PID 1 is `python3 .../locust -f locustfile.py ...`."""
    try:
        with open("/proc/1/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def _option(cmdline: list[str], flag: str, env: str, default: str = "") -> str:
    """A Locust option's value: the last `--flag X` or `--flag=X`, else a non-empty $env."""
    value = os.environ.get(env, "").strip() or default
    for i, arg in enumerate(cmdline):
        if arg == flag and i + 1 < len(cmdline):
            value = cmdline[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def _drop_headers() -> dict[str, str]:
    """Trace headers saying "drop" (sampling priority -1), in Datadog's and W3C's styles: a
    traced service would start a trace for every probe (every 5 s), none of it load. The
    standard library's copy of ``journeys.tracing.drop_headers``' fallback (this script runs
    every few seconds and imports nothing of ours)."""
    trace_id, parent_id = random.getrandbits(63) or 1, random.getrandbits(63) or 1
    return {
        "x-datadog-trace-id": str(trace_id),
        "x-datadog-parent-id": str(parent_id),
        "x-datadog-sampling-priority": "-1",
        "traceparent": f"00-{trace_id:032x}-{parent_id:016x}-00",
        "tracestate": "dd=s:-1",
    }


def _has_web_ui(cmdline: list[str]) -> bool:
    return not (
        _truthy("LOCUST_HEADLESS")
        or _truthy("LOCUST_MODE_WORKER")
        or "--headless" in cmdline
        or "--worker" in cmdline
    )


def main(role: str) -> int:
    if role == "service":
        url = (
            f"http://127.0.0.1:{os.environ.get('PAYMENT_SERVICE_PORT', '8000')}/health"
        )
    elif role == "generator":
        cmdline = _cmdline()
        if not _has_web_ui(cmdline):
            return 0
        port = _option(cmdline, "--web-port", "LOCUST_WEB_PORT", "8089")
        base = _option(cmdline, "--web-base-path", "LOCUST_WEB_BASE_PATH").rstrip("/")
        tls = bool(_option(cmdline, "--tls-cert", "LOCUST_TLS_CERT"))
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}{base}/"
    else:
        print(
            f"usage: healthcheck.py service|generator (got {role!r})", file=sys.stderr
        )
        return 2
    try:
        context = None
        if url.startswith("https"):
            # a liveness probe on loopback: the certificate is for the UI's users to check
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        probe = urllib.request.Request(url, headers=_drop_headers())
        with urllib.request.urlopen(probe, timeout=2, context=context) as response:
            ok = response.status == 200
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    print(f"{url}: {response.status}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "generator"))
