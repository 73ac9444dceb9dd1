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
* ``decline-no-id``     402 without ``payment_id``
* ``report-mistyped``   the report's counts are strings
* ``drip``              every third 201 sends its body one byte every 0.3 s
* ``html-404``          every other /pay is a proxy's 404 page (HTML)
* ``hostile-strings``   codes and ids carry markup, ANSI escapes, formulas, newlines, card numbers
  and 100 KB, different in every answer: declines (their ``payment_id`` the card number), 422s,
  503s, and 201s whose ``id`` is a number, an object or such a string glued to the card number
  (always for a key sent again: a replay gets another one)
* ``garbage-status-line``  the report endpoint answers a status line of markup, an ANSI escape
  and a card number
* ``report-code-card``  the report endpoint refuses with a 400 whose error code is a card number
* ``report-201``        the report endpoint answers a well-formed report with 201, not 200
* ``hostile-currency``  every report's ``totals`` also holds a 3-character key that is markup,
  a formula or a terminal escape (``<B>``, ``=A1``, ESC ``[J``), with one payment in it
* ``report-succeeded-off``  every report's ``payments.succeeded`` is one more than its ``totals``
  hold (the totals themselves are right)
* ``undecodable-body``  every other /pay answer says ``Content-Encoding: gzip`` over a body that
  is not gzip
* ``report-other-codes``  the report endpoint refuses a missing token, a wrong token and a bad
  range with the contract's statuses but other error codes
* ``report-count-card``  every report's count per currency is a card number (a whole number, so
  the report has the contract's shape)
* ``deep-json``         every 201 and every report is JSON nested 100,000 levels deep
* ``huge-created``      every 201's ``created`` is a whole number of 400 digits

In every mode ``/pay`` ignores the ``Idempotency-Key`` header: it pays without one, or with one
longer than 255 characters.

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
keys_seen: set = set()
#: hostile strings, each made different per answer by a counter: {n} in them
HOSTILE = (
    "<script>alert({n})</script>",
    '"><img src=x onerror=alert({n})>',
    '=HYPERLINK("http://evil.example/{n}","x")',
    "+{n}+1",
    "-{n}-1",
    "@SUM({n})",
    "\x1b[2J\x1b[31mred {n}\x1b[0m\r\nforged log line",
    "abc\u202edcba\u200b{n}",
    "x" * 100_000 + "{n}",
)
GARBAGE_STATUS_LINE = (
    b"HTTP/1.1 2OO \x1b[2J<script>alert(1)</script> 4242424242424242\r\n\r\n"
)
#: ``deep-json``'s answer: deeper than Python's recursion limit
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
#: ``report-count-card``'s count: a test card's number
CARD_COUNT = "4242424242424242"
HOSTILE_CURRENCIES = ("<B>", "=A1", "\x1b[J")
batches: dict = defaultdict(
    lambda: {"totals": defaultdict(lambda: [0, 0]), "declined": 0}
)


def hostile_answer(count: int, number: str, decline: str | None, again: bool):
    """``hostile-strings``: (a refusal to send instead, or None; the decline code; the payment
    id), the strings different in every answer. A key sent ``again`` (a resend, a replay) is
    paid under another string id: a replay is a duplicate charge, whose ids the client logs."""
    hostile = HOSTILE[count % len(HOSTILE)].format(n=count)
    if decline:
        return None, hostile, number
    if again:
        return None, None, hostile + number
    if count % 6 == 0:
        return (422, {"error": {"code": hostile}}), None, None
    if count % 6 == 1:
        return (503, {"error": {"code": hostile, "x": number}}), None, None
    # a number, an object, or a string with the card number in it
    ids = {2: count, 3: {"a": hostile}}
    return None, None, ids.get(count % 6, hostile + number)


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
        if MODE == "undecodable-body" and self.path == "/pay" and seen["/pay"] % 2:
            self.send_header("Content-Encoding", "gzip")  # over plain JSON
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

    def answer_deep(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(DEEP_JSON)))
        self.end_headers()
        self.wfile.write(DEEP_JSON)

    def do_GET(self) -> None:
        self.answer(200, dict(seen) if self.path == "/stats" else {"status": "ok"})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            seen[self.path] += 1
            count = seen[self.path]
        try:
            body = json.loads(raw or b"{}")
        except ValueError:  # a probe's malformed body
            return self.answer(400, {"error": {"code": "invalid_json"}})
        if MODE == "deep-json" and (self.path != "/pay" or "card" in body):
            return self.answer_deep(201 if self.path == "/pay" else 200)
        if self.path == "/pay":
            self.pay(body, count)
        elif self.path == "/internal/generate-report" and MODE == "garbage-status-line":
            self.close_connection = True
            self.wfile.write(GARBAGE_STATUS_LINE)
        elif self.path == "/internal/generate-report" and MODE == "report-code-card":
            self.answer(400, {"error": {"code": "4242424242424242"}})
        elif self.path == "/internal/generate-report" and MODE == "report-other-codes":
            self.report_other_codes(body)
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
        number, batch = (
            body["card"]["number"],
            (body.get("metadata") or {}).get("batch_id"),
        )
        payment_id = "pay_" + uuid.uuid4().hex[:12]
        decline = DECLINING_TEST_CARDS.get(number)
        if MODE == "hostile-strings":
            key = self.headers.get("Idempotency-Key")
            with lock:
                again = key in keys_seen
                keys_seen.add(key)
            refusal, decline, payment_id = hostile_answer(count, number, decline, again)
            if refusal:
                return self.answer(*refusal)
        if decline:
            with lock:
                batches[batch]["declined"] += 1
            error = {"code": "card_declined", "payment_id": payment_id}
            if MODE != "decline-no-code":
                error["decline_code"] = decline
            if MODE == "decline-no-id":
                del error["payment_id"]
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
                "created": 10**400 if MODE == "huge-created" else int(time.time()),
            },
            drip=MODE == "drip" and count % 3 == 0,
        )

    def report_other_codes(self, body: dict) -> None:
        """The contract's statuses for a refused report, with codes of its own."""
        auth = self.headers.get("Authorization") or ""
        if not auth:
            return self.answer(401, {"error": {"code": "unauthorized"}})
        if auth.startswith("Bearer wrong-"):
            return self.answer(403, {"error": {"code": "forbidden"}})
        if body.get("from") and body.get("to") and body["from"] > body["to"]:
            return self.answer(400, {"error": {"code": "bad_request"}})
        self.report(body)

    def report(self, body: dict) -> None:
        with lock:
            batch = batches[body.get("batch_id")]
            totals = {
                c: {"count": n, "amount": a} for c, (n, a) in batch["totals"].items()
            }
            declined = batch["declined"]
        if MODE == "hostile-currency":
            key = HOSTILE_CURRENCIES[seen[self.path] % len(HOSTILE_CURRENCIES)]
            totals[key] = {"count": 1, "amount": 100}
        if MODE == "report-count-card":
            totals = {c: {**t, "count": int(CARD_COUNT)} for c, t in totals.items()}
        if MODE == "report-mistyped":
            totals = {c: {k: str(v) for k, v in t.items()} for c, t in totals.items()}
        succeeded = sum(int(t["count"]) for t in totals.values())
        if MODE == "report-succeeded-off":
            succeeded += 1
        self.answer(
            201 if MODE == "report-201" else 200,
            {
                "report_id": "rpt_1",
                "payments": {"succeeded": succeeded, "declined": declined},
                "totals": totals,
                "brands": {},
            },
        )


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
