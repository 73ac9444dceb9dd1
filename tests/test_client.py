"""API client bookkeeping that needs no service: the duplicate-charge memory stays bounded."""

from __future__ import annotations

import random

from journeys.client import KEYS_REMEMBERED, PaymentApi


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
