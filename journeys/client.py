"""The payment API client: the one module that knows the contract over HTTP.

Journeys call ``pay`` and ``generate_report`` and get typed answers back; they never build JSON,
headers or parse responses. The client:

* builds bodies and headers (``Idempotency-Key``, the internal token, trace headers);
* names every request for Locust's stats table (``checkout: pay``, ``batch_report: report``);
* validates every answer against the contract and marks it a Locust success or failure;
* resends with the **same** idempotency key after a timeout, connection error, 5xx, 409 or an
  unreadable body (bounded, exponential backoff with full jitter), and waits ``Retry-After`` on 429;
* detects duplicate charges: an answer for a key naming another payment id than an earlier one.

Card numbers, CVCs and the token never appear in a failure message.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gevent

from journeys import tracing
from journeys.data import compact_json
from journeys.results import ledger

if TYPE_CHECKING:
    from journeys.data import Card, Customer

PAY_PATH = "/pay"
REPORT_PATH = "/internal/generate-report"
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
#: Idempotency keys (and the payment each named) a client remembers to spot a duplicate charge.
KEYS_REMEMBERED = 16


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard the client tries before giving up on one request (same idempotency key)."""

    resends: int = 5  # after a timeout, connection error, 5xx, 409 or unreadable body (~4 s of backoff)
    rate_limit_waits: int = 5  # after a 429
    backoff_s: float = 0.25  # base of the exponential backoff (full jitter)
    backoff_cap_s: float = 4.0
    retry_after_cap_s: float = 30.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.backoff_cap_s, self.backoff_s * 2**attempt))


@dataclass(slots=True)
class PayAnswer:
    """What ``POST /pay`` finally said, after any resends with the same key.

    ``kind`` is ``paid`` (201), ``declined`` (402), ``refused`` (another 4xx) or ``unknown`` (no
    readable answer after all resends: the payment may or may not exist).
    """

    kind: str
    status: int
    payment_id: str | None = None
    decline_code: str | None = None
    error_code: str | None = None
    attempts: int = 1
    duplicate_charge: bool = False
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ReportAnswer:
    """The report, or why there is none (``report`` is None then)."""

    status: int
    report: dict | None
    error_code: str | None = None
    detail: str = ""


class ContractViolation(Exception):
    """An answer that breaks the contract (wrong status, wrong shape, wrong echo)."""


def key_hash(key: str) -> str:
    """A short, stable hash of an idempotency key: safe for traces and logs."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


_decode_json = json.JSONDecoder().decode


def _json_body(response) -> Any:
    """The parsed JSON body, or None when it is missing or not JSON (not UTF-8 included)."""
    try:
        return _decode_json((response.content or b"").decode())
    except (ValueError, TypeError):
        return None


def _no_answer(error: BaseException | None) -> str:
    """``no answer: TimeoutError``; geventhttpclient's ``RetriesExceeded`` names the error behind it."""
    if error is None:
        return "no answer: connection error"
    if type(error).__name__ == "RetriesExceeded" and error.__context__ is not None:
        error = error.__context__
    return f"no answer: {type(error).__name__}"


def _error_of(body: Any) -> dict:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]
    return {}


def _retry_after_s(response, cap: float) -> float:
    value = (response.headers or {}).get("Retry-After") if response.headers else None
    if not value:
        return 1.0
    try:
        return min(cap, max(0.0, float(value)))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return min(cap, max(0.0, parsed.timestamp() - time.time())) if parsed else 1.0


def pay_body(
    amount: int,
    currency: str,
    card: Card,
    customer: Customer,
    metadata: dict[str, str],
    description: str | None = None,
) -> str:
    """The ``POST /pay`` JSON body, from the card's and customer's pre-serialized JSON.

    Same text as ``json.dumps`` of the whole payload with compact separators, without
    re-encoding the pooled card and customer on every request (the hot path of every journey).
    """
    body = (
        f'{{"amount":{amount:d},"currency":{compact_json(currency)},"card":{card.json},'
        f'"customer":{customer.json},"metadata":{compact_json(metadata)}'
    )
    if description is not None:
        body += f',"description":{compact_json(description)}'
    return body + "}"


def check_paid(body: Any, amount: int, currency: str, card: Card) -> str:
    """Validate a 201 body against what was sent; returns the payment id or raises."""
    if not isinstance(body, dict):
        raise ContractViolation("201 body is not a JSON object")
    payment_id = body.get("id")
    problems = []
    if not isinstance(payment_id, str) or not payment_id:
        problems.append("no payment id")
    if body.get("status") != "succeeded":
        problems.append(f"status {body.get('status')!r} != 'succeeded'")
    if body.get("amount") != amount:
        problems.append(f"amount {body.get('amount')!r} != {amount}")
    if body.get("currency") != currency:
        problems.append(f"currency {body.get('currency')!r} != {currency!r}")
    card_echo = body.get("card") if isinstance(body.get("card"), dict) else {}
    if card_echo.get("brand") != card.brand:
        problems.append(f"card.brand {card_echo.get('brand')!r} != {card.brand!r}")
    if card_echo.get("last4") != card.number[-4:]:
        problems.append(
            f"card.last4 {card_echo.get('last4')!r} != {card.number[-4:]!r}"
        )
    if problems:
        raise ContractViolation("201 body: " + "; ".join(problems))
    return payment_id


class PaymentApi:
    """The payment contract for one simulated user (wraps its ``FastHttpSession``)."""

    def __init__(
        self,
        session,
        rng: random.Random,
        token: str | None,
        policy: RetryPolicy | None = None,
    ):
        self.session = session
        self.rng = rng
        self.token = token
        self.policy = policy or RetryPolicy()
        self._ids_by_key: dict[str, str] = {}

    # -- POST /pay -------------------------------------------------------------------------------

    def pay(
        self,
        name: str,
        *,
        card: Card,
        customer: Customer,
        amount: int,
        currency: str,
        key: str,
        metadata: dict[str, str],
        retry: int = 0,
        description: str | None = None,
    ) -> PayAnswer:
        """Send one logical payment attempt, resending with the same key until it has an answer."""
        body = pay_body(amount, currency, card, customer, metadata, description)
        resends = waits = 0
        sends = 0
        last_detail = ""
        # an attempt ended without an answer that rules a payment out (a 429 does)
        maybe_stored = in_flight = False
        try:
            while True:
                sends += 1
                label = name if sends == 1 else f"{name} (resend same key)"
                in_flight = True
                answer, transient, wait_s = self._send_pay(
                    label, body, key, card, amount, currency, retry, sends
                )
                in_flight = False
                if answer is not None:
                    answer.attempts = sends
                    return answer
                last_detail = transient
                if wait_s is not None:  # 429: nothing stored; wait as told, bounded
                    waits += 1
                    if waits > self.policy.rate_limit_waits:
                        break
                    gevent.sleep(wait_s)
                    continue
                maybe_stored = True
                if resends >= self.policy.resends:
                    break
                gevent.sleep(self.policy.backoff(resends, self.rng))
                resends += 1
        except BaseException:
            # the run stopped this user mid-payment: the request in flight may have been stored
            if in_flight or maybe_stored:
                self._book_unknown(key, currency, amount)
            raise
        if maybe_stored:  # not after 429s alone: a 429 stores nothing
            self._book_unknown(key, currency, amount)
        return PayAnswer(
            "unknown", 0, self._ids_by_key.get(key), attempts=sends, detail=last_detail
        )

    def _book_unknown(self, key: str, currency: str, amount: int) -> None:
        """A payment whose fate the client could not learn goes into the ledger as "unknown"
        (unless an earlier call with the same key already booked it as paid)."""
        if key not in self._ids_by_key:
            ledger.record(currency, amount, unknown=True)

    def _send_pay(self, label, body, key, card, amount, currency, retry, send_no):
        """One HTTP attempt. Returns (answer, transient_reason, retry_after_s)."""
        headers = {**JSON_HEADERS, "Idempotency-Key": key}
        with tracing.attempt_span(label, "POST", PAY_PATH, retry=retry) as span:
            if span is not tracing.NO_SPAN:
                span.set_tag("idempotency_key.sha256", key_hash(key))
                span.set_tag("payment.send", send_no)
            tracing.inject(headers)
            with self.session.post(
                PAY_PATH, data=body, headers=headers, name=label, catch_response=True
            ) as resp:
                status = resp.status_code or 0
                span.set_tag("http.status_code", status)
                answer, transient, wait_s, failure = self._judge_pay(
                    resp, status, key, card, amount, currency
                )
                if failure:
                    resp.failure(failure)
                    span.set_error(failure)
                else:
                    resp.success()
        return answer, transient, wait_s

    def _judge_pay(self, resp, status, key, card, amount, currency):
        """Classify one /pay response: (answer, transient_reason, retry_after_s, failure_message)."""
        if status == 0:
            reason = _no_answer(resp.error)
            return None, reason, None, reason
        if status == 429:
            return (
                None,
                "429 rate limited",
                _retry_after_s(resp, self.policy.retry_after_cap_s),
                "429 rate limited",
            )
        if status >= 500 or status == 409:
            code = _error_of(_json_body(resp)).get("code") or ""
            reason = f"{status} {code}".strip()
            return None, reason, None, reason
        body = _json_body(resp)
        if status == 201:
            payment_id = body.get("id") if isinstance(body, dict) else None
            if not isinstance(payment_id, str) or not payment_id:
                # the payment was made but the answer does not say which: ask again with the same key
                reason = (
                    "201 with unreadable body"
                    if body is None
                    else "201 without a payment id"
                )
                return None, reason, None, reason
            duplicate = self._remember(key, payment_id)
            if not duplicate:
                ledger.record(currency, amount)
            try:
                check_paid(body, amount, currency, card)
            except (
                ContractViolation
            ) as exc:  # a confirmed payment whose answer breaks the contract
                return (
                    PayAnswer("refused", status, payment_id, detail=str(exc)),
                    None,
                    None,
                    str(exc),
                )
            answer = PayAnswer("paid", status, payment_id, duplicate_charge=duplicate)
            return (
                answer,
                None,
                None,
                (
                    f"duplicate charge for one idempotency key: {payment_id}"
                    if duplicate
                    else None
                ),
            )
        error = _error_of(body)
        if body is None or not error:
            reason = f"{status} with unreadable error body"
            return None, reason, None, reason
        if status == 402:
            payment_id = error.get("payment_id")
            decline = error.get("decline_code") or error.get("code")
            duplicate = bool(payment_id) and self._remember(key, payment_id)
            expected = card.decline_code
            failure = None
            if expected is None:
                failure = f"402 {decline} on a card that should pay ({card.masked})"
            elif decline != expected:
                failure = f"402 {decline}, expected decline {expected} ({card.masked})"
            if duplicate:
                failure = f"duplicate charge for one idempotency key: {payment_id}"
            return (
                PayAnswer(
                    "declined",
                    status,
                    payment_id,
                    decline,
                    error.get("code"),
                    duplicate_charge=duplicate,
                ),
                None,
                None,
                failure,
            )
        code = error.get("code")
        failure = f"{status} {code}: {str(error.get('message', ''))[:120]}"
        return (
            PayAnswer("refused", status, error_code=code, detail=failure),
            None,
            None,
            failure,
        )

    def _remember(self, key: str, payment_id: str) -> bool:
        """Record the payment id a key produced; True when the key already named another one.

        One ``pay`` call ends at the first answer naming a payment, so a duplicate shows only
        when a caller sends a key again in a later call, which it does for a payment it just
        made. Only the last ``KEYS_REMEMBERED`` keys are kept: a longer memory would grow with
        every payment of a long run (it was 256 keys, ~60 KB per busy user).
        """
        earlier = self._ids_by_key.setdefault(key, payment_id)
        if len(self._ids_by_key) > KEYS_REMEMBERED:
            self._ids_by_key.pop(next(iter(self._ids_by_key)))
        return earlier != payment_id

    # -- POST /internal/generate-report ----------------------------------------------------------

    def generate_report(self, name: str, filter_: dict) -> ReportAnswer:
        """Ask for a report (by ``batch_id`` or ``from``/``to``), resending on transient failures."""
        body = json.dumps(filter_)
        for resend in range(self.policy.resends + 1):
            headers = {**JSON_HEADERS, "Authorization": f"Bearer {self.token}"}
            label = name if resend == 0 else f"{name} (resend)"
            with tracing.attempt_span(label, "POST", REPORT_PATH, retry=resend) as span:
                tracing.inject(headers)
                with self.session.post(
                    REPORT_PATH,
                    data=body,
                    headers=headers,
                    name=label,
                    catch_response=True,
                ) as resp:
                    status = resp.status_code or 0
                    span.set_tag("http.status_code", status)
                    parsed = _json_body(resp)
                    if (
                        status == 200
                        and isinstance(parsed, dict)
                        and isinstance(parsed.get("totals"), dict)
                    ):
                        resp.success()
                        return ReportAnswer(status, parsed)
                    transient = (
                        status == 0
                        or status >= 500
                        or status == 429
                        or (status == 200 and parsed is None)
                    )
                    reason = f"report: {status} {_error_of(parsed).get('code') or ('unreadable body' if parsed is None else 'unexpected shape')}"
                    resp.failure(reason)
                    span.set_error(reason)
            if not transient:
                return ReportAnswer(status, None, _error_of(parsed).get("code"), reason)
            gevent.sleep(
                _retry_after_s(resp, self.policy.retry_after_cap_s)
                if status == 429
                else self.policy.backoff(resend, self.rng)
            )
        return ReportAnswer(status, None, None, reason)

    # -- raw requests for probes -----------------------------------------------------------------

    def expect(
        self,
        name: str,
        path: str,
        *,
        data: str | bytes,
        headers: dict[str, str],
        status: int,
        code: str | None = None,
    ) -> tuple[bool, str]:
        """Send a request that must be answered with ``status`` (and error ``code``): a probe.

        A correct refusal is a success for that request; anything else is a failure naming
        expected vs got. Returns (ok, message).
        """
        with tracing.attempt_span(name, "POST", path) as span:
            headers = dict(headers)
            tracing.inject(headers)
            with self.session.post(
                path, data=data, headers=headers, name=name, catch_response=True
            ) as resp:
                got = resp.status_code or 0
                span.set_tag("http.status_code", got)
                got_code = _error_of(_json_body(resp)).get("code")
                if got == status and (code is None or got_code == code):
                    resp.success()
                    return True, ""
                message = f"expected {status}{' ' + code if code else ''}, got {got}{' ' + str(got_code) if got_code else ''}"
                resp.failure(message)
                span.set_error(message)
                return False, message
