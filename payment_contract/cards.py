"""Card rules of the contract: brands by number prefix, Luhn, CVC length, declining test cards."""

from __future__ import annotations

import re
from collections.abc import Iterator

#: Brands the contract knows, in a stable order.
BRANDS: tuple[str, ...] = ("visa", "mastercard", "amex", "discover", "jcb")

#: Network test cards that always decline (as Stripe's test cards do): number -> decline code.
DECLINING_TEST_CARDS: dict[str, str] = {
    "4000000000000002": "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000009987": "lost_card",
    "4000000000009979": "stolen_card",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000000119": "processing_error",
}

#: Decline codes that are transient: the same card may succeed later.
TRANSIENT_DECLINE_CODES: frozenset[str] = frozenset({"processing_error"})

#: What a written card number looks like: 13-19 digits, a space or dash allowed between any two.
_DIGIT_RUN = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
#: The same standing alone, not inside an id of letters, digits and ``_`` (a hex id such as
#: ``cus_0123...`` or ``jf8b3f...`` may hold such a run by chance).
_STANDALONE_DIGIT_RUN = re.compile(
    r"(?<![0-9A-Za-z_])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z_])"
)
CARD_REDACTED = "[card redacted]"

_LENGTHS = {
    "visa": (13, 16, 19),
    "mastercard": (16,),
    "amex": (15,),
    "discover": (16,),
    "jcb": (16,),
}


def ascii_digits(text: str) -> bool:
    """True when ``text`` is one or more of 0-9 (``str.isdigit`` also takes "５" or "١")."""
    return text.isascii() and text.isdigit()


def luhn_valid(number: str) -> bool:
    """True when ``number`` is all ASCII digits and passes the Luhn checksum."""
    if not ascii_digits(number) or len(number) < 12:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _prefix_brand(number: str) -> str | None:
    if number.startswith("4"):
        return "visa"
    p2, p4, p3 = int(number[:2] or 0), int(number[:4] or 0), int(number[:3] or 0)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return "mastercard"
    if p2 in (34, 37):
        return "amex"
    if p4 == 6011 or p2 == 65 or 644 <= p3 <= 649:
        return "discover"
    if 3528 <= p4 <= 3589:
        return "jcb"
    return None


def brand_of(number: str) -> str | None:
    """The card brand for ``number`` by prefix and length, or ``None`` when no brand matches."""
    if not ascii_digits(number):
        return None
    brand = _prefix_brand(number)
    if brand is None or len(number) not in _LENGTHS[brand]:
        return None
    return brand


def cvc_length(brand: str) -> int:
    """CVC digits the brand uses: 4 for amex, 3 for the others."""
    return 4 if brand == "amex" else 3


def mask_card(number: str) -> str:
    """A loggable form of a card number: brand and last four digits only (``visa ••••4242``)."""
    brand = brand_of(number) or "card"
    return f"{brand} ••••{number[-4:]}" if len(number) >= 4 else brand


def card_numbers_in(text: str, standalone: bool = False) -> Iterator[re.Match]:
    """The card numbers written in ``text``: runs of 13-19 digits (spaces or dashes between them
    allowed) that pass Luhn. ``standalone``: only runs not inside an id of letters and digits."""
    # most texts are short names or numbers: no room for 13 digits, and no regex to run
    if len(text) < 13 or sum(map(str.isdigit, text)) < 13:
        return
    pattern = _STANDALONE_DIGIT_RUN if standalone else _DIGIT_RUN
    for match in pattern.finditer(text):
        if luhn_valid(match.group().replace(" ", "").replace("-", "")):
            yield match


def redact_card_numbers(text: str) -> str:
    """``text`` with every card number (see ``card_numbers_in``) replaced by ``CARD_REDACTED``."""
    found = list(card_numbers_in(text))
    for match in reversed(found):
        text = text[: match.start()] + CARD_REDACTED + text[match.end() :]
    return text
