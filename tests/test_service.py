"""The reference payment service, over real HTTP on 127.0.0.1, checked against its SQLite file."""

from __future__ import annotations

import datetime as dt
import json
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from payment_contract import DECLINING_TEST_CARDS, MAX_AMOUNT_MINOR
from tests.conftest import ROOT, TOKEN, free_port

NEXT_YEAR = dt.date.today().year + 1
GOOD_CARDS = {
    "visa": "4242424242424242",
    "mastercard": "5555555555554444",
    "amex": "378282246310005",
    "discover": "6011111111111117",
    "jcb": "3566002020360505",
}


def body(**changes) -> dict:
    card = {
        "number": GOOD_CARDS["visa"],
        "exp_month": 12,
        "exp_year": NEXT_YEAR,
        "cvc": "123",
    }
    card.update(changes.pop("card", {}))
    payload = {
        "amount": 1250,
        "currency": "USD",
        "card": card,
        "customer": {"id": "cus_1", "name": "Ada Lovelace", "email": "ada@example.com"},
        "metadata": {"persona": "test"},
    }
    payload.update(changes)
    return payload


def pay(service, payload, key=None, **kw) -> requests.Response:
    headers = {"Idempotency-Key": key or uuid.uuid4().hex, **kw.pop("headers", {})}
    kw.setdefault("timeout", 10)
    return requests.post(service.url + "/pay", json=payload, headers=headers, **kw)


def report(service, filter_=None, token=TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(
        service.url + "/internal/generate-report",
        json=filter_ or {},
        headers=headers,
        timeout=10,
    )


@pytest.mark.parametrize("brand", sorted(GOOD_CARDS))
def test_good_card_pays_and_is_stored_without_the_number(service, brand):
    number = GOOD_CARDS[brand]
    cvc = "1234" if brand == "amex" else "123"
    r = pay(
        service, body(card={"number": number, "cvc": cvc}, currency="EUR", amount=999)
    )
    assert r.status_code == 201, r.text
    got = r.json()
    assert (
        got["status"] == "succeeded"
        and got["amount"] == 999
        and got["currency"] == "EUR"
    )
    assert got["card"] == {"brand": brand, "last4": number[-4:]}
    assert got["id"].startswith("pay_") and isinstance(got["created"], int)
    assert number not in r.text
    rows = service.query(
        "SELECT status, brand, last4, amount FROM payments WHERE id = ?", (got["id"],)
    )
    assert rows == [("succeeded", brand, number[-4:], 999)]
    dump = "\n".join(sqlite3.connect(service.db_path).iterdump())
    assert number not in dump


@pytest.mark.parametrize("number,decline", sorted(DECLINING_TEST_CARDS.items()))
def test_each_test_card_declines_with_402_and_is_stored(service, number, decline):
    r = pay(service, body(card={"number": number}))
    assert r.status_code == 402, r.text
    error = r.json()["error"]
    assert error["type"] == "card_error" and error["decline_code"] == decline
    assert error["code"] == (
        "processing_error" if decline == "processing_error" else error["code"]
    )
    rows = service.query(
        "SELECT status, decline_code FROM payments WHERE id = ?", (error["payment_id"],)
    )
    assert rows == [("declined", decline)]


@pytest.mark.parametrize(
    "payload,status,code,param",
    [
        (body(amount=0), 422, "amount_too_small", "amount"),
        (body(amount=-5), 422, "amount_too_small", "amount"),
        (body(amount=MAX_AMOUNT_MINOR + 1), 422, "amount_too_large", "amount"),
        (body(amount=10.5), 422, "invalid_amount", "amount"),
        (body(amount="100"), 422, "invalid_amount", "amount"),
        (body(currency="XXX"), 422, "invalid_currency", "currency"),
        (body(currency="usd"), 422, "invalid_currency", "currency"),
        (
            body(card={"number": "4242424242424241"}),
            422,
            "incorrect_number",
            "card[number]",
        ),
        (
            body(card={"number": "9999999999999995"}),
            422,
            "invalid_number",
            "card[number]",
        ),
        (
            body(card={"exp_year": dt.date.today().year - 1}),
            422,
            "expired_card",
            "card[exp_year]",
        ),
        (body(card={"exp_month": 13}), 422, "invalid_expiry_month", "card[exp_month]"),
        (body(card={"cvc": "12"}), 422, "invalid_cvc", "card[cvc]"),
        (
            body(card={"number": GOOD_CARDS["amex"], "cvc": "123"}),
            422,
            "invalid_cvc",
            "card[cvc]",
        ),
        (body(card={"cvc": "1234"}), 422, "invalid_cvc", "card[cvc]"),
        # digits are ASCII digits: full-width or Arabic-Indic ones are not card data
        (
            body(
                card={
                    "number": "\uff15\uff12\uff19\uff11\uff14\uff11\uff17\uff17\uff17\uff16\uff13\uff11\uff17\uff10\uff16\uff16"
                }
            ),
            422,
            "incorrect_number",
            "card[number]",
        ),
        (body(card={"cvc": "\u0661\u0662\u0663"}), 422, "invalid_cvc", "card[cvc]"),
        ({**body(), "card": "x"}, 422, "invalid_card", "card"),
        ({**body(), "customer": []}, 422, "invalid_customer", "customer"),
        (body(description="x" * 501), 422, "description_too_long", "description"),
        (
            body(metadata={"nested": {"a": 1}}),
            422,
            "invalid_metadata",
            "metadata[nested]",
        ),
        (
            {k: v for k, v in body().items() if k != "customer"},
            422,
            "parameter_missing",
            "customer",
        ),
        (
            {k: v for k, v in body().items() if k != "amount"},
            422,
            "parameter_missing",
            "amount",
        ),
        (
            body(customer={"id": "c", "name": "n", "email": "no-at-sign"}),
            422,
            "invalid_email",
            "customer[email]",
        ),
        (
            body(customer={"id": "c", "name": "n", "email": "a@" + "b" * 253}),
            422,
            "invalid_email",
            "customer[email]",
        ),
        # a card number in a text is an error of its field, in the contract's order: it was
        # checked after every field, so a later field's error came first
        (
            body(
                customer={"id": "c", "name": "4111 1111 1111 1111", "email": "a@b"},
                description="x" * 501,
            ),
            422,
            "card_number_in_text",
            "customer[name]",
        ),
        (
            body(description="4111 1111 1111 1111", metadata={"a": 5}),
            422,
            "card_number_in_text",
            "description",
        ),
    ],
)
def test_validation_errors_are_precise_and_store_nothing(
    service, payload, status, code, param
):
    r = pay(service, payload)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        code,
        param,
    )
    assert error["message"]
    assert service.query("SELECT COUNT(*) FROM payments") == [(0,)]


def test_boundaries_pay(service):
    assert pay(service, body(amount=1)).status_code == 201
    assert pay(service, body(amount=MAX_AMOUNT_MINOR)).status_code == 201
    assert pay(service, body(currency="JPY", amount=500)).status_code == 201
    today = dt.date.today()
    assert (
        pay(
            service, body(card={"exp_year": today.year, "exp_month": today.month})
        ).status_code
        == 201
    )
    assert pay(service, body(description="d" * 500)).status_code == 201


def test_an_expired_card_names_the_field_to_change(service):
    """A past year is card[exp_year]; this year with a past month is card[exp_month] (the year
    is right there): the param named exp_year for both, pointing a form at the wrong field."""
    today = dt.datetime.now(dt.UTC).date()  # the service's clock
    if today.month == 1:
        pytest.skip("no past month in this year in January")
    for card, param in [
        ({"exp_year": today.year - 1, "exp_month": 12}, "card[exp_year]"),
        ({"exp_year": today.year, "exp_month": today.month - 1}, "card[exp_month]"),
    ]:
        error = pay(service, body(card=card)).json()["error"]
        assert (error["code"], error["param"]) == ("expired_card", param), error


def test_malformed_requests_are_400(service):
    url = service.url + "/pay"
    key = {"Idempotency-Key": uuid.uuid4().hex}
    r = requests.post(
        url,
        data='{"amount": 1',
        headers={"Content-Type": "application/json", **key},
        timeout=5,
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_json")
    r = requests.post(
        url,
        data=json.dumps(body()),
        headers={"Content-Type": "text/plain", **key},
        timeout=5,
    )
    assert (r.status_code, r.json()["error"]["code"]) == (
        400,
        "unsupported_content_type",
    )
    r = requests.post(url, json=[1, 2], headers=key, timeout=5)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_json")
    r = requests.post(url, json=body(), timeout=5)
    assert (r.status_code, r.json()["error"]["code"]) == (
        400,
        "missing_idempotency_key",
    )


def test_idempotent_replay_of_success_and_decline(service):
    key = uuid.uuid4().hex
    first = pay(service, body(), key)
    again = pay(service, body(), key)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert (
        again.headers.get("Idempotent-Replayed") == "true"
        and "Idempotent-Replayed" not in first.headers
    )
    declined_key = uuid.uuid4().hex
    d1 = pay(service, body(card={"number": "4000000000000002"}), declined_key)
    d2 = pay(service, body(card={"number": "4000000000000002"}), declined_key)
    assert d1.status_code == d2.status_code == 402
    assert d1.json() == d2.json() and d2.headers.get("Idempotent-Replayed") == "true"
    assert service.query("SELECT COUNT(*) FROM payments") == [(2,)]


def test_same_key_other_body_is_422(service):
    key = uuid.uuid4().hex
    assert pay(service, body(), key).status_code == 201
    r = pay(service, body(amount=1251), key)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "idempotency_key_reused")
    assert service.query("SELECT COUNT(*) FROM payments") == [(1,)]


def test_key_in_flight_is_409(start_service):
    service = start_service("--latency-ms", "800")
    key = uuid.uuid4().hex
    import threading

    results = {}
    first = threading.Thread(
        target=lambda: results.setdefault("first", pay(service, body(), key))
    )
    first.start()
    import time

    time.sleep(0.3)
    second = pay(service, body(), key)
    first.join()
    assert results["first"].status_code == 201
    assert (second.status_code, second.json()["error"]["code"]) == (
        409,
        "idempotency_key_in_use",
    )
    assert service.query("SELECT COUNT(*) FROM payments") == [(1,)]


def test_two_services_on_one_database_charge_a_key_once(start_service, tmp_path):
    """Two processes on one file (``make run`` twice, a scaled container) each hold the key in
    flight on their own: the write transaction must still see the other's payment."""
    db = tmp_path / "shared.sqlite"
    one = start_service("--latency-ms", "400", db_path=db)
    two = start_service("--latency-ms", "400", db_path=db)
    key, other_key = uuid.uuid4().hex, uuid.uuid4().hex
    with ThreadPoolExecutor(4) as pool:
        same = [pool.submit(pay, svc, body(), key) for svc in (one, two)]
        differ = [
            pool.submit(pay, one, body(), other_key),
            pool.submit(pay, two, body(amount=1251), other_key),
        ]
        same, differ = [f.result() for f in same], [f.result() for f in differ]
    assert [r.status_code for r in same] == [201, 201], [r.text for r in same]
    assert same[0].json()["id"] == same[1].json()["id"]
    assert sorted(r.status_code for r in differ) == [201, 422], [r.text for r in differ]
    counts = one.query(
        "SELECT idempotency_key, COUNT(*) FROM payments GROUP BY idempotency_key"
    )
    assert sorted(counts) == sorted([(key, 1), (other_key, 1)])


def test_expired_key_is_free_again(service):
    key = uuid.uuid4().hex
    first = pay(service, body(), key).json()["id"]
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    con = sqlite3.connect(service.db_path)
    with con:
        con.execute(
            "UPDATE idempotency_keys SET created_at = ? WHERE key = ?", (old, key)
        )
    con.close()
    second = pay(service, body(amount=777), key)
    assert second.status_code == 201 and second.json()["id"] != first


def _aged(hours: float) -> str:
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.1)


def test_a_key_lives_its_ttl_then_is_new_and_purged_while_payments_stay(
    start_service,
):
    """Keys were kept forever (~0.8 KB each with their payment: ~9 GB a day at 130 req/s):
    with ``--key-ttl`` a resend within the lifetime gets the stored answer, after it the key
    is new, and the running service deletes expired keys but never a payment."""
    service = start_service("--key-ttl", "2s")
    assert "keys kept 2s" in service.log(), service.log()
    key, other = uuid.uuid4().hex, uuid.uuid4().hex
    started = time.monotonic()
    first = pay(service, body(), key)
    assert pay(service, body(amount=999), other).status_code == 201
    again = pay(service, body(), key)
    assert time.monotonic() - started < 2, "too slow to resend within the lifetime"
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    time.sleep(max(0, started + 2.2 - time.monotonic()))
    late = pay(service, body(), key)
    assert late.status_code == 201 and "Idempotent-Replayed" not in late.headers
    assert late.json()["id"] != first.json()["id"]

    def keys() -> set:
        return {row[0] for row in service.query("SELECT key FROM idempotency_keys")}

    _wait_for(lambda: other not in keys())  # purged by the service on its own
    assert service.query("SELECT COUNT(*) FROM payments") == [(3,)]
    assert report(service).json()["payments"] == {"succeeded": 3, "declined": 0}


def test_a_service_purges_a_days_old_keys_at_start_and_forever_keeps_them(
    start_service, tmp_path
):
    """A database whose keys are over a day old (a service stopped overnight, or one that
    kept them forever) is cleaned at the next start, in batches while /pay answers."""
    db = tmp_path / "aged.sqlite"
    keeper = start_service("--key-ttl", "forever", db_path=db)
    assert "keys kept forever" in keeper.log(), keeper.log()
    fresh, old = uuid.uuid4().hex, uuid.uuid4().hex
    fresh_id = pay(keeper, body(), fresh).json()["id"]
    old_id = pay(keeper, body(amount=555), old).json()["id"]
    con = sqlite3.connect(db)
    with con:
        con.execute(
            "UPDATE idempotency_keys SET created_at = ? WHERE key = ?", (_aged(25), old)
        )
        row = con.execute("SELECT * FROM payments WHERE id = ?", (old_id,)).fetchone()
        answer = con.execute("SELECT * FROM idempotency_keys").fetchone()
        aged = [(uuid.uuid4().hex, "pay_" + uuid.uuid4().hex[:24]) for _ in range(3000)]
        con.executemany(
            "INSERT INTO payments VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(pid, *row[1:12], k, _aged(30)) for k, pid in aged],
        )
        con.executemany(
            "INSERT INTO idempotency_keys VALUES (?,?,?,?,?,?)",
            [(k, *answer[1:4], pid, _aged(30)) for k, pid in aged],
        )
    con.close()
    replayed = pay(keeper, body(amount=555), old)
    assert replayed.json()["id"] == old_id, "forever keeps a day-old key"
    keeper.stop()

    service = start_service(db_path=db)  # the default lifetime: 24 h
    assert "keys kept 24h" in service.log(), service.log()
    assert pay(service, body(), fresh).json()["id"] == fresh_id
    _wait_for(lambda: service.query("SELECT COUNT(*) FROM idempotency_keys") == [(1,)])
    anew = pay(service, body(amount=555), old)
    assert anew.status_code == 201 and anew.json()["id"] != old_id
    assert service.query("SELECT COUNT(*) FROM payments") == [(3003,)]
    assert report(service).json()["payments"]["succeeded"] == 3003


def test_report_totals_after_known_payments(service):
    batch = "batch_" + uuid.uuid4().hex[:8]
    paid = [
        ("USD", 1000, "visa"),
        ("USD", 250, "mastercard"),
        ("JPY", 5000, "jcb"),
        ("EUR", 999, "amex"),
    ]
    for currency, amount, brand in paid:
        cvc = "1234" if brand == "amex" else "123"
        r = pay(
            service,
            body(
                currency=currency,
                amount=amount,
                card={"number": GOOD_CARDS[brand], "cvc": cvc},
                metadata={"batch_id": batch},
            ),
        )
        assert r.status_code == 201
    pay(
        service, body(card={"number": "4000000000009995"}, metadata={"batch_id": batch})
    )
    pay(service, body(amount=4242))  # another batch: not in the batch report
    r = report(service, {"batch_id": batch})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["payments"] == {"succeeded": 4, "declined": 1}
    assert got["totals"] == {
        "USD": {"count": 2, "amount": 1250},
        "JPY": {"count": 1, "amount": 5000},
        "EUR": {"count": 1, "amount": 999},
    }
    assert got["brands"] == {"visa": 1, "mastercard": 1, "jcb": 1, "amex": 1}
    assert got["filter"] == {"batch_id": batch} and got["report_id"].startswith("rpt_")
    everything = report(service).json()
    assert everything["payments"] == {"succeeded": 5, "declined": 1}
    now = dt.datetime.now(dt.UTC)
    window = {
        "from": (now - dt.timedelta(minutes=5)).isoformat(),
        "to": (now + dt.timedelta(minutes=1)).isoformat(),
    }
    assert report(service, window).json()["payments"]["succeeded"] == 5
    past = {"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"}
    assert report(service, past).json()["payments"] == {"succeeded": 0, "declined": 0}


def test_a_database_in_memory_pays_and_reports(start_service):
    """``--db :memory:`` (a throwaway service) is the service's connection alone: its reports
    must read it there, not on a connection of their own (an empty database: a 500)."""
    service = start_service(db_path=Path(":memory:"))
    assert pay(service, body()).status_code == 201
    r = report(service)
    assert (r.status_code, r.json().get("payments")) == (
        200,
        {"succeeded": 1, "declined": 0},
    ), r.text


def test_a_long_report_does_not_hold_up_other_requests(start_service):
    """A report over a big database (300k payments: ~0.2 s each) reads on a connection of its
    own off the event loop: payments and /health are answered meanwhile, not after it."""
    service = start_service()
    con = sqlite3.connect(service.db_path)
    with con:
        con.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) "
            "INSERT INTO payments (id, status, amount, currency, brand, last4, fingerprint, "
            "customer_id, batch_id, idempotency_key, created_at) SELECT 'pay_' || i, "
            "'succeeded', 100, 'USD', 'visa', '4242', 'fp', 'cus', 'b', 'k' || i, "
            "'2026-01-01T00:00:00.000000Z' FROM n"
        )
    con.close()
    with ThreadPoolExecutor(3) as pool:
        started = time.monotonic()
        reports = [pool.submit(report, service) for _ in range(3)]
        waits = []
        while not all(r.done() for r in reports):
            sent = time.monotonic()
            requests.get(service.url + "/health", timeout=10)
            waits.append(time.monotonic() - sent)
        took = time.monotonic() - started
    assert all(r.result().json()["payments"]["succeeded"] == 300000 for r in reports)
    assert took > 0.15, "the reports were too quick to tell"
    assert max(waits) < took / 2, (max(waits), took)


@pytest.mark.parametrize(
    "filter_,code",
    [
        (
            {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
            "invalid_range",
        ),
        ({"from": "yesterday"}, "invalid_range"),
        ({"batch": "x"}, "invalid_filter"),
    ],
)
def test_report_bad_filter_is_400(service, filter_, code):
    r = report(service, filter_)
    assert (r.status_code, r.json()["error"]["code"]) == (400, code)


def test_report_auth(service):
    assert report(service, token=None).status_code == 401
    wrong = report(service, token="wrong")
    assert wrong.status_code == 403 and TOKEN not in wrong.text
    assert requests.get(service.url + "/internal/faults", timeout=5).status_code == 401


def test_a_report_never_echoes_the_token_or_a_card_number_in_its_filter(service):
    """The report quotes its filter: the token pasted as a batch_id (a script's slip) came back
    whole in the 200, as a card number did, where every error message redacts them."""
    card = GOOD_CARDS["visa"]
    for batch_id in (TOKEN, card):
        r = report(service, {"batch_id": batch_id})
        assert r.status_code == 200, r.text
        assert TOKEN not in r.text and card not in r.text, r.text
        assert r.json()["payments"] == {"succeeded": 0, "declined": 0}


def test_faults_can_be_changed_live(start_service):
    service = start_service()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    r = requests.put(
        service.url + "/internal/faults",
        json={"error_rate": 1, "error_phase": "before"},
        headers=headers,
        timeout=5,
    )
    assert r.status_code == 200 and r.json()["error_rate"] == 1
    assert pay(service, body()).status_code == 503
    bad = requests.put(
        service.url + "/internal/faults",
        json={"error_rate": 7},
        headers=headers,
        timeout=5,
    )
    assert bad.status_code == 400 and "error_rate" in bad.json()["error"]["message"]
    unknown = requests.put(
        service.url + "/internal/faults",
        json={"eror_rate": 0},
        headers=headers,
        timeout=5,
    )
    assert (
        unknown.status_code == 400 and "eror_rate" in unknown.json()["error"]["message"]
    )
    requests.put(
        service.url + "/internal/faults",
        json={"error_rate": 0},
        headers=headers,
        timeout=5,
    )
    assert pay(service, body()).status_code == 201
    health = requests.get(service.url + "/health", timeout=5).json()
    assert health["faults"] == [], health  # error_phase alone injects nothing


def test_health_answers_get_and_head(service):
    """Uptime checkers and load balancers probe with HEAD as well as GET."""
    got = requests.get(service.url + "/health", timeout=5)
    assert got.status_code == 200 and got.json()["status"] == "ok"
    head = requests.head(service.url + "/health", timeout=5)
    assert head.status_code == 200, head.status_code
    assert head.content == b""


def test_openapi_document_describes_the_contract(service):
    doc = requests.get(service.url + "/openapi.json", timeout=5).json()
    assert {"/pay", "/internal/generate-report", "/health"} <= set(doc["paths"])
    pay_op = doc["paths"]["/pay"]["post"]
    assert {"201", "402", "409", "422", "429"} <= set(pay_op["responses"])
    assert set(doc["components"]["schemas"]["PayRequest"]["required"]) == {
        "amount",
        "currency",
        "card",
        "customer",
    }


def test_openapi_document_holds_the_rules_the_service_enforces(service):
    """The document left out what the service answers and refuses: the 503 of a fault or a stop,
    the limits of exp_year, cvc, metadata and the customer's strings, the report's unknown keys
    (400), and fields every payment and decline carries (object, description, retryable)."""
    doc = requests.get(service.url + "/openapi.json", timeout=5).json()
    schemas, paths = doc["components"]["schemas"], doc["paths"]
    assert "503" in paths["/pay"]["post"]["responses"]
    assert "413" in paths["/internal/faults"]["put"]["responses"]
    replayed = paths["/pay"]["post"]["responses"]["201"].get("headers", {})
    assert "Idempotent-Replayed" in replayed, replayed
    card = schemas["CardIn"]["properties"]
    assert (card["exp_year"]["minimum"], card["exp_year"]["maximum"]) == (2000, 2100)
    assert card["cvc"]["pattern"] and card["number"]["pattern"]
    customer = schemas["CustomerIn"]["properties"]
    assert all(customer[k]["minLength"] == 1 for k in ("id", "name", "email"))
    assert customer["email"]["maxLength"] == 254
    metadata = schemas["PayRequest"]["properties"]["metadata"]["anyOf"][0]
    assert metadata["maxProperties"] == 50
    assert metadata["propertyNames"]["maxLength"] == 40
    assert metadata["additionalProperties"]["maxLength"] == 500
    assert schemas["ReportRequest"]["additionalProperties"] is False
    assert (
        schemas["ReportRequest"]["properties"]["batch_id"]["anyOf"][0]["minLength"] == 1
    )
    assert {"object", "description"} <= set(schemas["Payment"]["properties"])
    assert "retryable" in schemas["ErrorDetail"]["properties"]
    faults = schemas["FaultsModel"]["properties"]
    assert (faults["error_rate"]["minimum"], faults["error_rate"]["maximum"]) == (0, 1)


def _start(args, env_extra=None, token=True):
    env = {"PATH": "/usr/bin:/bin", "DD_TRACE_ENABLED": "false", **(env_extra or {})}
    if token:
        env["PAYMENT_INTERNAL_TOKEN"] = TOKEN
    return subprocess.run(
        [sys.executable, "-m", "payment_service", "--port", str(free_port()), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


@pytest.mark.parametrize(
    "args,env,needle",
    [
        ([], {}, "PAYMENT_INTERNAL_TOKEN is not set"),
        (["--error-rate", "1.5"], {"PAYMENT_INTERNAL_TOKEN": TOKEN}, "--error-rate"),
        (
            [],
            {"PAYMENT_INTERNAL_TOKEN": TOKEN, "PAYMENT_LATENCY_MS": "-3"},
            "--latency-ms",
        ),
        (
            ["--error-phase", "during"],
            {"PAYMENT_INTERNAL_TOKEN": TOKEN},
            "--error-phase",
        ),
        (
            [],
            {"PAYMENT_INTERNAL_TOKEN": TOKEN, "PAYMENT_REPORT_TAMPER": "maybe"},
            "--report-tamper",
        ),
        (["--key-ttl", "0s"], {"PAYMENT_INTERNAL_TOKEN": TOKEN}, "--key-ttl"),
        ([], {"PAYMENT_INTERNAL_TOKEN": TOKEN, "PAYMENT_KEY_TTL": "2w"}, "--key-ttl"),
    ],
)
def test_bad_start_up_input_exits_2_with_one_line(args, env, needle):
    proc = _start(args, env, token=False)
    assert proc.returncode == 2
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_names_the_defaults_and_each_knobs_range():
    """``--help`` gave no default for --host, --port and --db and no knob's range (the ranges
    were only found by a refusal): the README says --help lists every knob."""
    proc = _start(["--help"])
    assert proc.returncode == 0, proc.stderr
    # the tracing banner ("tracing: off ...") came first, above the usage
    assert proc.stdout.startswith("usage: python -m payment_service"), proc.stdout[:300]
    text = " ".join(proc.stdout.split())  # argparse wraps the lines
    for said in (
        "Bind address (default 127.0.0.1)",
        "Port (default 8000)",
        "SQLite file (WAL; default payments.sqlite",
        "Share of /pay answered with a 5xx; a share from 0 to 1, e.g. 0.05",
        "Added latency per /pay; milliseconds from 0 to 3600000 (an hour)",
        "Retry-After; 0 (off) or requests/s from 0.01",
        "Length of a stall (default 30); seconds from 0 to 3600 (an hour)",
        "; seconds from -315360000 to 315360000 (ten years either way)",
        "(e.g. 90s, 30m, 24h, 7d) from 1s to 3650d, or forever (default 24h)",
        # variables no flag stands for: the token a start without --dev needs, and tracing
        "The internal token that /internal/* asks for comes from PAYMENT_INTERNAL_TOKEN",
        "Tracing is on with DD_TRACE_ENABLED=true or DD_AGENT_HOST",
    ):
        assert said in text, text


@pytest.mark.parametrize("twin", ["PAYMENT_DEV", "PAYMENT_REPORT_TAMPER"])
def test_help_answers_whatever_a_switchs_twin_holds(twin):
    """A bad PAYMENT_DEV (a switch's twin) was refused while the parser was built, before
    --help: the refusal's "Run `python -m payment_service --help`" gave the same refusal."""
    proc = _start(["--help"], {twin: "maybe"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m payment_service"), proc.stdout[:300]


def test_a_payment_variable_no_flag_reads_is_named(tmp_path):
    """``PAYMENT_LATENCY=300`` (for PAYMENT_LATENCY_MS) was ignored without a word, as Locust
    ignores a LOCUST_* typo (which the generator names): the run went on without the fault."""
    from tests.conftest import launch_service

    env = {"PAYMENT_LATENCY": "300", "PAYMENT_PORT": "8001"}  # PAYMENT_PORT: make run's
    service = launch_service(tmp_path, env=env)
    service.stop()
    assert (
        "payment service: PAYMENT_LATENCY is set, but no flag reads it: it is ignored (did "
        "you mean PAYMENT_LATENCY_MS?"
    ) in service.log(), service.log()
    assert "PAYMENT_PORT" not in service.log(), service.log()


def test_unread_variables_are_found_alike_by_the_service_and_the_generator():
    """Both sides name the variables of their prefix that nothing reads, with the name each
    likely means, and never Kubernetes' service links (one scan, ``payment_contract``): the
    service suggests its token's name too, the generator only its options' names."""
    from journeys.env_names import unread_variables as locust_unread
    from payment_service.env_names import unread_variables as service_unread

    environ = {
        "PAYMENT_PORT_8000_TCP": "tcp://10.0.0.1:8000",  # Kubernetes' links: not typos
        "LOCUST_SERVICE_HOST": "10.0.0.2",
        "PAYMENT_INTERNAL_TOKN": "t",
        "PAYMENT_ZZZ": "1",
        "LOCUST_RUNTIME": "5s",
        "LOCUST_SKIP_MONKEY_PATCH": "1",
        "LOCUST_USER_CLASS": "A",
        "OTHER": "1",
    }

    def service_line(name: str, hint: str = "") -> str:
        return (
            f"payment service: {name} is set, but no flag reads it: it is ignored{hint}. "
            "Run `python -m payment_service --help` for every variable."
        )

    def locust_line(name: str, hint: str = "") -> str:
        return (
            f"{name} is set, but no Locust or tool option reads it: it is ignored ({hint}"
            "Locust's LOCUST_* names: https://docs.locust.io/en/stable/configuration.html; "
            "the tool's: its README)"
        )

    assert service_unread(environ, {"PAYMENT_LATENCY_MS"}) == [
        service_line(
            "PAYMENT_INTERNAL_TOKN", " (did you mean PAYMENT_INTERNAL_TOKEN?)"
        ),
        service_line("PAYMENT_ZZZ"),
    ]
    assert locust_unread(environ, {"LOCUST_RUN_TIME"}) == [
        locust_line("LOCUST_RUNTIME", "did you mean LOCUST_RUN_TIME? "),
        locust_line("LOCUST_USER_CLASS"),
    ]


def test_dev_mode_prints_a_generated_token_and_keeps_it_out_of_answers_and_logs(
    tmp_path,
):
    """The generated token is printed once, at start; after that it is scrubbed as a set one is.
    It lived in Settings only, while the scrubber reads PAYMENT_INTERNAL_TOKEN: an unknown report
    filter key echoed it in the 400, and the access log wrote it from a URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "payment_service",
            "--dev",
            "--access-log",
            "--port",
            str(port),
            "--db",
            str(tmp_path / "dev.sqlite"),
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DD_TRACE_ENABLED": "false"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = ""
        while "generated internal token" not in line:
            line = proc.stdout.readline()
            assert line, "service exited without printing a token"
        token = line.split("generated internal token ")[1].split()[0]
        from tests.conftest import wait_http

        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/health")
        auth = {"Authorization": f"Bearer {token}"}
        r = requests.post(
            url + "/internal/generate-report", json={}, headers=auth, timeout=5
        )
        assert r.status_code == 200
        echoed = requests.post(
            url + "/internal/generate-report", json={token: 1}, headers=auth, timeout=5
        )
        in_path = requests.get(f"{url}/x/{token}", timeout=5)
        assert (echoed.status_code, in_path.status_code) == (400, 404)
        for answer in (echoed, in_path):
            assert token not in answer.text and "[token redacted]" in answer.text
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=10)[0]
    assert '"GET /x/[token redacted] HTTP/1.1" 404' in rest, rest
    assert token not in rest, rest


def test_access_log_has_a_line_per_request_and_no_secrets(start_service):
    service = start_service("--access-log")
    assert pay(service, body()).status_code == 201
    assert report(service).status_code == 200
    service.stop()
    log = service.log()
    assert '"POST /pay HTTP/1.1" 201' in log, log
    assert '"POST /internal/generate-report HTTP/1.1" 200' in log, log
    assert TOKEN not in log and GOOD_CARDS["visa"] not in log
    # each line has its time, as the service's own lines have: uvicorn's had none, so a
    # request could not be put beside the run's timeline
    line = next(line for line in log.splitlines() if "POST /pay" in line)
    stamp = dt.datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
    assert abs(stamp - dt.datetime.now()) < dt.timedelta(minutes=1), line


def test_a_card_number_or_the_token_in_a_url_stays_out_of_the_log_and_answers(
    start_service,
):
    """A client may put a card number or the token in a URL (a query string, a path, even the
    method): uvicorn logged the request line whole, and the 404/405 messages quoted it (as a
    report's error quoted an unknown filter key in its param)."""
    service = start_service("--access-log")
    card = GOOD_CARDS["visa"]
    dashed = "-".join(card[i : i + 4] for i in range(0, 16, 4))
    answers = [
        requests.get(f"{service.url}/pay?card={card}", timeout=10),
        requests.get(f"{service.url}/pay/{card}/{TOKEN}", timeout=10),
        requests.get(f"{service.url}/x/{dashed}", timeout=10),
        requests.request(card, service.url + "/pay", timeout=10),
        report(
            service, {card: 1}
        ),  # an unknown filter key is named in message and param
    ]
    assert [a.status_code for a in answers] == [405, 404, 404, 405, 400]
    service.stop()
    texts = [service.log()] + [a.text for a in answers]
    for text in texts:
        digits = text.replace("-", "")
        assert card not in digits and TOKEN not in text, text
    assert "/pay/[card redacted]/[token redacted]" in answers[1].text
    assert '"GET /pay HTTP/1.1" 405' in texts[0], texts[0]


def test_a_card_number_behind_url_escapes_stays_out_of_the_log(start_service):
    """uvicorn logs a path percent-encoded: a card number written with spaces in a URL
    (``/cards/4242%204242%20...``), or after an encoded space or ``#`` (``/pay%204242...``,
    digits glued to the escape's), passed the scrubber, which looks for 13-19 digits with
    spaces or dashes between."""
    service = start_service("--access-log")
    card = GOOD_CARDS["visa"]
    spaced = "%20".join(card[i : i + 4] for i in range(0, 16, 4))
    for path in (f"/cards/{spaced}", f"/pay%20{card}", f"/pay%23{card}"):
        assert requests.get(service.url + path, timeout=10).status_code == 404
    service.stop()
    log = service.log()
    for escape in ("%20", "%23"):
        assert card not in log.replace(escape, ""), log
    assert '"GET /cards/[card redacted] HTTP/1.1" 404' in log, log
    assert '"GET /pay%20[card redacted] HTTP/1.1" 404' in log, log


@pytest.mark.parametrize(
    "changes, param",
    [
        ({"description": "order for 4111 1111 1111 1111"}, "description"),
        ({"metadata": {"note": "4111-1111-1111-1111"}}, "metadata[note]"),
        ({"metadata": {"4111111111111111": "x"}}, "metadata"),
        (
            {"customer": {"id": "4111111111111111", "name": "n", "email": "a@b.c"}},
            "customer[id]",
        ),
    ],
)
def test_a_card_number_in_a_stored_text_is_refused(start_service, changes, param):
    """The database keeps last4 and a fingerprint, never the number: a number sent in a text the
    service stores (and echoes, and keeps in the idempotent answer) was written whole."""
    service = start_service()
    answer = pay(service, body(**changes))
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == ("card_number_in_text", param)
    assert "4111" not in answer.text
    assert service.query("SELECT count(*) FROM payments") == [(0,)]
    # an id that holds such digits among letters or after _ (a hex id) is no card number
    ids = {
        "journey_id": "jf8b3f90a4111111111111111b",
        "batch": "batch_4111111111111111",
    }
    customer = {"id": "cus_4111111111111111", "name": "n", "email": "a@b.c"}
    assert pay(service, body(metadata=ids, customer=customer)).status_code == 201


def _raw_pay(service, data: bytes) -> requests.Response:
    headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
    return requests.post(service.url + "/pay", data=data, headers=headers, timeout=10)


@pytest.mark.parametrize(
    "data",
    [
        # a lone UTF-16 surrogate is valid JSON syntax but no Unicode character: it cannot be
        # stored (SQLite wants UTF-8) nor echoed
        json.dumps(body(customer={"id": "\ud800", "name": "n", "email": "a@b"})),
        json.dumps(body(description="\udfff")),
        json.dumps(body(metadata={"k": "\ud800"})),
        json.dumps(body(metadata={"\ud800" * 50: "x"})),
        # nested past any body the contract has: refused, not a RecursionError
        "[" * 100_000 + "]" * 100_000,
        json.dumps(body())[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}",
        json.dumps(body())[:-1] + ', "x": ' + "[" * 900 + "]" * 900 + "}",
        # not UTF-8
        json.dumps(body(description="caf\u00e9"), ensure_ascii=False).encode("latin-1"),
        json.dumps(body()).encode("utf-16"),
        # Python's json reads these, JSON has no such literals (RFC 8259): a field the
        # contract does not know holding one paid, and amount NaN was a 422
        json.dumps(body())[:-1] + ', "x": NaN}',
        json.dumps(body()).replace('"amount": 1250', '"amount": Infinity'),
        json.dumps(body(metadata={"k": "v"})).replace('"v"', "-Infinity"),
    ],
    ids=["surrogate-id", "surrogate-description", "surrogate-value", "surrogate-key",
         "deep-array", "deep-field", "deep-900", "latin-1", "utf-16", "nan", "infinity",
         "minus-infinity"],
)  # fmt: skip
def test_unstorable_json_is_400_invalid_json(service, data):
    r = _raw_pay(service, data if isinstance(data, bytes) else data.encode())
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_json"), r.text
    assert service.query("SELECT COUNT(*) FROM payments") == [(0,)]
    assert "Traceback" not in service.log()


def test_unicode_names_and_a_255_char_key_pay(service):
    customer = {
        "id": "cus_\u00fc",
        "name": "\u674e\u5c0f\u9f8d \U0001f409",
        "email": "a@b",
    }
    r = pay(service, body(customer=customer, description="\U0001f600" * 500), "k" * 255)
    assert r.status_code == 201, r.text
    assert service.query("SELECT customer_id, idempotency_key FROM payments") == [
        ("cus_\u00fc", "k" * 255)
    ]
    assert pay(service, body(), "k" * 256).json()["error"]["code"] == (
        "invalid_idempotency_key"
    )


@pytest.mark.parametrize(
    "filter_,code",
    [
        # valid ISO 8601 whose UTC instant falls outside the years 1..9999
        ({"from": "0001-01-01T00:00:00+05:00"}, "invalid_range"),
        ({"to": "9999-12-31T23:59:59-05:00"}, "invalid_range"),
        ({"batch_id": "\ud800"}, "invalid_json"),
    ],
)
def test_report_filters_that_cannot_be_compared_are_400(service, filter_, code):
    r = requests.post(
        service.url + "/internal/generate-report",
        data=json.dumps(filter_),
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/json",
        },
        timeout=10,
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, code), r.text
    assert "Traceback" not in service.log()


def succeeded(service, filter_) -> int:
    return report(service, filter_).json()["payments"]["succeeded"]


def test_report_range_boundaries_and_zones(service):
    """from is inclusive, to exclusive, an offset is converted to UTC, a null bound is no bound."""
    paid = pay(service, body()).json()
    stamped = service.query("SELECT created_at FROM payments")[0][0]
    at = dt.datetime.fromisoformat(stamped)
    in_kolkata = at.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30)))
    assert succeeded(service, {"from": in_kolkata.isoformat()}) == 1
    assert succeeded(service, {"to": in_kolkata.isoformat()}) == 0
    naive_utc = at.replace(tzinfo=None).isoformat()
    assert succeeded(service, {"from": naive_utc}) == 1
    got = report(service, {"from": None, "to": None}).json()
    assert got["payments"]["succeeded"] == 1 and got["filter"] == {}, got
    assert paid["created"] == int(at.timestamp())
    # RFC 3339 allows a lower-case t and z: the t was read, the z was a 400 invalid_range
    lower = at.strftime("%Y-%m-%dt%H:%M:%S.%fz")
    assert (succeeded(service, {"from": lower}), succeeded(service, {"to": lower})) == (
        1,
        0,
    )
    # a bound before the year 1000 compares as one (glibc's %Y wrote year 500 as "500-...",
    # after "2026-..." as text: "from" 0500 left every payment out, "to" 0500 counted them)
    for year in ("0500", "0999"):
        bound = f"{year}-01-01T00:00:00Z"
        assert (
            succeeded(service, {"from": bound}),
            succeeded(service, {"to": bound}),
        ) == (
            1,
            0,
        ), year


def _chunks(data: bytes, size: int = 65536):
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_a_mebibyte_is_413_and_never_read_whole(service, chunked):
    """A legitimate body is a few KB (metadata at its limits: ~330 KB); a 3 MB one is refused with
    the contract's error, with or without Content-Length, and stores nothing."""
    big = json.dumps(
        body(customer={"id": "c", "name": "n" * 3_000_000, "email": "a@b"})
    )
    data = _chunks(big.encode()) if chunked else big.encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
    r = requests.post(service.url + "/pay", data=data, headers=headers, timeout=10)
    assert r.status_code == 413, r.text[:200]
    assert r.json()["error"]["code"] == "request_too_large"
    assert service.query("SELECT COUNT(*) FROM payments") == [(0,)]
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    padded = json.dumps({"batch_id": "b" * 2_000_000}).encode()
    r = requests.post(
        service.url + "/internal/generate-report", data=padded, headers=auth, timeout=10
    )
    assert (r.status_code, r.json()["error"]["code"]) == (413, "request_too_large")
    fine = body(metadata={f"k{i:02}": "\U0001f600" * 500 for i in range(50)})
    assert pay(service, fine).status_code == 201


def test_a_client_gone_before_its_body_ends_is_no_error_in_the_log(service):
    """A client that gives up mid-upload (a timeout, a user stopped) is not the service's fault:
    no ``unhandled ClientDisconnect`` ERROR and uvicorn traceback in its log, nothing stored."""
    logged = len(service.log())
    for path in ("/pay", "/internal/generate-report"):
        with socket.create_connection(("127.0.0.1", service.port), timeout=5) as conn:
            conn.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Idempotency-Key: k\r\nAuthorization: Bearer {TOKEN}\r\n"
                "Content-Length: 100\r\n\r\n{".encode()
            )
    assert requests.get(service.url + "/health", timeout=5).status_code == 200
    time.sleep(0.3)  # the service notices each close as the connection is torn down
    new = service.log()[logged:]
    assert "Traceback" not in new and "ERROR" not in new, new[:2000]
    assert service.query("SELECT COUNT(*) FROM payments") == [(0,)]


def test_unknown_paths_and_methods_answer_in_the_contracts_error_shape(service):
    """Errors have Stripe's shape everywhere, FastAPI's ``{"detail": ...}`` nowhere."""
    missing = requests.post(service.url + "/payments", json={}, timeout=5)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found", missing.text
    assert "/payments" in missing.json()["error"]["message"]
    wrong = requests.get(service.url + "/pay", timeout=5)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    error = wrong.json()["error"]
    assert (error["type"], error["code"]) == (
        "invalid_request_error",
        "method_not_allowed",
    )
