"""Texts that leave the generator without card numbers or the internal token: span tag values,
the SLO verdict's checks, a batch mismatch's log line and the personas file's errors."""

from __future__ import annotations

import os

from payment_contract import redact_card_numbers

TOKEN_REDACTED = "[token redacted]"


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` without card numbers (13-19 Luhn-valid digits, spaces/dashes allowed) or secrets."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, TOKEN_REDACTED)
    return redact_card_numbers(text)


def secrets_from_env() -> tuple[str, ...]:
    token = os.environ.get("PAYMENT_INTERNAL_TOKEN", "").strip()  # as it is sent
    return (token,) if len(token) >= 6 else ()
