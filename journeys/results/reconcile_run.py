"""``--reconcile-run``: at the end of a run the service's own report over the run's window must
hold the ledger: every payment it confirmed, plus at most the ones whose fate was unknown.

This catches what no single answer shows: a service that charges again when a key is resent after
a lost answer (the client never saw the first payment's id), one that loses payments it
confirmed, or reports that leave payments out. One ``generate-report {"from": <test start>}``
after the users have stopped; the ``books`` check joins the SLO verdict (failing: exit 1).

Opt-in: every succeeded payment the service took in the window counts, so other traffic to the
same service would look like extra charges. The service's clock need not agree with this
machine's: the report's ``generated_at`` bounds how far off it is, and when it is off the report
is asked again over the window moved to the service's clock (``report_of_the_run``); payments
read as lost are judged on a report from the window's whole second (``_judged``: a service may
stamp whole seconds). A lost worker's unreported payments and the previous web UI test's
payments in flight are allowed for.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import math
import re
import time

import gevent
from locust.runners import STATE_STOPPED

from journeys.report_shape import report_shape_problem
from journeys.results import cut_short, distributed, ledger
from journeys.results.slo import Check
from journeys.retry_after import RETRY_AFTER_CAP_S, retry_after_s
from journeys.service_http import (
    REPORT_READ_BYTES,
    TOKEN_ENV,
    error_code,
    internal_token,
    no_answer,
    post_report,
    report_url,
)
from journeys.wording import counted

log = logging.getLogger(__name__)

OPTION = "reconcile_run"
ATTEMPTS = 4
#: A fraction of a second in an ISO 8601 time (``10:00:00.123`` or ``10:00:00,123``).
_FRACTION = re.compile(r"\d[.,]\d")
#: Seconds per try at least (``--request-timeout`` when longer): a report over a long run is slow.
TIMEOUT_S = 30.0


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


class StopWaiting(Exception):
    """Thrown into the greenlet waiting for the report when the run is asked to stop again."""


#: The greenlet waiting for the end-of-run report, and whether a second stop came.
_wait: dict = {"greenlet": None, "stopped": ""}


def stop_waiting(why: str) -> None:
    """A second stop (``why``: SIGTERM, or Ctrl-C after one) while the end of the run is at
    work: give up the report, now or before it is asked, so the reports are written and the
    process exits."""
    _wait["stopped"] = why
    waiting = _wait["greenlet"]
    if waiting is not None:
        gevent.get_hub().loop.run_callback(_throw_if_still_waiting, waiting)


def _throw_if_still_waiting(waiting) -> None:
    if _wait["greenlet"] is waiting:
        waiting.throw(StopWaiting)


def check(environment) -> Check | None:
    """The ``books`` check of a run with ``--reconcile-run``, else None. Call it at quitting,
    after the users have stopped (the master: after the workers' last reports)."""
    options = environment.parsed_options
    started = cut_short.started_at()
    if not wanted(options) or started is None:
        return None
    if _wait["stopped"]:
        return _not_checked(f"{_wait['stopped']} before it was asked")
    timeout = max(TIMEOUT_S, getattr(options, "request_timeout", 0) or 0)
    log.info(
        "--reconcile-run: asking %s for the run's payments (up to %g s per try; Ctrl-C "
        "or SIGTERM skips it)",
        report_url(environment.host or ""),
        timeout,
    )
    allowed = _with_carried_unknowns(ledger.entries, ledger.carried)
    lost = distributed.lost_workers(environment)
    token = internal_token()
    _wait["greenlet"] = gevent.getcurrent()
    try:
        report, shift = report_of_the_run(environment.host, token, started, timeout)
        totals, problems = _judged(
            environment.host, token, started + shift, report, allowed, not lost, timeout
        )
    except NoReport as exc:
        return _books(
            False, "no report", f"no report of the run from the service: {exc}"
        )
    except KeyboardInterrupt:  # a second Ctrl-C: the reports are still written
        return _not_checked("Ctrl-C while waiting for it")
    except StopWaiting:
        return _not_checked(f"{_wait['stopped']} while waiting for it")
    finally:
        _wait["greenlet"] = None
    held = sum(t["count"] for t in totals.values())
    notes = ""
    if shift:
        side = "ahead of" if shift > 0 else "behind"
        notes += (
            f"; the service's clock is {abs(shift):.2f} s {side} this machine's: the window "
            f"was moved by {shift:+.2f} s"
        )
    if lost:
        notes += (
            f"; more payments than confirmed not judged: worker {', '.join(lost)} was lost "
            "with payments it had not reported"
        )
    if problems:
        return _books(False, counted(held, "payment"), "; ".join(problems) + notes)
    confirmed = sum(e[0] for e in allowed.values())
    unknown = sum(e[2] for e in allowed.values())
    if lost:  # more than confirmed and unknown is possible here: say how many in all
        also = f" ({held} in all)"
    elif unknown:
        also = f" and {held - confirmed} of the {unknown} whose fate was unknown"
    else:
        also = ""
    return _books(
        True,
        counted(held, "payment"),
        f"the service's report of the run holds the {confirmed} payments confirmed to the "
        f"generator{also}{notes}",
    )


#: The web UI's books check: the test it is for (its start) and the greenlet asking for it.
_live: dict = {}

#: How long a web UI request waits for the books check of a test that has just stopped:
#: Locust's page polls no more once the test has stopped, so the answer it gets then is the
#: SLO tab it shows (a reload or a download asks again).
ANSWER_WAIT_S = 5.0


def check_if_stopped(environment) -> Check | None:
    """``check`` for the web UI's SLO tab once a test has stopped: asked once per test, in the
    background; a request waits up to ``ANSWER_WAIT_S`` for it (None until the answer is in).
    The end of the run asks again: workers' last reports may still arrive after a stop."""
    runner = environment.runner
    started = cut_short.started_at()
    if not wanted(environment.parsed_options) or started is None:
        return None
    if runner is None or runner.state != STATE_STOPPED:
        return None
    if _live.get("started") != started:
        _live.update(started=started, asking=gevent.spawn(check, environment))
    asking = _live["asking"]
    asking.join(timeout=ANSWER_WAIT_S)
    return asking.value if asking.ready() else None


def _with_carried_unknowns(entries: dict, carried: dict) -> dict[str, list[int]]:
    """The ledger with the previous test's unknown payments allowed too: a web UI test started
    right after a stop may see requests of the stopped one land in its window."""
    allowed = {c: list(e) for c, e in entries.items()}
    for currency, (count, amount) in carried.items():
        entry = allowed.setdefault(currency, [0, 0, 0, 0])
        entry[2] += count
        entry[3] += amount
    return allowed


def _not_checked(why: str) -> Check:
    log.warning("--reconcile-run: not waiting for the report of the run (%s)", why)
    return _books(False, "not checked", f"no report of the run: {why}")


def _books(passed: bool, actual: str, message: str) -> Check:
    return Check("run", "books", "the ledger", actual, passed, f"{message} (run)")


def _judged(host, token, since, report, allowed, judge_extra, timeout):
    """(totals, problems) of the report over the window from ``since``. When payments read as
    lost, a report from the whole second ``since`` falls in judges the missing ones: a service
    may stamp payments in whole seconds (``created`` is unix seconds), so one made at
    10:00:00.6 in a window from 10:00:00.5 is stamped before it. Extra payments are judged on
    the window itself (the whole second may hold an earlier run's last payments)."""
    totals = report["totals"]
    problems = compare(totals, allowed, judge_extra)
    if not problems or since == math.floor(since):
        return totals, problems
    whole, _ = _ask(host, token, math.floor(since), timeout)
    return whole["totals"], compare(totals, allowed, judge_extra, whole["totals"])


def compare(
    totals: dict,
    entries: dict[str, list[int]],
    judge_extra: bool = True,
    from_second: dict | None = None,
) -> list[str]:
    """What in the report's ``totals`` the ledger's ``entries`` cannot explain, per currency
    (``judge_extra=False``: only payments missing, e.g. when a lost worker's are unreported;
    ``from_second``: the totals of a report from the window's whole second, which judge the
    payments missing)."""
    problems = []
    none = {"count": 0, "amount": 0}
    for currency in sorted(set(totals) | set(entries) | set(from_second or {})):
        paid, paid_amount, unknown, unknown_amount = entries.get(currency, (0, 0, 0, 0))
        total = totals.get(currency, none)
        count, amount = total["count"], total["amount"]
        least = (totals if from_second is None else from_second).get(currency, none)
        if least["count"] < paid:
            problems.append(
                f"{currency}: the service holds {counted(least['count'], 'payment')}, "
                f"{paid - least['count']} fewer than the {paid} confirmed to the generator "
                "(lost payments)"
            )
        elif not judge_extra:
            continue
        elif count > paid + unknown:
            of = f" and the {unknown} whose fate was unknown" if unknown else ""
            never = (
                " (none were paid in it here: other traffic?)"
                if not paid + unknown
                else ""
            )
            holds = f"{currency}: the service holds {counted(count, 'payment')}"
            problems.append(
                f"{holds}, {count - paid - unknown} more than the {paid} confirmed to the "
                f"generator{of} (double charges, or other traffic){never}"
            )
        elif not (
            paid_amount <= least["amount"] and amount <= paid_amount + unknown_amount
        ):
            expected = f"{paid_amount}" + (
                f" to {paid_amount + unknown_amount}" if unknown_amount else ""
            )
            held = least["amount"] if least["amount"] < paid_amount else amount
            problems.append(
                f"{currency}: the service holds {held} in minor units, expected {expected}"
            )
    return problems


def report_of_the_run(
    host: str, token: str, started: float, timeout: float = TIMEOUT_S
) -> tuple[dict, float]:
    """The report from ``started`` (this machine's clock) on, and by how much its window was
    moved to the service's clock (0: the clocks agree).

    The service stamped ``generated_at`` between our send and our receipt, so its clock is
    between ``generated_at - received`` and ``generated_at - sent`` ahead of ours. When 0 is in
    that range the clocks may agree; otherwise the window starts at the earliest the service's
    clock can put our start, so none of the run's payments falls before it (a slow report
    widens the range, it does not move the window).
    """
    report, bounds = _ask(host, token, started, timeout)
    if bounds is None or bounds[0] <= 0 <= bounds[1]:
        return report, 0.0
    report, _ = _ask(host, token, started + bounds[0], timeout)
    return report, bounds[0]


def _ask(
    host: str, token: str, since: float, timeout: float
) -> tuple[dict, tuple[float, float] | None]:
    """One report from ``since`` on, resent on 429 (after its ``Retry-After``), 5xx or a
    refused connection (the service may be the one under faults) but not after a timeout (a
    hung endpoint would only hang again), with the bounds of the service clock's offset."""
    since_iso = dt.datetime.fromtimestamp(since, dt.UTC).isoformat()
    problem = ""
    wait_s = None
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(0.5 * 2**attempt if wait_s is None else wait_s)
        sent = time.time()
        wait_s = None
        try:
            status, body, headers = post_report(
                host, token, {"from": since_iso}, timeout, REPORT_READ_BYTES
            )
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, TimeoutError) or isinstance(
                getattr(exc, "reason", None), TimeoutError
            ):
                raise NoReport(f"no answer within {timeout:g} s") from None
            problem = f"no answer ({no_answer(exc)})"
            continue
        received = time.time()
        if status == 429:
            wait_s = retry_after_s(
                headers.get("Retry-After"), RETRY_AFTER_CAP_S, headers.get("Date")
            )
        if status == 429 or status >= 500:
            problem = f"{status} {error_code(body)}"
            continue
        if status in (401, 403):
            raise NoReport(
                f"{status} {error_code(body)}: set {TOKEN_ENV} to the service's internal token"
            )
        if status < 400 and status != 200:  # no error, so no error code to name
            raise NoReport(f"expected 200, got {status}")
        if status != 200:
            raise NoReport(f"{status} {error_code(body)}")
        if len(body) >= REPORT_READ_BYTES:
            raise NoReport(f"the report is over {REPORT_READ_BYTES >> 20} MiB")
        try:
            report = json.loads(body)
        # RecursionError: nested too deep to parse, no report either
        except (ValueError, RecursionError):
            raise NoReport("the answer is not JSON") from None
        shape = report_shape_problem(report)
        if shape:
            raise NoReport(f"the report breaks the contract: {shape}")
        return report, _offset_bounds(report.get("generated_at"), sent, received)
    raise NoReport(f"{problem}, {ATTEMPTS} times")


def _offset_bounds(
    generated_at, sent: float, received: float
) -> tuple[float, float] | None:
    """(lo, hi) seconds the service's clock is ahead of ours; None when unreadable.

    A ``generated_at`` in whole seconds (``...T10:00:00Z``, as valid as one with a fraction)
    was read from the service's clock up to 1 s after the moment it names."""
    try:  # RFC 3339 allows a lower-case "t" and "z", which Python does not read
        moment = dt.datetime.fromisoformat(generated_at.upper())
    except (AttributeError, TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    resolution = 0.0 if _FRACTION.search(generated_at) else 1.0
    return moment.timestamp() - received, moment.timestamp() + resolution - sent
