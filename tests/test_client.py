"""API client bookkeeping: the duplicate-charge memory stays bounded; what the ledger books."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import time
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import SimpleNamespace

import gevent
import pytest
from gevent.pywsgi import WSGIServer
from locust import events
from locust.contrib.fasthttp import FastHttpSession

from journeys.client import KEYS_REMEMBERED, PaymentApi, RetryPolicy, _json_body
from journeys.data import PaymentData, build_pools
from journeys.personas import load_personas
from journeys.report_shape import report_shape_problem
from journeys.results import ledger
from tests.conftest import ROOT, customer_api


def test_a_reused_key_naming_another_payment_is_a_duplicate_and_memory_stays_bounded():
    api = PaymentApi(session=None, jitter_rng=random.Random(1), token=None)
    for n in range(1000):  # a long run: one key per payment
        assert api._remember(f"key-{n}", f"pay_{n}") is None  # new here
    assert len(api._ids_by_key) == KEYS_REMEMBERED
    recent = f"key-{999}"
    # a replay names the same payment; a duplicate charge names another; the first id stays
    assert api._remember(recent, "pay_999") == "pay_999"
    assert api._remember(recent, "pay_other") == "pay_999"
    assert api._ids_by_key[recent] == "pay_999"
    assert (
        api._remember("key-0", "pay_other") is None
    )  # long forgotten: nothing to compare


def test_a_payment_given_up_after_429s_alone_is_not_booked_as_unknown(start_service):
    """A 429 stores nothing (the contract), so giving up after rate-limit waits leaves no
    payment whose fate is unknown; a timeout or 5xx would."""
    service = start_service("--rate-limit-rps", "0.5")  # one /pay every 2 s
    persona = next(
        p for p in load_personas(ROOT / "personas.csv") if p.role == "customer"
    )
    build_pools(persona, 1)
    data = PaymentData(persona, 1, 0)
    session = FastHttpSession(service.url, events.request, user=None)
    policy = RetryPolicy(rate_limit_waits=1, retry_after_cap_s=0.05)
    api = PaymentApi(session, random.Random(1), None, policy)
    ledger.entries.clear()

    def pay():
        currency = data.currency()
        return api.pay(
            "checkout: pay", card=data.good_card(), customer=data.customer(),
            amount=data.amount_minor(currency), currency=currency,
            key=data.idempotency_key(), metadata={"journey": "checkout"},
        )  # fmt: skip

    assert pay().kind == "paid"
    given_up = pay()  # 429, a short wait, 429 again: give up
    assert (given_up.kind, given_up.attempts) == ("rate_limited", 2)
    assert sum(entry[0] for entry in ledger.entries.values()) == 1
    assert sum(entry[2] for entry in ledger.entries.values()) == 0, ledger.entries
    assert service.query("SELECT count(*) FROM payments") == [(1,)]
    # a probe that needed this payment says so, not "expected 201, got 0"
    from journeys.probes import _not_paid

    assert _not_paid("key reuse: first use", given_up) == (
        "key reuse: first use: still 429 rate limited after every wait"
    )


def test_a_checkout_without_an_answer_says_its_fate_is_unknown():
    """A checkout whose payment got no answer after every resend fails naming that (the
    payment may exist, the ledger books it unknown), not as if the service had refused it: the
    failures table read "failed: 503 service_unavailable" like a one-off refusal."""
    from journeys.client import not_paid

    down = b'{"error": {"code": "service_unavailable", "message": "down"}}'
    app = json_app("503 Service Unavailable", down)
    with customer_api(app, RetryPolicy(resends=1, backoff_s=0.01)) as (api, data):
        currency = data.currency()
        answer = api.pay(
            "checkout: pay", card=data.good_card(), customer=data.customer(),
            amount=data.amount_minor(currency), currency=currency,
            key=data.idempotency_key(), metadata={"journey": "checkout"},
        )  # fmt: skip
    assert (answer.kind, answer.attempts) == ("unknown", 2)
    assert not_paid(answer) == "no answer after every resend (503 service_unavailable)"
    refused = SimpleNamespace(
        kind="refused", status=422, error_code="x", detail="422 x"
    )
    assert not_paid(refused) == "422 x"


def json_app(status: str, body: bytes):
    """A WSGI app answering every request with ``status`` and the JSON ``body``."""

    def app(environ, start_response):
        environ["wsgi.input"].read()
        start_response(status, [("Content-Type", "application/json")])
        return [body]

    return app


@contextlib.contextmanager
def batch_journey(app):
    """(an operator's BatchReportJourney, a JourneyRun of it) against ``app`` for the block."""
    from journeys.base import JourneyRun
    from journeys.operator import BatchReportJourney

    policy = RetryPolicy(resends=1, backoff_s=0.01)
    with customer_api(app, policy, role="operator") as (api, data):
        user = SimpleNamespace(
            persona=data.persona, data=data, api=api, operator_id="ops-0-0",
            min_wait=None, max_wait=None, wait_function=None,
        )  # fmt: skip
        yield BatchReportJourney(user), JourneyRun("batch_report", data.persona.name)


def pay_one_batch(app) -> tuple[str, object]:
    """The operator's ``pay_batch`` against ``app``: (why the batch failed, its JourneyRun)."""
    from journeys.operator import Ledger

    with batch_journey(app) as (journey, run):
        return journey.pay_batch(run, "batch_1", Ledger()), run


def test_a_batch_payment_says_whether_it_was_refused_or_never_answered():
    """A batch stops at a payment that is neither paid nor declined, and says which it was:
    refused (the service's answer: nothing stored) or no answer after every resend (the payment
    may exist: the ledger books it unknown). Both read "batch payment without a usable answer
    (...)", a 422 as if the service had not answered, a 503 as if it had refused once."""
    down = b'{"error": {"code": "service_unavailable"}}'
    failure, run = pay_one_batch(json_app("503 Service Unavailable", down))
    unanswered = "no answer after every resend (503 service_unavailable)"
    assert failure == f"batch payment: {unanswered}"
    assert (run.payments, run.attempts, run.unsettled_payments) == (1, 2, 1)
    expired = b'{"error": {"code": "expired_card"}}'
    failure, run = pay_one_batch(json_app("422 Unprocessable Entity", expired))
    assert failure == "batch payment: 422 expired_card"  # refused at once: not resent
    assert (run.payments, run.attempts, run.unsettled_payments) == (1, 1, 1)


def test_a_batch_payment_rate_limited_to_the_end_says_so_not_unanswered():
    """A payment given up after 429s alone got an answer every time, and the answer says it
    stored nothing (the ledger books nothing unknown): "no answer after every resend (429 rate
    limited)" read as an outage that may have charged."""

    def app(environ, start_response):
        environ["wsgi.input"].read()
        headers = [("Content-Type", "application/json"), ("Retry-After", "0")]
        start_response("429 Too Many Requests", headers)
        return [b'{"error": {"code": "rate_limited"}}']

    failure, run = pay_one_batch(app)
    assert failure == "batch payment: still 429 rate limited after every wait"
    assert (run.payments, run.attempts, run.unsettled_payments) == (1, 6, 1)


def test_an_unexpected_decline_fails_the_batch_as_it_fails_a_checkout():
    """A decline the card should not bring (a good card declined, another code than the test
    card's) breaks the contract: a checkout fails on it, and so does a batch now, naming it. The
    batch counted it as an ordinary decline, reconciled (the report counts declines too) and
    the journeys table read every such batch as ok."""
    declined = (
        b'{"error": {"type": "card_error", "code": "card_declined", '
        b'"decline_code": "do_not_honor", "payment_id": "pay_1"}}'
    )
    failure, run = pay_one_batch(json_app("402 Payment Required", declined))
    assert failure.startswith("batch payment: unexpected decline do_not_honor ("), (
        failure
    )
    assert (run.payments, run.declined_payments, run.unsettled_payments) == (1, 1, 0)


def test_a_batch_without_its_report_says_whether_it_was_refused_or_never_answered():
    """A batch whose report did not come says which it was, as a batch payment does: the
    report refused (403 invalid_token: a wrong token, no use resending) or no answer after
    every resend. Both read "no report (report: ...)", six 503s like one refusal."""
    from journeys.operator import Ledger

    down = b'{"error": {"code": "service_unavailable"}}'
    with batch_journey(json_app("503 Service Unavailable", down)) as (journey, run):
        outcome = journey.reconcile(run, "batch_1", Ledger())
    unanswered = "no answer after every resend (503 service_unavailable)"
    assert outcome == ("failed", f"no report: {unanswered}")
    wrong_token = b'{"error": {"code": "invalid_token"}}'
    with batch_journey(json_app("403 Forbidden", wrong_token)) as (journey, run):
        outcome = journey.reconcile(run, "batch_1", Ledger())
    assert outcome == ("failed", "no report: 403 invalid_token")


@contextlib.contextmanager
def session_to(app):
    """A FastHttpSession to a real HTTP server on 127.0.0.1 that runs the WSGI ``app``."""
    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    try:
        yield FastHttpSession(
            f"http://127.0.0.1:{server.server_port}", events.request, user=None
        )
    finally:
        server.stop()


def _cookies_seen(
    jar_factory, set_cookie: str | None, header: str = "Set-Cookie"
) -> list[str | None]:
    """The Cookie header of four requests to a real HTTP server on 127.0.0.1 that sets
    ``set_cookie`` (in ``header``) on its second answer, sent through a FastHttpSession with
    the given jar."""
    seen: list[str | None] = []

    def app(environ, start_response):
        seen.append(environ.get("HTTP_COOKIE"))
        headers = [("Content-Type", "application/json")]
        if set_cookie and len(seen) == 2:
            headers.append((header, set_cookie))
        start_response("200 OK", headers)
        return [b"{}"]

    with session_to(app) as session:
        if jar_factory is not None:
            jar_factory(session)
        for _ in range(4):
            session.post("/pay", data=b"{}").raise_for_status()
    return seen


def test_the_lazy_cookie_jar_keeps_and_sends_cookies_as_locusts_own_jar_does():
    """The users' cookie jar skips its work while there are no cookies, and otherwise behaves
    as Locust's: a cookie set by the service (or a load balancer) goes back on later requests."""
    from journeys import cookies

    set_cookie = "lb=node-2; Path=/"
    stock = _cookies_seen(None, set_cookie)
    lazy = _cookies_seen(cookies.install, set_cookie)
    assert stock == [None, None, "lb=node-2", "lb=node-2"]
    assert lazy == stock
    assert _cookies_seen(cookies.install, None) == [None] * 4
    # an expired cookie is cleared as before (Max-Age=0 deletes it)
    gone = _cookies_seen(cookies.install, "lb=node-2; Path=/; Max-Age=0")
    assert gone == [None] * 4
    # Set-Cookie2 (RFC 2965): ignored by the default policy, taken by one that reads it
    v2 = 'lb="node-2"; Version="1"; Path="/"'
    assert _cookies_seen(cookies.install, v2, "Set-Cookie2") == [None] * 4
    assert _cookies_seen(None, v2, "Set-Cookie2") == [None] * 4

    def rfc2965(jar_type):
        def install(session):
            jar = jar_type(DefaultCookiePolicy(rfc2965=True))
            session.cookiejar = session.client.cookiejar = jar

        return install

    stock2 = _cookies_seen(rfc2965(CookieJar), v2, "Set-Cookie2")
    assert stock2[2] is not None and "node-2" in stock2[2]
    assert _cookies_seen(rfc2965(cookies.LazyCookieJar), v2, "Set-Cookie2") == stock2


def test_a_report_missing_a_count_says_it_is_missing():
    """A report leaving out ``payments.declined`` (no declines) or a total's ``amount`` was
    named "is not a whole number >= 0", as if it had a wrong value."""
    good = {
        "payments": {"succeeded": 1, "declined": 0},
        "totals": {"USD": {"count": 1, "amount": 5}},
    }
    assert report_shape_problem(good) is None
    assert (
        report_shape_problem({**good, "payments": {"succeeded": 1}})
        == "payments.declined is missing"
    )
    short = {**good, "totals": {"USD": {"count": 1}}}
    assert report_shape_problem(short) == "totals.USD.amount is missing"
    mistyped = {**good, "totals": {"USD": {"count": "1", "amount": 5}}}
    assert (
        report_shape_problem(mistyped) == "totals.USD.count is not a whole number >= 0"
    )


def test_a_report_with_another_status_than_200_names_the_status_not_its_shape():
    """A report answered 201 (a service that "creates" it) with a well-formed report: the failure
    read "report: 201 unexpected shape", blaming a body that was fine."""

    def app(environ, start_response):
        start_response("201 Created", [("Content-Type", "application/json")])
        report = {"payments": {"succeeded": 0, "declined": 0}, "totals": {}}
        return [json.dumps(report).encode()]

    with session_to(app) as session:
        api = PaymentApi(session, random.Random(1), "t", RetryPolicy(resends=1))
        answer = api.generate_report("batch_report: report", {"batch_id": "b"})
    assert answer.report is None and answer.status == 201
    assert answer.detail == "report: expected 200, got 201"


def test_a_report_given_up_does_not_wait_after_its_last_try():
    """A report endpoint that keeps answering 429 ``Retry-After: 1``: with one resend allowed the
    client asks twice and waits once in between; it waited a third time after the last answer
    before giving up (up to ``retry_after_cap_s`` that the journey spent doing nothing)."""
    asked = []

    def app(environ, start_response):
        asked.append(time.monotonic())
        start_response(
            "429 Too Many Requests",
            [("Content-Type", "application/json"), ("Retry-After", "1")],
        )
        return [b'{"error": {"code": "rate_limited"}}']

    with session_to(app) as session:
        api = PaymentApi(session, random.Random(1), "t", RetryPolicy(resends=1))
        started = time.monotonic()
        answer = api.generate_report("batch_report: report", {"batch_id": "b"})
        took = time.monotonic() - started
    assert answer.report is None and answer.status == 429
    assert len(asked) == 2 and asked[1] - asked[0] >= 0.9
    assert took < 1.8, f"waited {took:.1f} s after the last answer"


def test_after_an_attempt_runs_into_the_deadline_the_next_ones_get_the_whole_deadline():
    """The client reuses one deadline timer across attempts; one that fired must not cut the
    next attempts short (a libev timer that expired has lost its delay and fires at once)."""
    calls = []

    def app(environ, start_response):
        calls.append(1)
        if len(calls) == 1:
            time.sleep(1.0)  # monkey-patched: the first answer comes after the deadline
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    with session_to(app) as session:
        api = PaymentApi(session, random.Random(1), None, deadline_s=0.3)
        seen = []
        for _ in range(3):
            started = time.monotonic()
            with api._post("/pay", data="{}", headers={}, name="pay") as resp:
                seen.append((resp.status_code, time.monotonic() - started < 0.25))
                resp.success()
    assert seen[0][0] == 0  # no complete answer within the deadline
    assert [s for s, _ in seen[1:]] == [200, 200]


@pytest.mark.parametrize(
    "content",
    [
        b'{"id":"pay_1","amount":1250}',
        b' {"id":"pay_1"} ',
        b'{"id":"pay_1"}\n',
        b'{"id":"pay_1"} trailing',
        b'{"id":}',
        b"",
        None,
        b"[1, 2]",
        b'"text"',
        b"NaN",
        b"\xff\xfe",
        b"   ",
    ],
)
def test_answers_are_parsed_as_json_loads_parses_them(content):
    """The client's fast parse of an answer (the C scanner alone when the body is one JSON
    value) gives what json.loads gives, and None where json.loads would raise."""
    try:
        expected = json.loads((content or b"").decode())
    except (ValueError, TypeError):
        expected = None
    got = _json_body(SimpleNamespace(content=content))
    assert repr(got) == repr(expected)  # repr: NaN is not equal to itself


def test_a_deadline_that_expired_as_the_answer_came_does_not_cut_the_next_attempt_short():
    """The answer and the deadline can come in the same turn of a busy event loop: the answer
    is handled first and the deadline, expired, is still pending when the attempt returns. The
    next attempts must get the whole deadline, not the expired timer's (which fires at once)."""

    class Session:
        """The first answer arrives while the loop is held past the deadline; the others after
        20 ms. Like Locust's session, it turns the deadline's TimeoutError into a response."""

        calls = 0

        def request(self, method, path, **kwargs):
            Session.calls += 1
            try:
                if Session.calls > 1:
                    gevent.sleep(0.02)
                    return contextlib.nullcontext("answer")
                ours, theirs = socket.socketpair()

                def busy_then_answer():
                    end = time.perf_counter() + 0.15  # holds the loop past the deadline
                    while time.perf_counter() < end:
                        pass
                    theirs.send(b"x")

                gevent.spawn(busy_then_answer)
                ours.recv(1)
                return contextlib.nullcontext("answer")
            except TimeoutError:
                return contextlib.nullcontext("no answer")

        def post(self, path, **kwargs):
            return self.request("POST", path, **kwargs)

    api = PaymentApi(Session(), random.Random(1), None, deadline_s=0.1)
    answers = []
    for _ in range(3):
        with api._post("/pay", data="{}", headers={}, name="pay") as resp:
            answers.append(resp)
    assert answers == ["answer"] * 3, answers


def test_every_attempt_gets_the_whole_deadline_however_many_came_before():
    """Attempts that each take 40% of the deadline all get their answer: a deadline timer kept
    and restarted across attempts (libev) counts down only what was left of it, and cut the
    third one off."""

    class Session:
        def request(self, method, path, **kwargs):
            try:
                gevent.sleep(0.08)
            except TimeoutError:
                return contextlib.nullcontext("no answer")
            return contextlib.nullcontext("answer")

        def post(self, path, **kwargs):
            return self.request("POST", path, **kwargs)

    api = PaymentApi(Session(), random.Random(1), None, deadline_s=0.2)
    answers = []
    for _ in range(5):
        with api._post("/pay", data="{}", headers={}, name="pay") as resp:
            answers.append(resp)
    assert answers == ["answer"] * 5, answers
