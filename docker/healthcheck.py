"""Docker HEALTHCHECK for both targets, with the standard library only (the image has no curl).

python3 healthcheck.py service     GET /health on the payment service -> 200
python3 healthcheck.py generator   GET / on the Locust web UI -> 200 (a login page counts);
                                   headless runs and workers have no UI: the container is
                                   running, so Locust (PID 1) is alive -> healthy
"""

from __future__ import annotations

import os
import sys
import urllib.request


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _has_web_ui() -> bool:
    try:
        with open("/proc/1/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")
    except OSError:
        cmdline = []
    return not (
        _truthy("LOCUST_HEADLESS")
        or _truthy("LOCUST_MODE_WORKER")
        or b"--headless" in cmdline
        or b"--worker" in cmdline
    )


def main(role: str) -> int:
    if role == "service":
        url = (
            f"http://127.0.0.1:{os.environ.get('PAYMENT_SERVICE_PORT', '8000')}/health"
        )
    elif role == "generator":
        if not _has_web_ui():
            return 0
        base = os.environ.get("LOCUST_WEB_BASE_PATH", "").rstrip("/")
        url = f"http://127.0.0.1:{os.environ.get('LOCUST_WEB_PORT', '8089')}{base}/"
    else:
        print(
            f"usage: healthcheck.py service|generator (got {role!r})", file=sys.stderr
        )
        return 2
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            ok = response.status == 200
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    print(f"{url}: {response.status}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "generator"))
