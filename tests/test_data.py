"""Data generators: valid cards per brand, amounts per currency, decline rates, determinism."""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeys.client import pay_body
from journeys.data import (
    CustomerPool,
    PaymentData,
    build_pools,
    compact_json,
    declining_card,
    flat_json,
    make_card,
    string_json,
)
from journeys.personas import DECLINE_CODES, Persona
from payment_contract import (
    BRANDS,
    CURRENCIES,
    DECLINING_TEST_CARDS,
    brand_of,
    cvc_length,
    luhn_valid,
)

PERSONA = Persona(
    "shopper",
    "customer",
    1.0,
    BRANDS,
    ("USD", "JPY"),
    Decimal(5),
    Decimal(60),
    0.2,
    2,
    None,
    "en_US",
)


@pytest.mark.parametrize("brand", BRANDS)
def test_cards_are_luhn_valid_of_their_brand_and_not_expired(brand):
    rng = random.Random(1)
    today = dt.date.today()
    for _ in range(300):
        card = make_card(brand, rng)
        assert luhn_valid(card.number) and brand_of(card.number) == brand == card.brand
        assert len(card.cvc) == cvc_length(brand) and card.cvc.isdigit()
        assert (card.exp_year, card.exp_month) > (today.year, today.month)
        assert card.number not in DECLINING_TEST_CARDS


@pytest.mark.parametrize("today", [dt.date(2026, 12, 7), dt.date(2027, 1, 31)])
def test_cards_expire_a_year_or_more_after_this_month(today):
    """A year at least, whatever the month: a December's cards expiring next January were
    expired to a service whose clock ran two months ahead (1.48% of checkouts a 422
    expired_card, the run failed), though a clock under a year off should pass."""
    rng = random.Random(3)
    code = next(iter(DECLINE_CODES))
    cards = [make_card("visa", rng, today) for _ in range(300)]
    cards += [declining_card(code, rng, today) for _ in range(300)]
    ahead = {(c.exp_year - today.year) * 12 + c.exp_month - today.month for c in cards}
    assert min(ahead) == 12 and max(ahead) == 60, sorted(ahead)


def test_jcb_prefix_is_in_range():
    rng = random.Random(2)
    assert all(
        3528 <= int(make_card("jcb", rng).number[:4]) <= 3589 for _ in range(200)
    )


def test_card_repr_and_str_are_masked():
    card = make_card("visa", random.Random(3))
    for text in (repr(card), str(card), f"{card}"):
        assert (
            card.number not in text
            and card.last4 in text
            and card.cvc not in text.split("decline")[0][-6:]
        )


def test_decline_rate_and_codes():
    data = PaymentData(PERSONA, 7, 0)
    cards = [data.first_card() for _ in range(5000)]
    declining = [c for c in cards if c.decline_code]
    assert 0.17 < len(declining) / len(cards) < 0.23
    assert {c.decline_code for c in declining} == set(DECLINE_CODES)
    assert all(DECLINING_TEST_CARDS[c.number] == c.decline_code for c in declining)
    only = PaymentData(
        replace(PERSONA, decline_rate=1.0, decline_codes=("lost_card",)), 7, 0
    )
    assert {only.first_card().decline_code for _ in range(50)} == {"lost_card"}


def test_zero_decimal_amounts_are_whole_units_in_range():
    data = PaymentData(PERSONA, 1, 0)
    yen = [data.amount_minor("JPY") for _ in range(500)]
    cents = [data.amount_minor("USD") for _ in range(500)]
    assert min(yen) >= 5 and max(yen) <= 60
    assert min(cents) >= 500 and max(cents) <= 6000 and len(set(cents)) > 100


def test_same_seed_same_data_other_seed_other_data():
    def stream(seed, user=0):
        data = PaymentData(PERSONA, seed, user)
        return [
            (
                data.customer().email,
                data.first_card().number,
                data.currency(),
                data.amount_minor("USD"),
            )
            for _ in range(30)
        ]

    assert stream(42) == stream(42)
    assert stream(42) != stream(43)
    assert stream(42, user=0) != stream(42, user=1)


def test_keys_and_batches_are_unique_and_not_seed_derived():
    a, b = PaymentData(PERSONA, 5, 0), PaymentData(PERSONA, 5, 0)
    keys = [a.idempotency_key() for _ in range(1000)] + [
        b.idempotency_key() for _ in range(1000)
    ]
    assert len(set(keys)) == 2000
    assert a.batch_id() != b.batch_id()


def test_retry_cards_pay():
    data = PaymentData(PERSONA, 9, 0)
    declined = next(c for c in iter(data.first_card, None) if c.decline_code)
    for card in (
        data.good_card(exclude=declined),
        data.corrected_card(declined),
        data.good_card("amex"),
    ):
        assert (
            card.decline_code is None
            and card.number != declined.number
            and luhn_valid(card.number)
        )


def test_customers_are_localised():
    data = PaymentData(replace(PERSONA, locale="ja_JP"), 1, 0)
    customer = data.customer()
    assert (
        customer.locale == "ja_JP"
        and "@" in customer.email
        and customer.id.startswith("cus_")
    )
    assert set(customer.as_json()) == {"id", "name", "email"}


def test_customers_are_made_as_drawn_and_alike_in_any_order():
    """A pool makes a customer when it is first drawn (building all 256 of a locale took ~0.1 s
    at every start), and customer i is the same whichever were drawn before it."""
    persona = replace(PERSONA, locale="de_DE", name="lazy_pool")
    build_pools(persona, 41)
    data = PaymentData(persona, 41, 0)
    assert data._customers.items.count(None) == len(data._customers)  # none made yet
    drawn = [data.customer() for _ in range(20)]
    made = [c for c in data._customers.items if c is not None]
    assert 0 < len(made) <= 20 and set(made) == set(drawn)
    forward, backward = CustomerPool("de_DE", 41), CustomerPool("de_DE", 41)
    firsts = [forward[i] for i in range(8)]
    assert [backward[i] for i in reversed(range(8))][::-1] == firsts
    assert len({c.id for c in firsts}) == len({c.name for c in firsts}) == 8
    assert CustomerPool("de_DE", 42)[0] != firsts[0]


@pytest.mark.parametrize("description", [None, 'a "quoted" \\ description'])
def test_pay_body_is_the_compact_json_of_the_whole_payment(description):
    """The client's pre-serialized body says exactly what json.dumps of the payment would,
    also for cards and customers changed after they were drawn (probes use replace())."""
    data = PaymentData(replace(PERSONA, locale="ko_KR"), 5, 0)
    card = replace(data.good_card(), exp_month=1)
    customer = replace(data.customer(), name='Zoë 김민준 "Q"')
    metadata = {"persona": "shopper", "journey": "checkout", "note": "ü"}
    payment = {
        "amount": 1250,
        "currency": "KRW",
        "card": card.as_json(),
        "customer": customer.as_json(),
        "metadata": metadata,
    }
    if description is not None:
        payment["description"] = description
    body = pay_body(1250, "KRW", card, customer, metadata, description)
    assert body == json.dumps(payment, separators=(",", ":"))
    assert json.loads(body) == payment
    with pytest.raises(ValueError):
        pay_body(
            12.5, "KRW", card, customer, metadata
        )  # amounts are integer minor units


@given(
    metadata=st.dictionaries(
        st.text(max_size=8),
        st.text(max_size=12)
        | st.integers()
        | st.none()
        | st.lists(st.text(max_size=3)),
        max_size=6,
    )
)
def test_the_fast_metadata_and_string_encoders_write_what_compact_json_writes(metadata):
    assert flat_json(metadata) == compact_json(metadata)
    for key in metadata:
        assert string_json(key) == compact_json(key)


@settings(max_examples=50, deadline=None)
@given(
    currency=st.sampled_from(sorted(CURRENCIES)),
    low=st.integers(1, 10_000),
    span=st.integers(0, 100_000),
    seed=st.integers(0, 2**31),
)
def test_amounts_stay_in_the_persona_range(currency, low, span, seed):
    exponent = CURRENCIES[currency].exponent
    persona = replace(
        PERSONA,
        currencies=(currency,),
        amount_min=Decimal(low),
        amount_max=Decimal(low + span),
    )
    amount = PaymentData(persona, seed, 0).amount_minor(currency)
    assert (
        isinstance(amount, int)
        and low * 10**exponent <= amount <= (low + span) * 10**exponent
    )
