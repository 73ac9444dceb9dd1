"""API client bookkeeping: the duplicate-charge memory stays bounded; what the ledger books."""

from __future__ import annotations

import random

from locust import events
from locust.contrib.fasthttp import FastHttpSession

from journeys.client import KEYS_REMEMBERED, PaymentApi, RetryPolicy
from journeys.data import PaymentData, build_pools
from journeys.personas import load_personas
from journeys.results import ledger
from tests.conftest import ROOT


def test_a_reused_key_naming_another_payment_is_a_duplicate_and_memory_stays_bounded():
    api = PaymentApi(session=None, rng=random.Random(1), token=None)
    for n in range(1000):  # a long run: one key per payment
        assert api._remember(f"key-{n}", f"pay_{n}") is False
    assert len(api._ids_by_key) == KEYS_REMEMBERED
    recent = f"key-{999}"
    assert api._remember(recent, "pay_999") is False  # a replay names the same payment
    assert (
        api._remember(recent, "pay_other") is True
    )  # the service charged the key twice
    assert (
        api._remember("key-0", "pay_other") is False
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
    assert (given_up.kind, given_up.attempts) == ("unknown", 2)
    assert sum(entry[0] for entry in ledger.entries.values()) == 1
    assert sum(entry[2] for entry in ledger.entries.values()) == 0, ledger.entries
    assert service.query("SELECT count(*) FROM payments") == [(1,)]
    # a probe that needed this payment says so, not "expected 201, got 0"
    from journeys.probes import _not_paid

    assert _not_paid("key reuse: first use", given_up) == (
        "key reuse: first use: no answer after 2 attempts (429 rate limited)"
    )
