"""The baseline: a bare FastHttpUser posting one fixed, valid payment. What Locust alone costs.

``BENCH_RATE=R`` makes each user send R requests/s (``constant_throughput``); ``BENCH_WAIT=S``
waits S seconds between requests; neither = no wait at all.
"""

from __future__ import annotations

import json
import os

from locust import FastHttpUser, constant, constant_throughput, task

BODY = json.dumps(
    {
        "amount": 1250,
        "currency": "USD",
        "card": {
            "number": "4242424242424242",
            "exp_month": 12,
            "exp_year": 2099,
            "cvc": "123",
        },
        "customer": {
            "id": "cus_bench",
            "name": "Bench User",
            "email": "bench@example.com",
        },
        "metadata": {"persona": "bare"},
    },
    separators=(",", ":"),
)
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "Idempotency-Key": "bench-bare",
}
_RATE = float(os.environ.get("BENCH_RATE") or 0)
_WAIT = float(os.environ.get("BENCH_WAIT") or 0)


class BareUser(FastHttpUser):
    wait_time = constant_throughput(_RATE) if _RATE else constant(_WAIT)

    @task
    def pay(self) -> None:
        self.client.post("/pay", data=BODY, headers=HEADERS, name="bare: pay")
