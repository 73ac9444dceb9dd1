"""Realistic, reproducible payment data per simulated user: customers, cards, currencies, amounts.

Faker is slow per call, so each process builds pools once (customers per locale, good cards per
brand) and every user draws from them with its own ``random.Random``. The user's RNG is seeded
from ``--seed``, the persona, the worker and the user index, so the same seed repeats a run's data.
Idempotency keys and batch ids are never seed-derived: a repeated run must not replay the last
run's keys against the same service.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import random
import secrets
from dataclasses import dataclass, field
from decimal import Decimal

from faker import Faker

from journeys.personas import Persona
from payment_contract import (
    CURRENCIES,
    DECLINING_TEST_CARDS,
    cvc_length,
    luhn_valid,
    mask_card,
)

CUSTOMER_POOL = 256
CARD_POOL = 64
#: Declining test cards by decline code (all visa, as Stripe's are).
TEST_CARD_BY_CODE = {code: number for number, code in DECLINING_TEST_CARDS.items()}
#: Number prefixes and lengths per brand (JCB 3528–3589: Faker's '35' prefix is wrong).
PREFIXES = {
    "visa": (["4"], 16),
    "mastercard": ([str(p) for p in range(51, 56)] + ["2221", "2500", "2720"], 16),
    "amex": (["34", "37"], 15),
    "discover": (["6011", "65", "644", "649"], 16),
    "jcb": ([str(p) for p in range(3528, 3590)], 16),
}


#: JSON as the client sends it (no spaces): ``json.dumps(v, separators=(",", ":"))`` without
#: building a new encoder per call.
compact_json = json.JSONEncoder(separators=(",", ":")).encode
_ascii_string = (
    json.encoder.encode_basestring_ascii
)  # what compact_json does with a str
_string_json: dict[str, str] = {}


def string_json(text: str) -> str:
    """``compact_json(text)`` of a str, remembered for the few values sent over and over
    (currencies): the encoder's ``encode`` is a Python call per value."""
    encoded = _string_json.get(text)
    if encoded is None:
        encoded = _ascii_string(text)
        if len(_string_json) < 256:
            _string_json[text] = encoded
    return encoded


def flat_json(mapping: dict) -> str:
    """``compact_json(mapping)`` in about half the time for a dict of str to str (a payment's
    metadata); anything else (a number, a nested value) goes through ``compact_json``."""
    try:
        return (
            "{"
            + ",".join(
                [f"{_ascii_string(k)}:{_ascii_string(v)}" for k, v in mapping.items()]
            )
            + "}"
        )
    except TypeError:  # a key or value that is not a str
        return compact_json(mapping)


@dataclass(frozen=True, slots=True)
class Card:
    """A card as sent to ``POST /pay``. ``decline_code`` is set for declining test cards."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str
    brand: str
    decline_code: str | None = None
    #: ``as_json()`` serialized once (cards come from pools and are sent many times).
    json: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "json", compact_json(self.as_json()))

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def masked(self) -> str:
        return mask_card(self.number)

    def as_json(self) -> dict:
        return {
            "number": self.number,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
            "cvc": self.cvc,
        }

    def __repr__(self) -> str:  # never the full number or the CVC
        return f"Card({self.masked}, {self.exp_month:02d}/{self.exp_year}, decline={self.decline_code})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str
    email: str
    address: str
    locale: str
    #: ``as_json()`` serialized once (customers come from pools and are sent many times).
    json: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "json", compact_json(self.as_json()))

    def as_json(self) -> dict:
        return {"id": self.id, "name": self.name, "email": self.email}


def resolve_seed(seed: int | None) -> int:
    """The given seed, or a fresh random one (logged by the caller so the run can be repeated)."""
    return seed if seed is not None else secrets.randbelow(2**31)


def _stable_seed(*parts) -> int:
    return int.from_bytes(
        hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big"
    )


def luhn_complete(partial: str) -> str:
    """``partial`` plus the Luhn check digit (the one digit that makes it ``luhn_valid``)."""
    return next(partial + d for d in "0123456789" if luhn_valid(partial + d))


def expiry(rng: random.Random, today: dt.date | None = None) -> tuple[int, int]:
    """``(month, year)`` 12 to 60 months after this month: a service whose clock runs up to a
    year ahead (another host's) still takes the card (from next January, a December's cards
    were expired to a clock two months ahead)."""
    today = today or dt.date.today()
    months = today.year * 12 + today.month - 1 + rng.randint(12, 60)
    return months % 12 + 1, months // 12


def make_card(brand: str, rng: random.Random, today: dt.date | None = None) -> Card:
    """A Luhn-valid, non-declining card of ``brand`` expiring 1–5 years after this month."""
    prefixes, length = PREFIXES[brand]
    while True:
        prefix = rng.choice(prefixes)
        body = prefix + "".join(
            rng.choice("0123456789") for _ in range(length - len(prefix) - 1)
        )
        number = luhn_complete(body)
        if number not in DECLINING_TEST_CARDS:
            break
    month, year = expiry(rng, today)
    cvc = "".join(rng.choice("0123456789") for _ in range(cvc_length(brand)))
    return Card(number, month, year, cvc, brand)


def declining_card(code: str, rng: random.Random, today: dt.date | None = None) -> Card:
    """The network test card that declines with ``code``, with valid expiry and CVC."""
    month, year = expiry(rng, today)
    return Card(
        TEST_CARD_BY_CODE[code],
        month,
        year,
        f"{rng.randint(0, 999):03d}",
        "visa",
        code,
    )


class CustomerPool:
    """``CUSTOMER_POOL`` customers of one locale and seed, each made with Faker when it is first
    drawn. Building all of them at start took ~0.1 s of CPU per locale in every Locust process
    (its first spawn, before any request), for runs that draw a few dozen. Customer ``i``
    depends only on the locale, the seed and ``i``: a seed repeats them in any order of draws."""

    __slots__ = ("_fake", "items", "locale", "seed")

    def __init__(self, locale: str, seed: int) -> None:
        self.locale, self.seed = locale, seed
        #: the customers made so far, by index (None: not drawn yet)
        self.items: list[Customer | None] = [None] * CUSTOMER_POOL
        self._fake = Faker(locale)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Customer:
        return self.items[i] or self.make(i)

    def make(self, i: int) -> Customer:
        """Customer ``i``, made now (seeded by locale, seed and ``i``) and kept."""
        fake, locale = self._fake, self.locale
        fake.seed_instance(_stable_seed("customers", locale, self.seed, i))
        number = _stable_seed("customer-id", locale, self.seed, i) >> 8  # 56 bits
        customer = Customer(
            f"cus_{number:014x}",
            fake.name(),
            fake.email(),
            fake.address().replace("\n", ", "),
            locale,
        )
        self.items[i] = customer
        return customer


_customer_pools: dict[tuple[str, int], CustomerPool] = {}
_card_pools: dict[tuple[str, int], tuple[Card, ...]] = {}


def customer_pool(locale: str, seed: int) -> CustomerPool:
    """Customers of one locale, one pool per process and seed (made as they are drawn)."""
    key = (locale, seed)
    pool = _customer_pools.get(key)
    if pool is None:
        pool = _customer_pools[key] = CustomerPool(locale, seed)
    return pool


def card_pool(brand: str, seed: int) -> tuple[Card, ...]:
    """Good cards of one brand, built once per process and seed."""
    key = (brand, seed)
    if key not in _card_pools:
        rng = random.Random(_stable_seed("cards", brand, seed))
        _card_pools[key] = tuple(make_card(brand, rng) for _ in range(CARD_POOL))
    return _card_pools[key]


def build_pools(persona: Persona, seed: int) -> None:
    """Build the card pools ``persona`` draws from and its locale's Faker (a no-op once they
    exist); its customers are made as they are drawn."""
    customer_pool(persona.locale, seed)
    for brand in persona.card_types:
        card_pool(brand, seed)


_process_tag = os.urandom(6).hex()
_key_counter = itertools.count()


def _new_process_tag() -> None:
    """A forked child (``locust --processes N`` forks its workers after importing the
    locustfile) draws a tag of its own: with the parent's, two workers made the same keys."""
    global _process_tag
    _process_tag = os.urandom(6).hex()


os.register_at_fork(after_in_child=_new_process_tag)


class PaymentData:
    """The data stream of one simulated user of ``persona``."""

    def __init__(
        self, persona: Persona, seed: int, user_index: int, worker_index: int = 0
    ) -> None:
        self.persona = persona
        self.seed = seed
        self.rng = random.Random(
            _stable_seed(seed, persona.name, worker_index, user_index)
        )
        # the client's backoff jitter: how often it resends depends on the service, so drawing
        # it from ``rng`` would change every payment after a resend
        self.jitter_rng = random.Random(
            _stable_seed("jitter", seed, persona.name, worker_index, user_index)
        )
        self._customers = customer_pool(persona.locale, seed)
        self._cards = {brand: card_pool(brand, seed) for brand in persona.card_types}
        self._declining = {
            code: declining_card(code, self.rng) for code in persona.decline_codes
        }
        # Per-journey draws index these tuples with ``int(random() * n)``: one C call per draw
        # where ``rng.choice`` / ``randint`` made ~5 Python calls. Still one stream per seed.
        self._random = self.rng.random
        self._currencies = tuple(persona.currencies)
        self._brand_pools = tuple(self._cards[b] for b in persona.card_types)
        self._declining_cards = tuple(self._declining[c] for c in persona.decline_codes)
        self._spans = {c: self._minor_span(c) for c in persona.currencies}

    def _minor_span(self, currency: str) -> tuple[int, int]:
        """The lowest amount in minor units of ``currency`` and how many amounts there are."""
        scale = CURRENCIES[currency].minor_per_major
        low = max(1, int(Decimal(self.persona.amount_min) * scale))
        return low, max(low, int(Decimal(self.persona.amount_max) * scale)) - low + 1

    def customer(self) -> Customer:
        made = self._customers.items
        i = int(self._random() * len(made))
        return made[i] or self._customers.make(i)

    def first_card(self) -> Card:
        """The card a journey starts with: a declining test card at the persona's decline rate."""
        rate = self.persona.decline_rate
        if rate and self._random() < rate:
            cards = self._declining_cards
            return cards[int(self._random() * len(cards))]
        return self.good_card()

    def good_card(self, brand: str | None = None, exclude: Card | None = None) -> Card:
        """A card that pays: of ``brand`` (default: one of the persona's), other than ``exclude``."""
        random_ = self._random
        if brand:
            pool = self._cards.get(brand) or card_pool(brand, self.seed)
        else:
            pools = self._brand_pools
            pool = pools[int(random_() * len(pools))]
        while True:
            card = pool[int(random_() * len(pool))]
            if exclude is None or card.number != exclude.number:
                return card

    def corrected_card(self, card: Card) -> Card:
        """After an expired-card or wrong-CVC decline: the customer re-enters a good card's details."""
        brand = card.brand if card.brand in self.persona.card_types else None
        return self.good_card(brand, exclude=card)

    def currency(self) -> str:
        currencies = self._currencies
        return currencies[int(self._random() * len(currencies))]

    def amount_minor(self, currency: str) -> int:
        """An amount in the persona's range, in integer minor units of ``currency`` (whole yen/won)."""
        low, count = self._spans.get(currency) or self._minor_span(currency)
        return low + int(self._random() * count)

    def idempotency_key(self) -> str:
        """A key unique across processes and runs (never seed-derived)."""
        return f"{_process_tag}-{next(_key_counter):x}"

    def journey_id(self) -> str:
        """Groups a journey's payments in the service's metadata (unique, like the keys)."""
        return f"j{_process_tag}{next(_key_counter):x}"

    def batch_id(self) -> str:
        return f"batch_{_process_tag}{next(_key_counter):x}"
