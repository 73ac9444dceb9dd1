"""The payment contract shared by the reference service and the load generator.

Both sides speak the same contract (see ``docs/contract.md``): which currencies exist and how many
decimals they have, how a card number maps to a brand, which network test cards decline and how.
Keeping it in one small package means the generator and the service cannot drift apart, while the
generator still talks to the service only over HTTP. Two modules not imported here hold what
both need and the service may not take from ``journeys`` (which imports Locust):
``trace_agent`` (is the Datadog trace agent taking spans) and ``env_names`` (variables of a
prefix that nothing reads).
"""

from payment_contract.cards import (
    BRANDS,
    CARD_REDACTED,
    DECLINING_TEST_CARDS,
    TRANSIENT_DECLINE_CODES,
    ascii_digits,
    brand_of,
    card_numbers_in,
    cvc_length,
    luhn_valid,
    mask_card,
    redact_card_numbers,
)
from payment_contract.currencies import (
    CURRENCIES,
    MAX_AMOUNT_MINOR,
    MIN_AMOUNT_MINOR,
    Currency,
    format_minor,
    to_minor,
)

#: The contract's two endpoints, relative to the service's base URL.
PAY_PATH = "/pay"
REPORT_PATH = "/internal/generate-report"
#: The longest ``Idempotency-Key`` a payment may carry (one character more is a 400).
MAX_IDEMPOTENCY_KEY = 255
#: The longest ``description`` a payment may carry (one character more is a 422).
MAX_DESCRIPTION = 500

__all__ = [
    "BRANDS",
    "CARD_REDACTED",
    "CURRENCIES",
    "DECLINING_TEST_CARDS",
    "MAX_AMOUNT_MINOR",
    "MAX_DESCRIPTION",
    "MAX_IDEMPOTENCY_KEY",
    "MIN_AMOUNT_MINOR",
    "PAY_PATH",
    "REPORT_PATH",
    "TRANSIENT_DECLINE_CODES",
    "Currency",
    "ascii_digits",
    "brand_of",
    "card_numbers_in",
    "cvc_length",
    "format_minor",
    "luhn_valid",
    "mask_card",
    "redact_card_numbers",
    "to_minor",
]
