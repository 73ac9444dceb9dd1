"""``--reconcile-run``: at the end of a run the service's own report over the run's window must
hold the ledger: every payment it confirmed, plus at most the ones whose fate was unknown.

This catches what no single answer shows: a service that charges again when a key is resent after
a lost answer (the client never saw the first payment's id), one that loses payments it
confirmed, or reports that leave payments out. One ``generate-report {"from": <test start>}``
after the users have stopped; the ``books`` check joins the SLO verdict (failing: exit 1).

Opt-in: every succeeded payment the service took in the window counts, so other traffic to the
same service would look like extra charges. The service's clock need not agree with this
machine's: the report's ``generated_at`` says how far off it is, and when that is more than a
second the report is asked again over the window moved by as much.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import time

from journeys.client import report_shape_problem
from journeys.preflight import TOKEN_ENV, error_code, post_report
from journeys.results import cut_short, ledger
from journeys.results.slo import Check

OPTION = "reconcile_run"
#: Clock offsets up to this are taken as the same clock (the report's round trip blurs them).
CLOCK_TOLERANCE_S = 1.0
ATTEMPTS = 4
TIMEOUT_S = 10.0


def add_option(group) -> None:
    group.add_argument(
        "--reconcile-run",
        action="store_true",
        default=False,
        env_var="LOCUST_RECONCILE_RUN",
        help="At the end, ask the service's report for the run's time range and fail the "
        "verdict unless it holds exactly the payments the generator saw confirmed (plus at most "
        "the unknown ones): catches double charges on resends and lost payments. Only when this "
        "run is the service's only traffic. Needs PAYMENT_INTERNAL_TOKEN.",
    )


def wanted(options) -> bool:
    return bool(getattr(options, OPTION, False))


class NoReport(Exception):
    """The service gave no usable report (the message says why)."""


def check(environment) -> Check | None:
    """The ``books`` check of a run with ``--reconcile-run``, else None. Call it at quitting,
    after the users have stopped (the master: after the workers' last reports)."""
    started = cut_short.started_at()
    if not wanted(environment.parsed_options) or started is None:
        return None
    try:
        report, offset = report_of_the_run(
            environment.host, os.environ.get(TOKEN_ENV, ""), started
        )
    except NoReport as exc:
        return _books(
            False, "no report", f"no report of the run from the service: {exc}"
        )
    totals = report["totals"]
    problems = compare(totals, ledger.entries)
    held = sum(t["count"] for t in totals.values())
    moved = (
        f"; the window was moved by {offset:+.1f} s, the service's clock offset"
        if abs(offset) > CLOCK_TOLERANCE_S
        else ""
    )
    if problems:
        return _books(False, _payments(held), "; ".join(problems) + moved)
    confirmed = sum(e[0] for e in ledger.entries.values())
    unknown = sum(e[2] for e in ledger.entries.values())
    also = f" and {held - confirmed} of its {unknown} unknown ones" if unknown else ""
    return _books(
        True,
        _payments(held),
        f"the service's report of the run holds the {confirmed} payments it confirmed{also}"
        + moved,
    )


def _books(passed: bool, actual: str, message: str) -> Check:
    return Check("run", "books", "the ledger", actual, passed, f"{message} (run)")


def compare(totals: dict, entries: dict[str, list[int]]) -> list[str]:
    """What in the report's ``totals`` the ledger's ``entries`` cannot explain, per currency."""
    problems = []
    for currency in sorted(set(totals) | set(entries)):
        paid, paid_amount, unknown, unknown_amount = entries.get(currency, (0, 0, 0, 0))
        total = totals.get(currency, {"count": 0, "amount": 0})
        count, amount = total["count"], total["amount"]
        if count < paid:
            problems.append(
                f"{currency}: the service holds {_payments(count)}, {paid - count} fewer than "
                f"the {paid} it confirmed (lost payments)"
            )
        elif count > paid + unknown:
            of = f" and the {unknown} unknown" if unknown else ""
            problems.append(
                f"{currency}: the service holds {_payments(count)}, {count - paid - unknown} more "
                f"than the {paid} it confirmed{of} (double charges, or other traffic)"
            )
        elif not paid_amount <= amount <= paid_amount + unknown_amount:
            expected = f"{paid_amount}" + (
                f" to {paid_amount + unknown_amount}" if unknown_amount else ""
            )
            problems.append(
                f"{currency}: the service holds {amount} in minor units, expected {expected}"
            )
    return problems


def _payments(count: int) -> str:
    return f"{count} payment" + ("" if count == 1 else "s")


def report_of_the_run(host: str, token: str, started: float) -> tuple[dict, float]:
    """The report from ``started`` (this machine's clock) on, and the service clock's offset."""
    report, offset = _ask(host, token, started)
    if abs(offset) > CLOCK_TOLERANCE_S:
        report, _ = _ask(host, token, started + offset)
    return report, offset


def _ask(host: str, token: str, since: float) -> tuple[dict, float]:
    """One report from ``since`` on, resent on 429, 5xx or no answer (the service may be the
    one under faults), with how far the service's clock is ahead of this machine's."""
    since_iso = dt.datetime.fromtimestamp(since, dt.UTC).isoformat()
    problem = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(0.5 * 2**attempt)
        sent = time.time()
        try:
            status, body = post_report(host, token, {"from": since_iso}, TIMEOUT_S)
        except (OSError, http.client.HTTPException) as exc:
            problem = f"no answer ({exc})"
            continue
        if status == 429 or status >= 500:
            problem = f"{status} {error_code(body)}"
            continue
        if status in (401, 403):
            raise NoReport(
                f"{status} {error_code(body)}: set {TOKEN_ENV} to the service's internal token"
            )
        if status != 200:
            raise NoReport(f"{status} {error_code(body)}")
        try:
            report = json.loads(body)
        except ValueError:
            raise NoReport("the answer is not JSON") from None
        shape = report_shape_problem(report)
        if shape:
            raise NoReport(f"the report breaks the contract: {shape}")
        return report, _offset(report.get("generated_at"), (sent + time.time()) / 2)
    raise NoReport(f"{problem}, {ATTEMPTS} times")


def _offset(generated_at, local: float) -> float:
    """Seconds the service's clock is ahead of ours (0 when ``generated_at`` is unreadable)."""
    try:
        moment = dt.datetime.fromisoformat(generated_at)
    except (TypeError, ValueError):
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp() - local
