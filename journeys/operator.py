"""Operator batch then report: pay a batch, ask for its report, reconcile it with the ledger.

    think → start batch → pay batch_size payments (ledger: paid count/amount per currency, declines)
          → POST /internal/generate-report {batch_id} → report == ledger? ▶ reconciled | mismatch

The report must hold the ledger exactly: count and amount per currency, and its succeeded and
declined counts.

A payment neither paid nor declined stops the batch, and the journey fails rather than reconcile
against a guess, naming which it was: refused (``batch payment: 422 expired_card``, nothing
stored) or no readable answer after every resend with the same key (``batch payment: no answer
after every resend (503 service_unavailable)``: the payment may exist, the ledger books it unknown).
So does a decline its card should not bring, as in a checkout (``batch payment: unexpected
decline ...``): the service breaks the contract, whatever the report then says.
"""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from locust import tag, task

from journeys.base import Journey, JourneyRun
from journeys.client import DUPLICATE_CHARGE, not_paid, unexpected_decline
from journeys.scrub import scrub, secrets_from_env
from payment_contract import format_minor

log = logging.getLogger(__name__)


class Difference(NamedTuple):
    """One way a report differs from the ledger: ``what`` (a currency's count and amount, or
    the report's count of ``succeeded`` or ``declined`` payments), whether the report holds
    ``more`` than was paid (double charges, someone else's payments) or less (lost payments,
    a report that leaves some out), and the ``figures`` of both."""

    what: str
    more: bool
    figures: str

    def __str__(self) -> str:
        return f"{self.what}: {self.figures}"


@dataclass
class Ledger:
    """What the operator paid in one batch, as the report should show it."""

    totals: dict[str, list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0])
    )
    declined: int = 0

    def paid(self, currency: str, amount: int) -> None:
        entry = self.totals[currency]
        entry[0] += 1
        entry[1] += amount

    def differences(self, report: dict) -> list[Difference]:
        """What differs between the ledger and a report (empty when they agree)."""
        problems = []
        reported = report.get("totals") or {}
        for currency in sorted(set(self.totals) | set(reported)):
            count, amount = self.totals.get(currency, (0, 0))
            r = reported.get(currency) or {}
            r_count, r_amount = r.get("count", 0), r.get("amount", 0)
            if (count, amount) != (r_count, r_amount):
                problems.append(
                    Difference(
                        currency,
                        _more((r_count, r_amount), (count, amount)),
                        f"paid {count} / {_money(amount, currency)}, "
                        f"report {r_count} / {_money(r_amount, currency)}",
                    )
                )
        # the report's own count of succeeded payments too: a report whose totals are right
        # but whose count is not does not hold what was paid
        counts = report.get("payments") or {}
        paid = sum(count for count, _ in self.totals.values())
        for what, ours in (("succeeded", paid), ("declined", self.declined)):
            theirs = counts.get(what, 0)
            if theirs != ours:
                problems.append(
                    Difference(
                        what, _more(theirs, ours), f"paid {ours}, report {theirs}"
                    )
                )
        return problems


def _more(reported, paid) -> bool:
    try:
        return reported > paid
    except TypeError:  # a report's figure that is no number: neither more nor less
        return False


def mismatch_message(problems: list[Difference]) -> str:
    """The journey's failure: what differs, grouped by which way, without the figures (so
    Locust's failures table keeps one row per kind of mismatch, not one per batch)."""
    ways = (
        ("more in the report", [p.what for p in problems if p.more]),
        ("less in the report", [p.what for p in problems if not p.more]),
    )
    differ = "; ".join(f"{way}: {', '.join(whats)}" for way, whats in ways if whats)
    return f"the batch report differs from what was paid ({differ})"


#: Mismatches logged with their figures (each also fails its journey, which counts them all).
MISMATCHES_LOGGED = 20
_mismatches_logged = itertools.count()


def _log_mismatch(batch_id: str, figures: str) -> None:
    """The figures of a mismatch, for the first few: the failure message names only what differs,
    so Locust's failures table keeps one row per kind of mismatch, not one per batch."""
    n = next(_mismatches_logged)
    if n < MISMATCHES_LOGGED:
        # the report's figures are the service's: a count may be any whole number
        log.warning(
            "mismatch in batch %s: %s", batch_id, scrub(figures, secrets_from_env())
        )
    elif n == MISMATCHES_LOGGED:
        log.warning(
            "more batch mismatches: their figures are not logged "
            "(with tracing on, each batch's journey span has them in its mismatch tag)"
        )


def _money(amount, currency: str) -> str:
    try:
        return format_minor(int(amount), currency)
    except (KeyError, TypeError, ValueError):
        return str(amount)


@tag("batch_report", "operator")
class BatchReportJourney(Journey):
    """An operator pays a batch of payments and reconciles the batch's report."""

    journey_name = "batch_report"

    @task
    def batch_and_report(self) -> None:
        self.think()  # not part of the journey's duration
        with self.start(self.journey_name) as run:
            batch_id = self.data.batch_id()
            run.tag("batch_id", batch_id)
            ledger = Ledger()
            failure = self.pay_batch(run, batch_id, ledger)
            if failure:
                run.finish("failed", failure)
            else:
                run.finish(*self.reconcile(run, batch_id, ledger))
        self.done()

    def pay_batch(self, run: JourneyRun, batch_id: str, ledger: Ledger) -> str:
        """Pay ``batch_size`` payments into ``ledger``; why the batch failed ("" when it did not)."""
        data = self.data
        metadata = self.metadata(
            run,
            batch_id=batch_id,
            operator_id=self.user.operator_id,
        )
        for _ in range(self.persona.batch_size):
            currency = data.currency()
            amount, card = data.amount_minor(currency), data.first_card()
            answer = self.api.pay(
                "batch_report: pay",
                card=card,
                customer=data.customer(),
                amount=amount,
                currency=currency,
                key=data.idempotency_key(),
                metadata=metadata,
            )
            run.payments += 1
            run.attempts += answer.attempts
            if answer.duplicate_charge:
                run.duplicate_charges += 1
                return DUPLICATE_CHARGE
            if answer.kind == "paid":
                ledger.paid(currency, amount)
            elif answer.kind == "declined":
                run.declined_payments += 1
                ledger.declined += 1
                if surprise := unexpected_decline(answer, card):
                    return f"batch payment: {surprise}"
            else:
                run.unsettled_payments += 1
                return f"batch payment: {not_paid(answer)}"
        return ""

    def reconcile(
        self, run: JourneyRun, batch_id: str, ledger: Ledger
    ) -> tuple[str, str]:
        """Ask for the batch's report and hold it against ``ledger``: the journey's outcome."""
        report = self.api.generate_report(
            "batch_report: report", {"batch_id": batch_id}
        )
        if report.report is None:
            return "failed", f"no report: {report.detail.removeprefix('report: ')}"
        problems = ledger.differences(report.report)
        if problems:
            figures = "; ".join(map(str, problems))
            run.tag("mismatch", figures)
            _log_mismatch(batch_id, figures)
            return "mismatch", mismatch_message(problems)
        return "reconciled", ""
