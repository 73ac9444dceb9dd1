"""Validate a ``POST /pay`` body into a ``PaymentRequest``, or raise the first precise ``ApiError``.

Checks run in a fixed order (amount, currency, card, customer, description, metadata) so a body
with several problems always gets the same answer. Field errors are 422; the card's full number
never appears in a message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from payment_contract import (
    CURRENCIES,
    MAX_AMOUNT_MINOR,
    MAX_DESCRIPTION,
    MAX_IDEMPOTENCY_KEY,
    MIN_AMOUNT_MINOR,
    ascii_digits,
    brand_of,
    card_numbers_in,
    cvc_length,
    luhn_valid,
)
from payment_contract.currencies import format_minor
from payment_service.errors import ApiError

#: SMTP's limit on an address (RFC 5321)
MAX_EMAIL = 254
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500
#: deeper than any contract body (``card.number`` is level 2); deeper bodies are refused
MAX_JSON_DEPTH = 32


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """A valid payment request. ``request_hash`` identifies the body for idempotency checks."""

    amount: int
    currency: str
    number: str
    brand: str
    customer_id: str
    metadata: dict[str, str]
    description: str | None
    request_hash: str

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def fingerprint(self) -> str:
        """A stable card identifier that is not the number (like Stripe's ``card.fingerprint``)."""
        return hashlib.sha256(b"fp:" + self.number.encode()).hexdigest()[:16]


def _bad(code: str, param: str, message: str) -> ApiError:
    return ApiError(422, code, message, param)


def _missing(param: str) -> ApiError:
    return _bad("parameter_missing", param, f"Missing required parameter: {param}.")


def _string(obj: dict, key: str, param: str) -> str:
    value = obj.get(key)
    if value is None or value == "":
        raise _missing(param)
    if not isinstance(value, str):
        raise _bad("invalid_string", param, f"{param} must be a string.")
    return value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _amount(body: dict, currency: object) -> int:
    if "amount" not in body or body["amount"] is None:
        raise _missing("amount")
    amount = body["amount"]
    if not _is_int(amount):
        raise _bad(
            "invalid_amount",
            "amount",
            "amount must be a whole number of the currency's minor unit (e.g. 1250 for 12.50 USD).",
        )
    if amount < MIN_AMOUNT_MINOR:
        raise _bad(
            "amount_too_small",
            "amount",
            f"amount must be at least {MIN_AMOUNT_MINOR} (minor units).",
        )
    if amount > MAX_AMOUNT_MINOR:
        shown = (
            format_minor(MAX_AMOUNT_MINOR, currency)
            if isinstance(currency, str) and currency in CURRENCIES
            else str(MAX_AMOUNT_MINOR)
        )
        raise _bad(
            "amount_too_large",
            "amount",
            f"amount must be at most {MAX_AMOUNT_MINOR} minor units ({shown}).",
        )
    return amount


def _currency(body: dict) -> str:
    if "currency" not in body or body["currency"] in (None, ""):
        raise _missing("currency")
    currency = body["currency"]
    if not isinstance(currency, str) or currency not in CURRENCIES:
        supported = ", ".join(CURRENCIES)
        raise _bad(
            "invalid_currency",
            "currency",
            f"Unsupported currency {str(currency)[:8]!r}; use an upper-case ISO 4217 code: {supported}.",
        )
    return currency


def _card(body: dict, today: dt.date) -> tuple[str, str]:
    card = body.get("card")
    if card is None:
        raise _missing("card")
    if not isinstance(card, dict):
        raise _bad(
            "invalid_card",
            "card",
            "card must be an object with number, exp_month, exp_year, cvc.",
        )
    number = card.get("number")
    if number in (None, ""):
        raise _missing("card[number]")
    if not isinstance(number, str) or not luhn_valid(number):
        raise _bad(
            "incorrect_number",
            "card[number]",
            "The card number is incorrect (not a valid card number).",
        )
    brand = brand_of(number)
    if brand is None:
        raise _bad(
            "invalid_number",
            "card[number]",
            "The card number belongs to no supported brand (visa, mastercard, amex, discover, jcb).",
        )
    for key in ("exp_month", "exp_year", "cvc"):
        if card.get(key) in (None, ""):
            raise _missing(f"card[{key}]")
    month, year = card["exp_month"], card["exp_year"]
    if not _is_int(month) or not 1 <= month <= 12:
        raise _bad(
            "invalid_expiry_month",
            "card[exp_month]",
            "exp_month must be an integer from 1 to 12.",
        )
    if not _is_int(year) or not 2000 <= year <= 2100:
        raise _bad(
            "invalid_expiry_year",
            "card[exp_year]",
            "exp_year must be a four-digit year.",
        )
    if (year, month) < (today.year, today.month):
        # the field to change: the year when it is past, else the month of this year
        field = "exp_year" if year < today.year else "exp_month"
        raise _bad("expired_card", f"card[{field}]", "The card has expired.")
    cvc = card["cvc"]
    if (
        not isinstance(cvc, str)
        or not ascii_digits(cvc)
        or len(cvc) != cvc_length(brand)
    ):
        raise _bad(
            "invalid_cvc",
            "card[cvc]",
            f"The CVC must be {cvc_length(brand)} digits for {brand}.",
        )
    return number, brand


def _customer(body: dict) -> str:
    customer = body.get("customer")
    if customer is None:
        raise _missing("customer")
    if not isinstance(customer, dict):
        raise _bad(
            "invalid_customer",
            "customer",
            "customer must be an object with id, name, email.",
        )
    customer_id = _string(customer, "id", "customer[id]")
    _string(customer, "name", "customer[name]")
    email = _string(customer, "email", "customer[email]")
    if "@" not in email or len(email) > MAX_EMAIL:
        raise _bad(
            "invalid_email", "customer[email]", "customer email is not a valid address."
        )
    for key in ("id", "name", "email"):
        _no_card_number(f"customer[{key}]", customer[key])
    return customer_id[:255]


def _description(body: dict) -> str | None:
    description = body.get("description")
    if description is None:
        return None
    if not isinstance(description, str):
        raise _bad("invalid_string", "description", "description must be a string.")
    if len(description) > MAX_DESCRIPTION:
        raise _bad(
            "description_too_long",
            "description",
            f"description is longer than {MAX_DESCRIPTION} characters.",
        )
    _no_card_number("description", description)
    return description


def _metadata(body: dict) -> dict[str, str]:
    metadata = body.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or len(metadata) > MAX_METADATA_KEYS:
        raise _bad(
            "invalid_metadata",
            "metadata",
            f"metadata must be a flat object of at most {MAX_METADATA_KEYS} strings.",
        )
    for key, value in metadata.items():
        if (
            len(key) > MAX_METADATA_KEY
            or not isinstance(value, str)
            or len(value) > MAX_METADATA_VALUE
        ):
            raise _bad(
                "invalid_metadata",
                f"metadata[{key[:MAX_METADATA_KEY]}]",
                f"metadata keys are at most {MAX_METADATA_KEY} characters and values strings of at most "
                f"{MAX_METADATA_VALUE}.",
            )
    for key, value in metadata.items():
        _no_card_number("metadata", key)
        _no_card_number(f"metadata[{key[:MAX_METADATA_KEY]}]", value)
    return metadata


def idempotency_key(headers) -> str:
    """The request's ``Idempotency-Key`` header, or a 400 naming it."""
    key = (headers.get("idempotency-key") or "").strip()
    if not key:
        raise ApiError(
            400,
            "missing_idempotency_key",
            "POST /pay needs an Idempotency-Key header (e.g. a UUID).",
            "Idempotency-Key",
        )
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters.",
            "Idempotency-Key",
        )
    return key


def _unstorable(body: dict) -> str | None:
    """Why a parsed body cannot be handled, or None: nested deeper than any contract body, or a
    string with a lone UTF-16 surrogate (``"\\ud800"`` is JSON syntax but no character: SQLite
    and the UTF-8 answer cannot hold it). Walked without recursion, so depth cannot crash it."""
    stack = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"it is nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(value, dict):
            stack.extend((key, depth + 1) for key in value)
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and not _utf8(value):
            return "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), not a character"
    return None


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_json(literal: str) -> float:
    """Python's ``json`` reads ``NaN``, ``Infinity`` and ``-Infinity``; JSON (RFC 8259) has no
    such literals, so a body holding one is malformed (else one in an unknown field paid)."""
    raise ValueError(f"{literal} is not a JSON value")


def _invalid_json(reason: str) -> ApiError:
    return ApiError(400, "invalid_json", f"The body is not valid JSON: {reason[:100]}.")


def parse_json_object(content_type: str | None, raw: bytes) -> dict:
    """The body as a JSON object, or a 400 (wrong content type, not UTF-8, malformed JSON, not an
    object, too deep, a lone surrogate)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json":
        raise ApiError(
            400,
            "unsupported_content_type",
            f"Send the body as JSON with Content-Type: application/json (got {media or 'none'!r}).",
        )
    try:
        text = raw.decode("utf-8-sig")  # JSON is UTF-8 (RFC 8259); a BOM is tolerated
    except UnicodeDecodeError as exc:
        raise _invalid_json(
            f"it is not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    try:
        body = json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise _invalid_json(
            f"it is nested deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError as exc:
        raise _invalid_json(str(exc)) from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The body must be a JSON object.")
    reason = _unstorable(body)
    if reason:
        raise _invalid_json(reason)
    return body


def _no_card_number(param: str, text: str) -> None:
    """A card number belongs in ``card[number]`` only: in a text the service stores (the
    customer, the description, metadata) it would be written to the database whole. Each field
    checks its own texts, so the error comes in the contract's field order."""
    if any(card_numbers_in(text, standalone=True)):
        raise _bad(
            "card_number_in_text",
            param,
            f"{param} holds a card number: send it in card[number] only.",
        )


def validate_payment(body: dict, today: dt.date | None = None) -> PaymentRequest:
    """A ``PaymentRequest`` from a parsed body, or the first ``ApiError`` in contract order."""
    today = today or dt.datetime.now(dt.UTC).date()
    amount = _amount(body, body.get("currency"))
    currency = _currency(body)
    number, brand = _card(body, today)
    customer_id = _customer(body)
    description = _description(body)
    metadata = _metadata(body)
    request_hash = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return PaymentRequest(
        amount,
        currency,
        number,
        brand,
        customer_id,
        metadata,
        description,
        request_hash,
    )
