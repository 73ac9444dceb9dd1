"""Probes: edges the service must accept, and bad input it must refuse with the documented code.

A correct refusal is a success for that request; a wrong status or error code is a failure that
names expected vs got. A probe journey is ``succeeded`` when every probe behaved, else ``failed``
with the first failure as its detail: a fixed text per kind of failure, so the failures table
gets a row per probe that failed first, not one per combination of failing probes (each failing
probe is its own failed request there too).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import replace

from locust import tag, task

from journeys.base import Journey, JourneyRun
from journeys.client import DUPLICATE_CHARGE, JSON_HEADERS, not_paid, shown_code
from payment_contract import (
    CURRENCIES,
    MAX_AMOUNT_MINOR,
    MAX_DESCRIPTION,
    MAX_IDEMPOTENCY_KEY,
    MIN_AMOUNT_MINOR,
    PAY_PATH,
    REPORT_PATH,
)

UNICODE_NAME = "Zoë Ångström-Łukasiewicz 山田 太郎 Đặng"


def month_somewhere(now: dt.datetime) -> tuple[int, int]:
    """(year, month) at UTC+14, the zone furthest ahead: "this month" there and the past in no
    zone, whichever one the service reads its clock in (the contract does not say)."""
    there = now + dt.timedelta(hours=14)
    return there.year, there.month


def year_past_everywhere(now: dt.datetime) -> int:
    """The year before the current one in UTC-12, the zone furthest behind: past in every zone."""
    return (now - dt.timedelta(hours=12)).year - 1


def _not_paid(step: str, answer) -> str:
    """Why a payment a probe needed was not made: the refusal, or the lack of any answer after
    every resend, or 429s to the end (``not_paid``). No attempt count: it varies with the mix
    of 5xx and 429s and would split the failures table's rows."""
    if answer.kind in ("unknown", "rate_limited"):
        return f"{step}: {not_paid(answer)}"
    code = answer.decline_code or answer.error_code or ""
    # as the request's own failure says it: no "no code" after a 2xx
    shown = f" {shown_code(code)}" if code else ""
    return f"{step}: expected 201, got {answer.status}{shown}"


def _first(problems) -> str:
    """The first problem of a probe's cases ("" when all behaved)."""
    return next((p for p in problems if p), "")


def _pay_json(amount: int, currency: str, card, customer) -> dict:
    """A ``POST /pay`` body as a dict, for a probe to send as it is or to spoil."""
    return {
        "amount": amount,
        "currency": currency,
        "card": card.as_json(),
        "customer": customer.as_json(),
    }


class _Probes(Journey):
    # each pass, the user picks edge or error probes from its seeded stream (equal weights)
    one_pass = True

    def probe_all(self, probes) -> None:
        # think inside each journey's own task, not in a task of this shared base class: a class
        # decorator @tag adds its tags to every task function the class holds, inherited ones
        # included, so a shared think task carried both journeys' tags and `--exclude-tags
        # errors` dropped the edge probes' think time too
        self.think()
        with self.start(self.journey_name) as run:
            failure = _first([probe(run) for probe in probes])  # every probe runs
            run.finish("failed" if failure else "succeeded", failure)
        self.done()


@tag("probes", "edge", "prober")
class EdgeProbesJourney(_Probes):
    """Happy-path edges that must be paid: limits, zero-decimal, amex CVC, expiry, unicode."""

    journey_name = "edge_probes"

    @task
    def edges(self) -> None:
        self.probe_all(
            [
                self.smallest_amount,
                self.largest_amount,
                self.zero_decimal_currency,
                self.amex_four_digit_cvc,
                self.card_expiring_this_month,
                self.unicode_name,
                self.longest_description,
            ],
        )

    def _pay(
        self,
        run: JourneyRun,
        step: str,
        *,
        card=None,
        customer=None,
        currency=None,
        amount=None,
        description=None,
    ) -> str:
        data = self.data
        currency = currency or data.currency()
        card = card or data.good_card()
        answer = self.api.pay(
            f"edge_probes: {step}",
            card=card,
            customer=customer or data.customer(),
            currency=currency,
            amount=data.amount_minor(currency) if amount is None else amount,
            key=data.idempotency_key(),
            metadata=self.metadata(run, probe=step),
            description=description,
        )
        run.attempts += answer.attempts
        run.payments += 1
        if answer.kind != "paid":
            return _not_paid(step, answer)
        return ""

    def smallest_amount(self, run):
        return self._pay(run, "smallest amount", amount=MIN_AMOUNT_MINOR)

    def largest_amount(self, run):
        return self._pay(run, "largest amount", amount=MAX_AMOUNT_MINOR)

    def zero_decimal_currency(self, run):
        zero_decimal = [
            c for c in self.persona.currencies if CURRENCIES[c].zero_decimal
        ] or ["JPY"]
        currency = zero_decimal[0]
        return self._pay(run, "zero-decimal currency", currency=currency, amount=1000)

    def amex_four_digit_cvc(self, run):
        return self._pay(run, "amex 4-digit cvc", card=self.data.good_card("amex"))

    def card_expiring_this_month(self, run):
        # the service's month, not this machine's: a service whose clock runs ahead refuses
        # a card that has expired by its clock
        year, month = month_somewhere(self.api.service_now())
        card = replace(self.data.good_card(), exp_month=month, exp_year=year)
        return self._pay(run, "card expiring this month", card=card)

    def unicode_name(self, run):
        return self._pay(
            run,
            "unicode name",
            customer=replace(self.data.customer(), name=UNICODE_NAME),
        )

    def longest_description(self, run):
        return self._pay(run, "longest description", description="d" * MAX_DESCRIPTION)


@tag("probes", "errors", "prober")
class ErrorProbesJourney(_Probes):
    """Bad input the service must refuse with the right status and error code."""

    journey_name = "error_probes"

    @task
    def errors(self) -> None:
        self.probe_all(
            [
                # first: its payment shows the service's clock, by which the expired card is
                # judged (a service running years behind takes this machine's "last year")
                self.key_reuse,
                self.bad_payment_bodies,
                self.bad_requests,
                self.report_auth,
            ],
        )

    def _valid_body(self) -> dict:
        data = self.data
        currency = data.currency()
        card = data.good_card()
        amount = data.amount_minor(currency)
        return _pay_json(amount, currency, card, data.customer())

    def _expect(
        self,
        step,
        status,
        code=None,
        *,
        body=None,
        raw=None,
        headers=None,
        path=PAY_PATH,
    ):
        ok, message = self.api.expect(
            f"error_probes: {step}",
            path,
            data=raw if raw is not None else json.dumps(body),
            headers=headers
            if headers is not None
            else {**JSON_HEADERS, "Idempotency-Key": self.data.idempotency_key()},
            status=status,
            code=code,
        )
        return "" if ok else f"{step}: {message}"

    def bad_payment_bodies(self, run):
        cases = {
            "zero amount": ({"amount": 0}, "amount_too_small"),
            "negative amount": ({"amount": -100}, "amount_too_small"),
            "too large amount": ({"amount": MAX_AMOUNT_MINOR + 1}, "amount_too_large"),
            "fractional amount": ({"amount": 10.5}, "invalid_amount"),
            "unknown currency": ({"currency": "XXX"}, "invalid_currency"),
            "bad luhn": ({"card": {"number": "4242424242424241"}}, "incorrect_number"),
            "expired card": (
                {"card": {"exp_year": year_past_everywhere(self.api.service_now())}},
                "expired_card",
            ),
            "wrong cvc length": ({"card": {"cvc": "12"}}, "invalid_cvc"),
        }
        problems = []
        for step, (change, code) in cases.items():
            body = self._valid_body()
            for key, value in change.items():
                body[key] = {**body[key], **value} if isinstance(value, dict) else value
            problems.append(self._expect(step, 422, code, body=body))
        missing = self._valid_body()
        del missing["customer"]
        problems.append(
            self._expect("missing field", 422, "parameter_missing", body=missing)
        )
        return _first(problems)

    def bad_requests(self, run):
        key = {"Idempotency-Key": self.data.idempotency_key()}
        problems = [
            self._expect(
                "malformed json",
                400,
                "invalid_json",
                raw='{"amount": 100, "currency": ',
                headers={**JSON_HEADERS, **key},
            ),
            self._expect(
                "wrong content type",
                400,
                "unsupported_content_type",
                raw=json.dumps(self._valid_body()),
                headers={"Content-Type": "text/plain", **key},
            ),
            # a valid payment without a key, or with one too long to store: a service that
            # takes it cannot be resent to safely after a timeout (a second charge)
            self._expect(
                "missing idempotency key",
                400,
                "missing_idempotency_key",
                body=self._valid_body(),
                headers=JSON_HEADERS,
            ),
            self._expect(
                "idempotency key too long",
                400,
                "invalid_idempotency_key",
                body=self._valid_body(),
                headers={
                    **JSON_HEADERS,
                    "Idempotency-Key": "k" * (MAX_IDEMPOTENCY_KEY + 1),
                },
            ),
        ]
        return _first(problems)

    def key_reuse(self, run):
        """Pay once (through the client: a real payment, in the ledger), replay it (same key,
        same body: the service must answer the same payment and charge nothing new), then send
        the same key with another amount: the service must refuse it rather than replay or charge
        again."""
        data = self.data
        key, currency, card, customer = (
            data.idempotency_key(),
            data.currency(),
            data.good_card(),
            data.customer(),
        )
        amount = data.amount_minor(currency)
        payment = {
            "card": card,
            "customer": customer,
            "currency": currency,
            "amount": amount,
            "key": key,
            "metadata": self.metadata(run, probe="key reuse"),
        }
        answer = self.api.pay("error_probes: key reuse: first use", **payment)
        run.attempts += answer.attempts
        run.payments += 1
        if answer.kind != "paid":
            # nothing to reuse: a reuse could pay a new, unbooked payment
            return _not_paid("key reuse: first use", answer)
        replay = self.api.pay("error_probes: key reuse: replay", **payment)
        if replay.duplicate_charge:
            # the client booked nothing new and failed the request
            run.duplicate_charges += 1
            return f"key reuse: replay: {DUPLICATE_CHARGE}"
        if replay.kind != "paid":
            return _not_paid("key reuse: replay", replay)
        other_amount = amount + 1 if amount < MAX_AMOUNT_MINOR else amount - 1
        other = _pay_json(other_amount, currency, card, customer)
        return self._expect(
            "key reuse with another body",
            422,
            "idempotency_key_reused",
            body=other,
            headers={**JSON_HEADERS, "Idempotency-Key": key},
        )

    def report_auth(self, run):
        body = json.dumps({})
        token = self.api.token or ""
        problems = [
            self._expect(
                "report without token",
                401,
                "missing_token",
                raw=body,
                headers=JSON_HEADERS,
                path=REPORT_PATH,
            ),
            self._expect(
                "report with wrong token",
                403,
                "invalid_token",
                raw=body,
                path=REPORT_PATH,
                headers={
                    **JSON_HEADERS,
                    "Authorization": "Bearer wrong-" + uuid.uuid4().hex[:8],
                },
            ),
            self._expect(
                "report with bad range",
                400,
                "invalid_range",
                raw=json.dumps(
                    {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
                ),
                path=REPORT_PATH,
                headers={**JSON_HEADERS, "Authorization": f"Bearer {token}"},
            ),
        ]
        return _first(problems)
