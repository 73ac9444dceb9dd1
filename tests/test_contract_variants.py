"""A service that speaks the contract legitimately, but not as the reference does: the generator
neither fails it nor misjudges it.

Against a real server on 127.0.0.1. Services that break the contract are
``tests/test_contract_breaches.py``'s.
"""

from __future__ import annotations

import json
import time

from gevent.pywsgi import WSGIServer

from journeys.results import reconcile_run
from tests.conftest import TOKEN


def test_a_report_with_more_fields_is_read_whole():
    """The contract lets a report carry fields the generator does not read: a service listing
    the payments it counted sends a report of 200 KB. ``--reconcile-run`` read its first 64 KB
    and failed the books with "the answer is not JSON"."""
    listed = [f"pay_{n:024d}" for n in range(6000)]

    def app(environ, start_response):
        environ["wsgi.input"].read()
        report = {
            "report_id": "rpt_1",
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "payments": {"succeeded": 1, "declined": 0},
            "totals": {"USD": {"count": 1, "amount": 500}},
            "brands": {"visa": 1},
            "listed": listed,
        }
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(report).encode()]

    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        report, _shift = reconcile_run.report_of_the_run(url, TOKEN, time.time() - 5)
    finally:
        server.stop()
    assert report["totals"] == {"USD": {"count": 1, "amount": 500}}
    assert len(report["listed"]) == len(listed)
