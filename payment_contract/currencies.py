"""Currencies the contract supports, with their minor-unit exponent and amount limits."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

#: Smallest accepted amount, in minor units (1 cent, 1 yen).
MIN_AMOUNT_MINOR = 1
#: Largest accepted amount, in minor units, for every currency (like Stripe's 99,999,999).
MAX_AMOUNT_MINOR = 99_999_999


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency: ``exponent`` is the number of decimals (0 for JPY and KRW)."""

    code: str
    exponent: int

    @property
    def zero_decimal(self) -> bool:
        return self.exponent == 0

    @property
    def minor_per_major(self) -> int:
        return 10**self.exponent


CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        Currency("USD", 2),
        Currency("EUR", 2),
        Currency("GBP", 2),
        Currency("CAD", 2),
        Currency("AUD", 2),
        Currency("CHF", 2),
        Currency("SEK", 2),
        Currency("JPY", 0),
        Currency("KRW", 0),
    )
}


def to_minor(major: Decimal | float | str, currency: str) -> int:
    """Convert an amount in major units (``"12.50"``) to integer minor units (``1250``)."""
    exponent = CURRENCIES[currency].exponent
    value = Decimal(str(major)) * (10**exponent)
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_minor(amount: int, currency: str) -> str:
    """Render minor units for people: ``format_minor(340000, "USD") == "3,400.00"``."""
    exponent = CURRENCIES[currency].exponent
    if exponent == 0:
        return f"{amount:,}"
    major = Decimal(amount) / (10**exponent)
    return f"{major:,.{exponent}f}"
