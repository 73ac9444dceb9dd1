"""The reference service, answering the contract legitimately but differently (for tests).

    python tests/contract_variant.py PORT UPSTREAM VARIATION[,VARIATION...]

A proxy in front of a running reference service (``UPSTREAM``, e.g. ``http://127.0.0.1:8000``)
that keeps its meaning (validation, idempotency, declines, reports) and changes how it is said,
the way another service speaking the same contract might:

* ``gzip``, ``deflate``, ``br``, ``x-gzip``  compressed bodies (``Content-Encoding``) when the
  request's ``Accept-Encoding`` allows it (``x-gzip``: gzip under its old name, which RFC 9110
  asks a client to read as gzip); several take turns
* ``chunked``          ``Transfer-Encoding: chunked`` instead of ``Content-Length``; with
  ``eof-body`` too, the three ways take turns
* ``close``            ``Connection: close`` on every answer
* ``eof-body``         no ``Content-Length`` nor chunks: the body ends as the connection closes
* ``idle-1s``          keep-alive connections idle for 1 s (or another ``idle-Ns``) are closed by
  the server
* ``slow``             every answer 0.3 s late
* ``charset``          ``Content-Type: application/json; charset=utf-8``
* ``problem-json``     errors as ``application/problem+json`` (the contract's error body)
* ``extra-fields``     unknown fields in every JSON object answered
* ``reversed-keys``    every JSON object's keys in reverse order
* ``uuid-ids``         payment ids as bare UUIDs (``payment_id`` of a decline too)
* ``long-ids``         payment ids of 120 characters (with ``uuid-ids``, the two in turns)
* ``iso-created``      a 201's ``created`` as an ISO 8601 string (not the contract's unix seconds)
* ``zero-currencies``  reports list every currency and brand, with zeros where none were paid
* ``big-report``       reports carry a field of some 120 KB (a list of payment ids)
* ``base-path``        served under ``/v1`` only (``--host http://127.0.0.1:PORT/v1``)
* ``retry-after-date`` every third ``/pay`` is a 429 whose ``Retry-After`` is an HTTP date 1 s
  ahead (nothing is forwarded: a 429 stores nothing)
* ``replay-200``       a replayed 201 (same key, same body) answered 200 (not the contract)
* ``early-hints``      a ``103 Early Hints`` before every answer
* ``http-1.0``         HTTP/1.0 answers (a connection per request)
* ``503-retry-after``  every fourth ``/pay`` is a 503 with ``Retry-After: 1`` (nothing forwarded)
* ``tls``              HTTPS with a self-signed certificate (made with ``openssl`` at start)

``GET /stats`` returns what it saw: requests per path, connections accepted.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import http.client
import itertools
import json
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import brotli

from payment_contract import BRANDS, CURRENCIES

VARIATIONS = set(sys.argv[3].split(",")) if len(sys.argv) > 3 else set()
UPSTREAM = urlsplit(sys.argv[2]) if len(sys.argv) > 2 else None
PREFIX = "/v1" if "base-path" in VARIATIONS else ""
lock = threading.Lock()
seen: Counter = Counter()
ids: dict[str, str] = {}  # the reference's payment id -> this variant's
local = threading.local()
COMPRESS = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress}
COMPRESS["x-gzip"] = gzip.compress  # gzip's old name, which a client must read as gzip
ENCODINGS = itertools.cycle([e for e in COMPRESS if e in VARIATIONS] or [None])
_framings = [f for f in ("chunked", "eof-body") if f in VARIATIONS]
#: how a body's end is told: one way, or all three in turns when several are asked for
FRAMINGS = itertools.cycle(
    _framings + ["length"] if len(_framings) > 1 else _framings or ["length"]
)


def variant_id(reference_id: str) -> str:
    """The same payment always under the same id of this variant's format (with both
    ``uuid-ids`` and ``long-ids``, the two in turns)."""
    with lock:
        if reference_id not in ids:
            long = "long-ids" in VARIATIONS and (
                "uuid-ids" not in VARIATIONS or len(ids) % 2
            )
            if long:
                ids[reference_id] = ("pay_" + uuid.uuid4().hex * 4)[
                    :100
                ] + reference_id[:20]
            else:
                ids[reference_id] = str(uuid.uuid4())
        return ids[reference_id]


#: maps whose keys are data (currencies, brands, the caller's metadata): no field is added there
MAPS = ("totals", "brands", "metadata", "filter")


def reshape(value, in_map: bool = False):
    """The reference's answer as this variant says it."""
    if isinstance(value, dict):
        value = {k: reshape(v, k in MAPS) for k, v in value.items()}
        if "uuid-ids" in VARIATIONS or "long-ids" in VARIATIONS:
            for key in ("id", "payment_id"):
                if isinstance(value.get(key), str) and value[key].startswith("pay_"):
                    value[key] = variant_id(value[key])
        if "iso-created" in VARIATIONS and isinstance(value.get("created"), int):
            moment = dt.datetime.fromtimestamp(value["created"], dt.UTC)
            value["created"] = moment.isoformat().replace("+00:00", "Z")
        if "extra-fields" in VARIATIONS and not in_map:
            value["x_variant"] = {"livemode": False, "n": [1, 2.5, None, "é"]}
        if "reversed-keys" in VARIATIONS:
            value = dict(reversed(value.items()))
    return value


def with_zero_currencies(report: dict) -> dict:
    totals = report.get("totals") or {}
    report["totals"] = {c: totals.get(c, {"count": 0, "amount": 0}) for c in CURRENCIES}
    brands = report.get("brands") or {}
    report["brands"] = {b: brands.get(b, 0) for b in BRANDS}
    return report


def upstream() -> http.client.HTTPConnection:
    if getattr(local, "conn", None) is None:
        local.conn = http.client.HTTPConnection(
            UPSTREAM.hostname, UPSTREAM.port, timeout=60
        )
    return local.conn


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0" if "http-1.0" in VARIATIONS else "HTTP/1.1"
    # idle-Ns: the server waits N s for the next request on a kept-alive connection
    timeout = next((float(v[5:-1]) for v in VARIATIONS if v.startswith("idle-")), None)

    def log_message(self, *_args) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, each kept-alive answer waited
        # for the client's delayed ACK (some 40 ms)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with lock:
            seen["connections"] += 1

    def answer(self, status: int, data: bytes, content_type: str, extra=()) -> None:
        if "slow" in VARIATIONS:
            time.sleep(0.3)
        headers = [("Content-Type", content_type), *extra]
        encoding = next(ENCODINGS, None)  # in turns when several are asked for
        if encoding and encoding.removeprefix("x-") in self.headers.get(
            "Accept-Encoding", ""
        ):
            data = COMPRESS[encoding](data)
            headers.append(("Content-Encoding", encoding))
        if "close" in VARIATIONS:
            headers.append(("Connection", "close"))
            self.close_connection = True
        if "early-hints" in VARIATIONS and self.path not in (
            "/health",
            "/stats",
        ):  # a 1xx a client must read past (RFC 9110 15.2)
            self.wfile.write(
                b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n"
            )
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        framing = next(FRAMINGS)
        if framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(data), 7):
                piece = data[start : start + 7]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif framing == "eof-body":  # the body ends where the connection does
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path in ("/stats", "/health"):
            body = json.dumps(dict(seen) if self.path == "/stats" else {"status": "ok"})
            return self.answer(200, body.encode(), "application/json")
        self.forward("GET")

    def do_POST(self) -> None:
        if self.path in ("/stats", "/health"):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            return self.do_GET()
        self.forward("POST")

    def forward(self, method: str) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path
        if PREFIX:
            if not path.startswith(PREFIX + "/"):
                body = {"error": {"type": "invalid_request_error", "code": "not_found"}}
                return self.answer(404, json.dumps(body).encode(), "application/json")
            path = path[len(PREFIX) :]
        with lock:
            seen[path] += 1
            count = seen[path]
        if "retry-after-date" in VARIATIONS and path == "/pay" and count % 3 == 0:
            later = email.utils.formatdate(time.time() + 1, usegmt=True)
            body = {"error": {"type": "rate_limit_error", "code": "rate_limited"}}
            return self.answer(
                429,
                json.dumps(body).encode(),
                "application/json",
                [("Retry-After", later)],
            )
        if "503-retry-after" in VARIATIONS and path == "/pay" and count % 4 == 0:
            body = {"error": {"type": "api_error", "code": "service_unavailable"}}
            return self.answer(
                503,
                json.dumps(body).encode(),
                "application/json",
                [("Retry-After", "1")],
            )
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower()
            not in ("host", "accept-encoding", "connection", "content-length")
        }
        for fresh in (False, True):
            try:
                conn = upstream()
                conn.request(method, path, body=raw, headers=headers)
                got = conn.getresponse()
                data = got.read()
                break
            except (OSError, http.client.HTTPException):
                # the reference closed a connection kept alive too long (uvicorn: after 5 s)
                conn.close()
                local.conn = None
                if fresh:
                    raise
        passed = [
            (k, v)
            for k, v in got.getheaders()
            if k.lower() in ("retry-after", "allow", "idempotent-replayed")
        ]
        status = got.status
        if (
            "replay-200" in VARIATIONS
            and got.getheader("Idempotent-Replayed") == "true"
        ):
            status = 200 if status == 201 else status
        content_type = "application/json"
        if "charset" in VARIATIONS:
            content_type = "application/json; charset=utf-8"
        if "problem-json" in VARIATIONS and status >= 400:
            content_type = "application/problem+json"
        try:
            body = json.loads(data)
        except ValueError:
            return self.answer(status, data, got.getheader("Content-Type", ""), passed)
        if path == "/internal/generate-report" and status == 200:
            if "zero-currencies" in VARIATIONS:
                body = with_zero_currencies(body)
            if "big-report" in VARIATIONS:  # e.g. the payments it counted, one by one
                body["x_payments"] = [f"pay_{n:024d}" for n in range(4000)]
        body = reshape(body)
        self.answer(
            status,
            json.dumps(body, ensure_ascii=False).encode(),
            content_type,
            passed,
        )


def self_signed_tls() -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 that no one signed."""
    folder = Path(tempfile.mkdtemp())
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    if "tls" in VARIATIONS:
        server.socket = self_signed_tls().wrap_socket(server.socket, server_side=True)
    server.serve_forever()
