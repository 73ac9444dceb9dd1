"""The contract's shapes as pydantic models, for the OpenAPI document only.

Requests are validated by ``validation.py`` (precise Stripe-style codes in a fixed order); these
models describe the same fields and limits so ``/openapi.json`` and ``/docs`` show the contract.
The limits come from where the service enforces them, so the two cannot drift apart.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from payment_contract import (
    BRANDS,
    CURRENCIES,
    MAX_AMOUNT_MINOR,
    MAX_DESCRIPTION,
    MIN_AMOUNT_MINOR,
)
from payment_service.faults import ERROR_PHASES, RANGES
from payment_service.validation import (
    MAX_EMAIL,
    MAX_METADATA_KEY,
    MAX_METADATA_KEYS,
    MAX_METADATA_VALUE,
)

NonEmpty = Annotated[str, StringConstraints(min_length=1)]
MetadataKey = Annotated[str, StringConstraints(max_length=MAX_METADATA_KEY)]
MetadataValue = Annotated[str, StringConstraints(max_length=MAX_METADATA_VALUE)]


class CardIn(BaseModel):
    number: str = Field(
        pattern=r"^[0-9]{13,19}$",
        description="Card number, ASCII digits only; Luhn-valid; brand from prefix and length.",
        examples=["4242424242424242"],
    )
    exp_month: int = Field(ge=1, le=12)
    exp_year: int = Field(
        ge=2000, le=2100, description="Four digits; month/year must not be in the past."
    )
    cvc: str = Field(
        pattern=r"^[0-9]{3,4}$", description="4 digits for amex, 3 for other brands."
    )


class CustomerIn(BaseModel):
    id: NonEmpty
    name: NonEmpty
    email: NonEmpty = Field(max_length=MAX_EMAIL, description="Contains '@'.")


class PayRequest(BaseModel):
    amount: int = Field(
        ge=MIN_AMOUNT_MINOR,
        le=MAX_AMOUNT_MINOR,
        description="Minor units (cents; whole yen/won for JPY/KRW).",
    )
    currency: Literal[tuple(CURRENCIES)] = Field(  # type: ignore[valid-type]
        description="Upper-case ISO 4217."
    )
    card: CardIn
    customer: CustomerIn
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    metadata: (
        Annotated[dict[MetadataKey, MetadataValue], Field(max_length=MAX_METADATA_KEYS)]
        | None
    ) = Field(default=None, description="Flat string map, e.g. persona, batch_id.")


class CardOut(BaseModel):
    brand: Literal[BRANDS]  # type: ignore[valid-type]
    last4: str


class Payment(BaseModel):
    id: str
    object: Literal["payment"]
    status: Literal["succeeded"]
    amount: int
    currency: str
    card: CardOut
    created: int = Field(description="Unix seconds.")
    description: str | None
    metadata: dict[str, str]


class ErrorDetail(BaseModel):
    type: Literal[
        "invalid_request_error",
        "card_error",
        "api_error",
        "rate_limit_error",
        "authentication_error",
    ]
    code: str
    param: str | None = None
    message: str
    decline_code: str | None = Field(default=None, description="402 only.")
    payment_id: str | None = Field(
        default=None, description="402 only: the stored declined payment."
    )
    retryable: bool | None = Field(
        default=None, description="402 only: true for processing_error (transient)."
    )


class ErrorBody(BaseModel):
    error: ErrorDetail


class ReportRequest(BaseModel):
    """Unknown keys are refused (400 invalid_filter)."""

    model_config = ConfigDict(extra="forbid")

    batch_id: NonEmpty | None = None
    from_: str | None = Field(
        default=None,
        alias="from",
        description="ISO 8601, inclusive; no zone is UTC.",
    )
    to: str | None = Field(
        default=None, description="ISO 8601, exclusive; no zone is UTC."
    )


class CurrencyTotal(BaseModel):
    count: int
    amount: int = Field(description="Minor units.")


class PaymentCounts(BaseModel):
    succeeded: int
    declined: int


class Report(BaseModel):
    report_id: str
    generated_at: str
    filter: dict[str, str]
    payments: PaymentCounts
    totals: dict[str, CurrencyTotal] = Field(
        description="Succeeded payments per currency."
    )
    brands: dict[str, int] = Field(description="Succeeded payments per card brand.")


def _knob(name: str, default: float):
    """A numeric knob's field with the range ``faults.RANGES`` enforces."""
    low, high, what = RANGES[name]
    return Field(
        default=default,
        ge=low,
        le=high if math.isfinite(high) else None,
        description=what,
    )


class FaultsModel(BaseModel):
    """Unknown knobs are refused (400 invalid_faults)."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = _knob("latency_ms", 0)
    jitter_ms: float = _knob("jitter_ms", 0)
    error_rate: float = _knob("error_rate", 0)
    error_phase: Literal[ERROR_PHASES] = "mixed"  # type: ignore[valid-type]
    stall_rate: float = _knob("stall_rate", 0)
    stall_s: float = _knob("stall_s", 30)
    garbage_rate: float = _knob("garbage_rate", 0)
    rate_limit_rps: float = _knob("rate_limit_rps", 0)
    report_latency_ms: float = _knob("report_latency_ms", 0)
    report_tamper: bool = False
    replay_charges: bool = False
    clock_offset_s: float = _knob("clock_offset_s", 0)
