"""A payment service that breaks the contract in one chosen way (for tests of the generator).

    python tests/contract_breaker.py PORT MODE

The reference service cannot be made to answer wrongly, and the generator must survive any service
that claims the contract. Otherwise it answers like the contract (201 echo, 402 for the declining
test cards, a batch report over what it was paid), and in MODE:

* ``echo-full-number``  201 whose ``card.last4`` is the whole card number
* ``retry-after-garbage``  every other /pay is a 429 with ``Retry-After: soon``
* ``redirect``          /pay answers 307 to /elsewhere (which counts the requests that follow it)
* ``status-200``        /pay answers 200 instead of 201
* ``every-third-200``   every third /pay answers 200 instead of 201
* ``decline-no-code``   402 without ``decline_code``
* ``report-mistyped``   the report's counts are strings
* ``drip``              every third 201 sends its body one byte every 0.3 s
* ``html-404``          every other /pay is a proxy's 404 page (HTML)

A /pay without a card (the generator's preflight sends ``{}``) is a 400, as in the contract.

``GET /stats`` returns what it saw: requests per path.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from payment_contract import DECLINING_TEST_CARDS, brand_of

MODE = sys.argv[2]
lock = threading.Lock()
seen: Counter = Counter()
batches: dict = defaultdict(
    lambda: {"totals": defaultdict(lambda: [0, 0]), "declined": 0}
)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args) -> None:
        pass

    def answer(
        self, status: int, body, headers: dict | None = None, drip: bool = False
    ) -> None:
        html = isinstance(body, str)
        if html:
            data = body.encode()
        else:
            data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "text/html" if html else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not drip:
            self.wfile.write(data)
            return
        try:
            for byte in data:  # until the client gives up
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.3)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:
        self.answer(200, dict(seen) if self.path == "/stats" else {"status": "ok"})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            seen[self.path] += 1
            count = seen[self.path]
        body = json.loads(raw or b"{}")
        if self.path == "/pay":
            self.pay(body, count)
        elif self.path == "/internal/generate-report":
            self.report(body)
        else:
            self.answer(404, {"error": {"code": "not_found", "message": self.path}})

    def pay(self, body: dict, count: int) -> None:
        if "card" not in body:
            return self.answer(400, {"error": {"code": "missing_idempotency_key"}})
        if MODE == "html-404" and count % 2:
            return self.answer(404, "<html><body><h1>404 Not Found</h1></body></html>")
        if MODE == "redirect":
            return self.answer(307, None, {"Location": "/elsewhere"})
        if MODE == "retry-after-garbage" and count % 2:
            return self.answer(
                429, {"error": {"code": "rate_limited"}}, {"Retry-After": "soon"}
            )
        number, batch = body["card"]["number"], body["metadata"].get("batch_id")
        payment_id = "pay_" + uuid.uuid4().hex[:12]
        decline = DECLINING_TEST_CARDS.get(number)
        if decline:
            with lock:
                batches[batch]["declined"] += 1
            error = {"code": "card_declined", "payment_id": payment_id}
            if MODE != "decline-no-code":
                error["decline_code"] = decline
            return self.answer(402, {"error": error})
        with lock:
            entry = batches[batch]["totals"][body["currency"]]
            entry[0] += 1
            entry[1] += body["amount"]
        last4 = number if MODE == "echo-full-number" else number[-4:]
        wrong = MODE == "status-200" or (MODE == "every-third-200" and count % 3 == 0)
        self.answer(
            200 if wrong else 201,
            {
                "id": payment_id,
                "status": "succeeded",
                "amount": body["amount"],
                "currency": body["currency"],
                "card": {"brand": brand_of(number), "last4": last4},
            },
            drip=MODE == "drip" and count % 3 == 0,
        )

    def report(self, body: dict) -> None:
        with lock:
            batch = batches[body.get("batch_id")]
            totals = {
                c: {"count": n, "amount": a} for c, (n, a) in batch["totals"].items()
            }
            declined = batch["declined"]
        if MODE == "report-mistyped":
            totals = {c: {k: str(v) for k, v in t.items()} for c, t in totals.items()}
        succeeded = sum(int(t["count"]) for t in totals.values())
        self.answer(
            200,
            {
                "report_id": "rpt_1",
                "payments": {"succeeded": succeeded, "declined": declined},
                "totals": totals,
                "brands": {},
            },
        )


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
