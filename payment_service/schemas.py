"""The contract's shapes as pydantic models, for the OpenAPI document only.

Requests are validated by ``validation.py`` (precise Stripe-style codes in a fixed order); these
models describe the same fields so ``/openapi.json`` and ``/docs`` show the contract.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class CardIn(BaseModel):
    number: str = Field(
        description="Card number, digits only; Luhn-valid; brand from the prefix.",
        examples=["4242424242424242"],
    )
    exp_month: int = Field(ge=1, le=12)
    exp_year: int = Field(
        description="Four digits; month/year must not be in the past."
    )
    cvc: str = Field(description="4 digits for amex, 3 for other brands.")


class CustomerIn(BaseModel):
    id: str
    name: str
    email: str


class PayRequest(BaseModel):
    amount: int = Field(
        ge=1,
        le=99_999_999,
        description="Minor units (cents; whole yen/won for JPY/KRW).",
    )
    currency: str = Field(
        description="Upper-case ISO 4217: USD EUR GBP CAD AUD CHF SEK JPY KRW."
    )
    card: CardIn
    customer: CustomerIn
    description: str | None = Field(default=None, max_length=500)
    metadata: dict[str, str] | None = Field(
        default=None, description="Flat string map, e.g. persona, batch_id."
    )


class CardOut(BaseModel):
    brand: Literal["visa", "mastercard", "amex", "discover", "jcb"]
    last4: str


class Payment(BaseModel):
    id: str
    status: Literal["succeeded"]
    amount: int
    currency: str
    card: CardOut
    created: int = Field(description="Unix seconds.")
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


class ErrorBody(BaseModel):
    error: ErrorDetail


class ReportRequest(BaseModel):
    batch_id: str | None = None
    from_: str | None = Field(
        default=None, alias="from", description="ISO 8601, inclusive."
    )
    to: str | None = Field(default=None, description="ISO 8601, exclusive.")


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


class FaultsModel(BaseModel):
    latency_ms: float = 0
    jitter_ms: float = 0
    error_rate: float = 0
    error_phase: Literal["before", "after", "mixed"] = "mixed"
    stall_rate: float = 0
    stall_s: float = 30
    garbage_rate: float = 0
    rate_limit_rps: float = 0
    report_latency_ms: float = 0
    report_tamper: bool = False
    replay_charges: bool = False
    clock_offset_s: float = 0
