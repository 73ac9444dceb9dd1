"""Service level objectives: the targets (command-line options) and the verdict of a run.

    locust ... --slo-p50-ms 100 --slo-p95-ms 500 --slo-error-rate 0.01 [--slo-journey-p95-ms 2000]

Latency and error-rate targets apply to the HTTP requests overall, to each journey's requests
(Locust entries named ``"<journey>: ..."``) and to the phases a load profile is about (a spike's
peak and recovery, a soak's last window: ``journeys.profiles.verdict``, through ``more_checks``); the ``journey`` timing
entries are not requests and stay out of them. A journey's own figures must hold too: failed journeys (a reconciliation mismatch
included, as in Locust's journey row) count toward a journey error rate judged against
``--slo-error-rate``; any duplicate charge or reconciliation mismatch
fails outright; each persona's observed decline rate must lie within the binomial interval
``p ± 5·sqrt(p(1-p)/n)`` around its configured rate (judged from 30 payments on). An exception
raised in the generator itself (Locust's Exceptions table: a bug in a locustfile or in ours) fails
the run too, however rare: its results cannot be trusted. Every check
reads like ``p95 612 ms > 500 ms (checkout)``. The verdict decides the exit code (0 pass, 1 fail).
``--baseline``'s comparison with an earlier run (``results/baseline.py``, scope ``baseline``)
joins the verdict in ``snapshot.take``, with the checks the end of the run adds.

``--slo-targets PATH`` (``results/slo_targets_file.py``) gives some requests or journeys targets
of their own: a request row's checks have the scope ``request <name>`` (``row_checks``), a
journey row's targets replace the global ones in its journey's checks. A request whose row sets
a latency target leaves the latency (not the error rate) of ``http`` and of its journey: its
row judges it, so a report slow by design does not fail the overall p95 too. A row of a
journey this run leaves out (``--tags``, the classes picked: ``results/left_out.py``) is not run
(``Check.not_run``): it holds, so one targets file serves every part of the mix.
"""

from __future__ import annotations

import difflib
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from locust import events
from locust.runners import WorkerRunner

from journeys import journey_rate
from journeys.events import JOURNEYS
from journeys.option_sources import file_set_by, source_of
from journeys.persona_csv import PersonaFileError
from journeys.results import nothing_ran
from journeys.results.collector import JOURNEY_REQUEST_TYPE
from journeys.results.distributed import (
    Departure,
    left_workers,
    lost_workers,
    run_length_s,
    what_became_of_their_users,
)
from journeys.results.left_out import why_left_out
from journeys.results.missing_workers import missing_workers, missing_workers_message
from journeys.results.slo_targets_file import RowTarget
from journeys.results.slo_targets_file import read as read_row_targets
from journeys.results.stats import Histogram, JourneyBook, JourneyCounters
from journeys.results.tables import GOOD_CARD_JOURNEYS, personas_of
from journeys.scrub import scrub, secrets_from_env
from journeys.setup_stop import stop
from journeys.wording import counted, plain, share_decimals

log = logging.getLogger(__name__)

#: Observed decline rates are judged only from this many payments per persona on.
MIN_PAYMENTS_FOR_DECLINE_CHECK = 30
#: Width of the decline-rate interval in standard deviations. The draws are the generator's own
#: dice, so a narrow interval fails honest runs by chance (3σ did, in about 1 run in 400 per
#: persona); 5σ (a false alarm in ~1.7 million) still catches a generator or service that declines
#: the wrong share.
DECLINE_SIGMAS = 5.0
HTTP_SCOPE = "http"
#: ``--journey-rate``: the share of the starts asked for that may be dropped.
MAX_DROPPED_SHARE = 0.01
#: The check that fails a run without a single HTTP request.
NO_REQUESTS_METRIC = "requests"


#: The options that set the targets (their ``parsed_options`` names, and the start form's).
SLO_OPTIONS = ("slo_p50_ms", "slo_p95_ms", "slo_error_rate", "slo_journey_p95_ms")


class SloConfigError(ValueError):
    """An SLO option has a value that cannot be a target."""


@events.init_command_line_parser.add_listener
def add_slo_options(parser) -> None:
    group = parser.add_argument_group("service level objectives (decide the exit code)")
    # short helps: the web UI's start form shows "Slo P9 5Ms (<help>)" as a field's label and
    # cuts it at its width (~125 characters, ~85 in an empty field), default and all
    group.add_argument(
        "--slo-p50-ms",
        default="100",
        env_var="LOCUST_SLO_P50_MS",
        help="p50 of HTTP requests below this many ms, overall, per journey and phase (default 100)",
    )
    group.add_argument(
        "--slo-p95-ms",
        default="500",
        env_var="LOCUST_SLO_P95_MS",
        help="p95 of HTTP requests below this many ms, overall, per journey and phase (default 500)",
    )
    group.add_argument(
        "--slo-error-rate",
        default="0.01",
        env_var="LOCUST_SLO_ERROR_RATE",
        help="Share of failed requests, and of failed journeys, allowed: 0..1 (default 0.01)",
    )
    group.add_argument(
        "--slo-targets",
        default="",
        metavar="PATH",
        env_var="LOCUST_SLO_TARGETS",
        help="CSV of targets of their own for some requests (POST checkout: pay) or journeys: "
        "columns name, p50_ms, p95_ms, error_rate; an empty cell keeps the global target "
        "(default: none; see slo-targets.example.csv).",
    )
    group.add_argument(
        "--slo-journey-p95-ms",
        default="",
        env_var="LOCUST_SLO_JOURNEY_P95_MS",
        help="p95 of whole journeys below this many ms; empty: not checked",
    )
    # fields of the web UI's start form ("Custom parameters"), set per test: Locust shows a
    # plugin's option there only when added with its parser's own add_argument, not a group's
    for action in parser._actions:
        if action.dest in SLO_OPTIONS:
            action.include_in_web_ui = True


def _fix(raw, optional: bool, share_of: float | None) -> str:
    """What to write instead of a target that is not a number, when it can be told: how to
    leave an optional target out (``off``), a share (``share_of``) given as a percentage."""
    text = str(raw).strip()
    if optional:
        return ": leave it unset or empty to judge no journey durations"
    if share_of is None:
        return ""
    try:
        share = float(text.removesuffix("%")) / 100 if text.endswith("%") else None
    except ValueError:
        share = None
    return f": write {share:g} for {text}" if share is not None else ""


@dataclass(frozen=True)
class SloTargets:
    p50_ms: float = 100.0
    p95_ms: float = 500.0
    error_rate: float = 0.01
    journey_p95_ms: float | None = None
    #: the ``--slo-targets`` rows, read at start (``read_rows_at_start``)
    rows: tuple[RowTarget, ...] = ()

    @classmethod
    def from_options(cls, options, *, name_sources: bool = True) -> SloTargets:
        """Targets from parsed options; SloConfigError names every bad value at once, and where
        it was set (``name_sources``: the environment or a config file, not the web UI's form)."""
        problems = []

        def where_set(attr: str) -> str | None:
            return source_of(attr) if name_sources else None

        def number(flag: str, attr: str, default, *, optional=False, upper=None):
            raw = getattr(options, attr, None) if options is not None else None
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                return None if optional else default
            source = where_set(attr)
            where = f" (set by {source})" if source else ""
            try:
                value = float(raw)
            except (TypeError, ValueError):
                problems.append(
                    f"{flag} must be a number, got {raw!r}{_fix(raw, optional, upper)}{where}"
                )
                return default
            if upper is not None and not 0 <= value <= upper:
                problems.append(
                    f"{flag} must be a fraction between 0 and {upper:g} (0.01 means 1%), got "
                    f"{raw!r}{where}"
                )
            elif upper is None and not (math.isfinite(value) and value > 0):
                problems.append(f"{flag} must be a positive number, got {raw!r}{where}")
            return value

        targets = cls(
            p50_ms=number("--slo-p50-ms", "slo_p50_ms", cls.p50_ms),
            p95_ms=number("--slo-p95-ms", "slo_p95_ms", cls.p95_ms),
            error_rate=number(
                "--slo-error-rate", "slo_error_rate", cls.error_rate, upper=1.0
            ),
            journey_p95_ms=number(
                "--slo-journey-p95-ms", "slo_journey_p95_ms", None, optional=True
            ),
            rows=tuple(_rows),
        )
        # a p50 target set above the p95 one (the default 100 ms under a --slo-p95-ms 50 is
        # only redundant: it is not held against it)
        if not problems and cls.p50_ms != targets.p50_ms > targets.p95_ms:
            sources = [where_set(a) for a in ("slo_p50_ms", "slo_p95_ms")]
            where = "; ".join(f"set by {s}" for s in sources if s)
            problems.append(
                f"--slo-p50-ms {targets.p50_ms:g} is above --slo-p95-ms {targets.p95_ms:g}"
                + (f" ({where})" if where else "")
                + ": set the p50 target at or below the p95 one (the median is never slower "
                "than the 95th percentile, so this p50 target could never fail; swapped?)"
            )
        if not problems:
            path = getattr(options, "slo_targets", None) or "--slo-targets"
            problems += _rows_p50_above_p95(path, targets)
        if problems:
            message = (
                "Invalid SLO target: "
                + "; ".join(problems)
                + ". Response-time targets are milliseconds above 0 (e.g. --slo-p95-ms 500), the error "
                "rate is a fraction from 0 to 1 (e.g. --slo-error-rate 0.01); the same rules apply to "
                "their LOCUST_SLO_* environment variables and the web UI's fields."
            )
            # a value is quoted: the token mapped to the wrong variable by a CI job
            raise SloConfigError(scrub(message, secrets_from_env()))
        return targets

    def describe(self) -> str:
        journey = (
            f"journey p95 < {self.journey_p95_ms:g} ms"
            if self.journey_p95_ms
            else "journey p95 not checked"
        )
        rows = "".join(f"; {row.describe()}" for row in self.rows)
        return (
            f"p50 < {self.p50_ms:g} ms, p95 < {self.p95_ms:g} ms, error rate <= "
            f"{self.error_rate:.{share_decimals(self.error_rate) - 2}%} "
            f"(HTTP overall, per journey and per judged load profile phase); {journey}; no "
            "duplicate charges or reconciliation "
            f"mismatches; decline rate within {DECLINE_SIGMAS:g} sigma of the configured one "
            f"(personas with >= {MIN_PAYMENTS_FOR_DECLINE_CHECK} payments)"
            f"{rows}"
        )

    def for_row(self, row: RowTarget) -> SloTargets:
        """The targets a ``--slo-targets`` row judges against: its own, the global ones in
        its empty cells."""
        return replace(
            self,
            p50_ms=self.p50_ms if row.p50_ms is None else row.p50_ms,
            p95_ms=self.p95_ms if row.p95_ms is None else row.p95_ms,
            error_rate=self.error_rate if row.error_rate is None else row.error_rate,
            rows=(),
        )


@dataclass(frozen=True)
class Check:
    """One judged figure: ``message`` says what and by how much, e.g. ``p95 612 ms > 500 ms (checkout)``.

    ``scope``, ``actual`` and ``message`` are kept scrubbed of card numbers and the token: some
    quote figures the service chose (a report's count of payments) or names the user wrote
    (``--slo-targets``), and every check reaches the terminal, the SLO CSV, the HTML report and
    the web UI."""

    scope: str
    metric: str
    target: str
    actual: str
    passed: bool
    message: str
    #: judged nothing, and so held: an ``--slo-targets`` row of a journey the run leaves out
    #: (``not run: journey 'batch_report' is not in this run (left out by --tags customer)...``)
    not_run: bool = False

    def __post_init__(self) -> None:
        secrets = secrets_from_env()
        object.__setattr__(self, "scope", scrub(self.scope, secrets))
        object.__setattr__(self, "actual", scrub(self.actual, secrets))
        object.__setattr__(self, "message", scrub(self.message, secrets))


@dataclass
class Verdict:
    targets: SloTargets
    checks: list[Check] = field(default_factory=list)
    #: False when there was nothing to judge (``nothing_ran``): its one check says why
    judged: bool = True

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def not_run(self) -> list[Check]:
        """The checks that judged nothing (``Check.not_run``): neither passed nor failed."""
        return [c for c in self.checks if c.not_run]

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def result(self) -> str:
        """``SLO verdict: PASS (14 checks)`` or ``SLO verdict: FAIL (2 of 14 checks failed)``,
        with ``, 1 not run`` after the count when some checks judged nothing (``SLO verdict:
        NOT JUDGED (no test to judge)``: a web UI session with none)."""
        if not self.judged:
            return "SLO verdict: NOT JUDGED (no test to judge)"
        judged = len(self.checks) - len(self.not_run)
        not_run = f", {len(self.not_run)} not run" if self.not_run else ""
        if self.passed:
            return f"SLO verdict: PASS ({judged} checks{not_run})"
        return f"SLO verdict: FAIL ({len(self.failures)} of {judged} checks failed{not_run})"

    def headline(self) -> str:
        if self.passed:
            return self.result()
        return f"{self.result()} - " + "; ".join(c.message for c in self.failures)


CHECK_TITLES = (
    ("result", "Result"),
    ("scope", "Scope"),
    ("metric", "Metric"),
    ("target", "Target"),
    ("actual", "Actual"),
    ("message", "Check"),
)


def verdict_rows(verdict: Verdict, failed_first: bool = False) -> list[dict]:
    """The verdict as a ``run / verdict`` row, then one row per check (keys: CHECK_TITLES, passed)."""
    checks = (
        sorted(verdict.checks, key=lambda c: c.passed)
        if failed_first
        else verdict.checks
    )
    result = "PASS" if verdict.passed else "FAIL" if verdict.judged else "NOT JUDGED"
    overall = {
        "result": result,
        "scope": "run",
        "metric": "verdict",
        "target": "all checks pass",
        "actual": result.lower(),
        "passed": verdict.passed,
        "message": verdict.headline(),
    }
    return [overall] + [{"result": _result(c), **vars(c)} for c in checks]


def _result(check: Check) -> str:
    """A check's ``Result`` cell: ``pass``, ``FAIL`` or ``NOT RUN``."""
    if check.not_run:
        return "NOT RUN"
    return "pass" if check.passed else "FAIL"


@dataclass
class RequestFigures:
    """HTTP requests of one scope with their merged response-time histogram."""

    requests: int = 0
    failures: int = 0
    histogram: Histogram = field(default_factory=Histogram)

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def request_figures(
    request_stats,
    journey: str | None = None,
    only: RowTarget | None = None,
    latency_judged_by: tuple[RowTarget, ...] = (),
) -> RequestFigures:
    """HTTP figures overall (``journey=None``), of one journey's requests (named
    ``"<journey>: ..."``) or of the requests an ``--slo-targets`` row judges (``only``).
    Requests ``latency_judged_by`` a row with a latency target count toward the error rate,
    not the latency: their row judges that (a report slow by design would fail ``/pay``'s)."""
    figures = RequestFigures()
    for entry in request_stats.entries.values():
        if entry.method == JOURNEY_REQUEST_TYPE:
            continue
        if journey is not None and not entry.name.startswith(f"{journey}: "):
            continue
        if only is not None and not only.matches(entry.method, entry.name):
            continue
        figures.requests += entry.num_requests
        figures.failures += entry.num_failures
        if any(r.matches(entry.method, entry.name) for r in latency_judged_by):
            continue
        figures.histogram.merge(
            Histogram(
                Counter(entry.response_times),
                sum(entry.response_times.values()),
                max=entry.max_response_time,
                min=entry.min_response_time or 0.0,
            )
        )
    return figures


def _latency_check(
    scope: str,
    label: str,
    metric: str,
    actual: int,
    target: float,
    where: str | None = None,
) -> Check:
    """``p95 612 ms > 500 ms (checkout, 112 ms over)``: the target is a strict upper bound.
    ``where`` names the scope in the message when its name alone does not say where to look
    (a load profile phase's window: ``spike peak, 4-8 s``)."""
    where = where or scope
    if actual < target:
        message = f"{label} {actual} ms < {target:g} ms ({where})"
    elif actual == target:
        message = f"{label} {actual} ms = {target:g} ms, not below it ({where})"
    else:
        message = f"{label} {actual} ms > {target:g} ms ({where}, {actual - target:g} ms over)"
    return Check(scope, metric, f"< {target:g}", str(actual), actual < target, message)


def request_checks(
    scope: str,
    figures: RequestFigures,
    targets: SloTargets,
    where: str | None = None,
) -> list[Check]:
    """p50, p95 and error rate of ``scope``'s HTTP requests (``where``: see ``_latency_check``);
    the error rate alone when ``--slo-targets`` rows judge the latency of all of them."""
    error_rate = _rate_check(
        scope,
        "error_rate",
        "error rate",
        figures.error_rate,
        targets.error_rate,
        f"{figures.failures} of {figures.requests} requests",
        where,
    )
    if figures.requests and not figures.histogram.count:
        return [error_rate]
    return [
        _latency_check(
            scope,
            "p50",
            "p50_ms",
            figures.histogram.percentile(0.5) or 0,
            targets.p50_ms,
            where,
        ),
        _latency_check(
            scope,
            "p95",
            "p95_ms",
            figures.histogram.percentile(0.95) or 0,
            targets.p95_ms,
            where,
        ),
        error_rate,
    ]


def _rate_check(
    scope: str,
    metric: str,
    label: str,
    rate: float,
    target: float,
    counts: str,
    where: str | None = None,
) -> Check:
    """``error rate 1.20% > 1.00% (checkout, 3 of 250 requests)``: at most ``target``, both
    shown with the digits the target needs (``wording.share_decimals``)."""
    decimals = share_decimals(target)
    ok = rate <= target
    return Check(
        scope,
        metric,
        f"<= {plain(target)}",
        f"{rate:.{decimals}f}",
        ok,
        f"{label} {rate:.{decimals - 2}%} {'<=' if ok else '>'} "
        f"{target:.{decimals - 2}%} ({where or scope}, {counts})",
    )


def _journey_checks(
    journey: str, book: JourneyBook, targets: SloTargets
) -> list[Check]:
    counters = book.total(journey)
    checks = []
    # a mismatch is a failed journey too, as Locust's own journey row counts it (and it also
    # fails the verdict outright below)
    finished, mismatches = counters.finished, counters.outcomes["mismatch"]
    failed = counters.outcomes["failed"] + mismatches
    if finished:
        among = f", {mismatches} of them mismatches" if mismatches else ""
        checks.append(
            _rate_check(
                journey,
                "journey_error_rate",
                "failed journeys",
                failed / finished,
                targets.error_rate,
                f"{failed} of {finished}{among}",
            )
        )
    for metric, count, what in (
        ("duplicate_charges", counters.duplicate_charges, "duplicate charges"),
        ("mismatch", counters.outcomes["mismatch"], "reconciliation mismatches"),
    ):
        if metric == "mismatch" and journey != "batch_report" and not count:
            continue
        checks.append(
            Check(
                journey,
                metric,
                "0",
                str(count),
                count == 0,
                f"{count} {what} ({journey})",
            )
        )
    if targets.journey_p95_ms and counters.durations.count:
        actual = counters.durations.percentile(0.95)
        checks.append(
            _latency_check(
                journey, "journey p95", "journey_p95_ms", actual, targets.journey_p95_ms
            )
        )
    return checks


ROW_SCOPE = "request"


def row_checks(environment, targets: SloTargets) -> list[Check]:
    """The ``--slo-targets`` request rows' own checks (scope ``request <name>``: p50, p95 and
    error rate); a journey row's are its journey's (``evaluate``). A row that judged no
    request fails, naming what was seen: a misspelled name must not pass unnoticed; unless
    its journey is not in this run (``--tags``): then it is not run, and holds."""
    request_stats = environment.runner.stats
    checks = []
    for row in targets.rows:
        figures = request_figures(request_stats, only=row)
        if not figures.requests:
            left_out = _left_out_row_check(row, environment)
            checks.append(left_out or _unseen_row_check(row, request_stats))
        elif not row.journey:
            scope = f"{ROW_SCOPE} {row.name}"
            checks += request_checks(scope, figures, targets.for_row(row), row.name)
    return checks


def _left_out_row_check(row: RowTarget, environment) -> Check | None:
    """``not run: journey 'batch_report' is not in this run (left out by --tags customer)...``:
    a row whose journey the run cannot start (a request row: of the journey its name starts
    with, as every request of ours is named), or None when it can."""
    journey = row.name if row.journey else _journey_of_request(row.name)
    why = journey and why_left_out(journey, environment)
    if not why:
        return None
    what = (
        f"journey {journey!r}"
        if row.journey
        else f"request {row.name!r} of journey {journey!r}"
    )
    scope = row.name if row.journey else f"{ROW_SCOPE} {row.name}"
    message = (
        f"not run: {what} is not in this run ({why}): its --slo-targets row (line "
        f"{row.line}) judged nothing"
    )
    return Check(scope, NO_REQUESTS_METRIC, "> 0", "not run", True, message, True)


def _journey_of_request(name: str) -> str | None:
    """The journey whose requests ``name`` names (``POST batch_report: report``), or None."""
    journey = name.split(" ", 1)[-1].split(": ", 1)[0]
    return journey if journey in JOURNEYS else None


def _unseen_row_check(row: RowTarget, request_stats) -> Check:
    """``no request named 'POST checkout: pya' (--slo-targets line 3): misspelled? ...``."""
    entries = [
        e
        for e in request_stats.entries.values()
        if e.method != JOURNEY_REQUEST_TYPE and e.num_requests
    ]
    if row.journey:
        seen = sorted({e.name.split(": ", 1)[0] for e in entries} & set(JOURNEYS))
        what = (
            f"no request of journey {row.name!r} (--slo-targets line {row.line}): did it "
            "run (its personas' weight, --tags)? journeys seen"
        )
        scope = row.name
    else:
        seen = sorted({f"{e.method} {e.name}" for e in entries})
        journey = row.name.split(" ", 1)[-1].split(": ", 1)[0]
        why = "misspelled?"
        if any(e.name.startswith(f"{journey}: ") for e in entries):
            # the name may be right: a report comes after a batch of payments
            why = f"too short a run for it (its journey {journey} ran), or misspelled?"
        elif journey in JOURNEYS:
            why = (
                f"its journey {journey} sent no request: did it run (its personas' weight, "
                "--tags, a longer run)? Or misspelled?"
            )
        what = (
            f"no request named {row.name!r} (--slo-targets line {row.line}): {why} "
            "names seen"
        )
        scope = f"{ROW_SCOPE} {row.name}"
    close = difflib.get_close_matches(row.name, seen, n=3, cutoff=0.6)
    shown = (close + [name for name in seen if name not in close])[:8]
    more = f", ... ({len(seen)} in all)" if len(seen) > len(shown) else ""
    names = ", ".join(shown) + more if shown else "none"
    return Check(scope, NO_REQUESTS_METRIC, "> 0", "0", False, f"{what}: {names}")


def decline_interval(configured: float, payments: int) -> tuple[float, float]:
    """The ``DECLINE_SIGMAS`` binomial interval around ``configured`` for ``payments`` payments."""
    half = DECLINE_SIGMAS * math.sqrt(configured * (1 - configured) / payments)
    return max(0.0, configured - half), min(1.0, configured + half)


def _decline_checks(book: JourneyBook, personas: dict) -> list[Check]:
    checks = []
    for name in book.personas():
        persona = personas.get(name)
        counters = JourneyCounters()
        for journey in book.journeys():
            if journey not in GOOD_CARD_JOURNEYS:
                counters.merge(book.get(journey, name))
        n = counters.settled_payments
        if (
            persona is None
            or persona.decline_rate is None
            or n < MIN_PAYMENTS_FOR_DECLINE_CHECK
        ):
            continue
        p = float(persona.decline_rate)
        low, high = decline_interval(p, n)
        observed = counters.declined_payments / n
        ok = low - 1e-9 <= observed <= high + 1e-9
        checks.append(
            Check(
                f"persona {name}",
                "decline_rate",
                f"{low:.3f}..{high:.3f}",
                f"{observed:.4f}",
                ok,
                f"decline rate {observed:.3f} {'within' if ok else 'outside'} {low:.3f}..{high:.3f} "
                f"(configured {p:g}, persona {name}, n={n})",
            )
        )
    return checks


def _journey_rate_checks(environment, book: JourneyBook) -> list[Check]:
    """``--journey-rate``: the users kept the pace, dropping at most ``MAX_DROPPED_SHARE`` of
    the starts it asked for (``journeys.journey_rate``); none with the option off."""
    options = environment.parsed_options
    asked_per_s = journey_rate.rate(options)
    total = book.total()
    if not asked_per_s or not total.asked:
        return []
    share = total.dropped / total.asked
    ok = share <= MAX_DROPPED_SHARE
    users = journey_rate.paced_users(options)
    figures = (
        f"{total.dropped} of {total.asked} starts dropped ({share:.2%}) "
        f"{'<=' if ok else '>'} {MAX_DROPPED_SHARE:.0%}"
    )
    where = f"run, {asked_per_s:g} journeys/s over {counted(users, 'user')}"
    if ok:
        message = f"journey rate held: {figures} ({where})"
    else:
        by_persona = {p: book.total(persona=p).dropped for p in book.personas()}
        worst = max(by_persona, key=by_persona.get)
        if len([p for p, n in by_persona.items() if n]) > 1:
            where += f"; most by {worst}: {by_persona[worst]}"
        message = (
            f"journey rate not held: {figures} ({where}): the users could not keep the pace of a "
            f"journey every {journey_rate.every(users / asked_per_s)} s each, as their journeys took longer; "
            + _more_users_or_a_lower_rate(environment)
        )
    return [
        Check(
            "run",
            "journey_rate",
            f"<= {plain(MAX_DROPPED_SHARE)}",
            f"{share:.4f}",
            ok,
            message,
        )
    ]


def _no_journey_asked(environment) -> str:
    """``--journey-rate``: why a test sent nothing, when its pace asked for no journey yet."""
    if getattr(environment, "web_ui", None) is not None:
        fix = "raise Journey Rate in the start form"
    else:
        fix = "raise --journey-rate"
    return journey_rate.nothing_asked(environment.parsed_options, fix)


def _more_users_or_a_lower_rate(environment) -> str:
    """The fix of a rate not held, in the words of where the test's users and rate were set:
    a web UI test's are its start form's fields."""
    if getattr(environment, "web_ui", None) is not None:
        return "raise Number of users (or lower Journey Rate) in the start form"
    return "raise -u (or lower --journey-rate)"


#: More checks, each ``targets -> [Check]``, from the parts that judge more than the requests
#: and journeys: the load profile's phases (``journeys.profiles.hooks`` registers them; the
#: profiles import the results, not the other way round).
more_checks: list[Callable[[SloTargets], list[Check]]] = []


def evaluate(
    environment, book: JourneyBook, targets: SloTargets | None = None
) -> Verdict:
    """Judge the run from Locust's request stats and the journey book."""
    if targets is None:
        try:
            targets = SloTargets.from_options(environment.parsed_options)
        except SloConfigError as exc:
            verdict = Verdict(SloTargets())
            verdict.checks.append(
                Check("run", "targets", "valid", "invalid", False, str(exc))
            )
            return verdict
    verdict = Verdict(targets)
    request_stats = environment.runner.stats
    latency_rows = tuple(r for r in targets.rows if r.sets_latency)
    overall = request_figures(request_stats, latency_judged_by=latency_rows)
    why = None if overall.requests else nothing_ran.reason(environment)
    if why:
        # the figures left are of no test (none ran, or a reset cleared them): no other check
        check = Check("run", NO_REQUESTS_METRIC, "> 0", "0", False, why)
        return Verdict(targets, [check], judged=False)
    if not overall.requests:
        verdict.checks.append(
            Check(
                HTTP_SCOPE,
                NO_REQUESTS_METRIC,
                "> 0",
                "0",
                False,
                "no HTTP requests were recorded (http)"
                + _no_journey_asked(environment),
            )
        )
    else:
        verdict.checks += request_checks(HTTP_SCOPE, overall, targets)
    # journeys we know of: those the book saw, and ours that sent requests ("<journey>: ...")
    names = {e.name.split(": ", 1)[0] for e in request_stats.entries.values()}
    seen = set(book.journeys()) | (names & set(JOURNEYS))
    journey_rows = {r.name: r for r in targets.rows if r.journey}
    request_rows = tuple(r for r in latency_rows if not r.journey)
    for journey in [j for j in JOURNEYS if j in seen] + sorted(seen - set(JOURNEYS)):
        row = journey_rows.get(journey)
        own = targets.for_row(row) if row else targets
        figures = request_figures(
            request_stats, journey, latency_judged_by=request_rows
        )
        if figures.requests:
            verdict.checks += request_checks(journey, figures, own)
        verdict.checks += _journey_checks(journey, book, own)
    verdict.checks += row_checks(environment, targets)
    verdict.checks += _decline_checks(book, personas_of(environment))
    verdict.checks += _journey_rate_checks(environment, book)
    for more in more_checks:
        verdict.checks += more(targets)
    verdict.checks += _run_health_checks(environment)
    return verdict


def _run_health_checks(environment) -> list[Check]:
    """The run's own health, each a failed ``run`` check when it went wrong: workers lost,
    exceptions in the users' code, workers missing for a while, workers that left early."""
    checks = []
    if lost := lost_workers(environment):
        checks.append(
            _failed_run_check("workers_lost", len(lost), lost_workers_message(lost))
        )
    if errors := generator_errors(environment):
        count = sum(count for count, _ in errors)
        checks.append(
            _failed_run_check(
                "generator_errors", count, generator_errors_message(errors)
            )
        )
    if gaps := missing_workers(environment):
        checks.append(
            _failed_run_check(
                "workers_missing", len(gaps), missing_workers_message(gaps)
            )
        )
    if left := left_workers(environment):
        message = left_workers_message(left, run_length_s())
        checks.append(_failed_run_check("workers_left", len(left), message))
    return checks


def _failed_run_check(metric: str, count: int, message: str) -> Check:
    """A ``run`` check whose target is none of them: ``count`` went wrong, as ``message`` says."""
    return Check("run", metric, "0", str(count), False, message)


def generator_errors(environment) -> list[tuple[int, str]]:
    """(count, message) of each exception Locust caught in the users' code (its Exceptions table,
    the workers' included on a master), most frequent first."""
    rows = getattr(environment.runner, "exceptions", None) or {}
    return sorted(
        ((row.get("count", 0), str(row.get("msg", ""))) for row in rows.values()),
        key=lambda row: -row[0],
    )


def generator_errors_message(errors: list[tuple[int, str]]) -> str:
    """The ``generator_errors`` check's message: how many, and the most frequent (scrubbed of card
    numbers and the token, cut short); the tracebacks are in Locust's Exceptions tab and CSV."""
    count, message = errors[0]
    first = scrub(message.splitlines()[0] if message else "", secrets_from_env())
    if len(first) > 120:
        first = first[:117] + "..."
    kinds = f", {len(errors)} kinds" if len(errors) > 1 else ""
    return (
        f"the generator raised {counted(sum(c for c, _ in errors), 'unexpected exception')}{kinds} "
        f"(most often, {count}x: {first}): a bug in the load generator or a locustfile, so its "
        "results cannot be trusted; the tracebacks are in Locust's Exceptions tab and "
        "<csv prefix>_exceptions.csv (run)"
    )


def lost_workers_message(lost: list[str]) -> str:
    """The ``workers_lost`` check's message, in the singular for one worker."""
    one = len(lost) == 1
    their, they = ("its", "it") if one else ("their", "they")
    return (
        f"{counted(len(lost), 'worker')} lost before {their} final report ({', '.join(lost)}): "
        f"what {they} counted since {their} last report (journeys, payments in the ledger) "
        "is missing from these results (run)"
    )


def left_workers_message(left: list[Departure], ran_s: float | None = None) -> str:
    """The ``workers_left`` check's message: ``Worker w1 left at 4 s of the 10 s run: its
    journeys are counted, but its 3 users stopped, ...``; ``ran_s`` None: the test still runs."""
    one = len(left) == 1
    its = "its" if one else "their"
    users = counted(sum(d.users for d in left), "user")
    if one:
        (d,) = left
        when = (
            f"at {d.at_s:.0f} s of the {ran_s:.0f} s run"
            if ran_s is not None
            else f"{d.at_s:.0f} s into the run"
        )
        who = f"Worker {d.worker} left {when}"
    else:
        run = f"the {ran_s:.0f} s run" if ran_s is not None else "the run"
        at = ", ".join(f"{d.worker} at {d.at_s:.0f} s" for d in left)
        who = f"{counted(len(left), 'worker')} left before the end of {run} ({at})"
    return (
        f"{who}: {its} journeys are counted, but {its} {users} stopped, so the load was lower "
        f"than asked{what_became_of_their_users(left)} (run)"
    )


def _is_worker(environment) -> bool:
    return isinstance(environment.runner, WorkerRunner)


#: The ``--slo-targets`` rows of this process, read at start (``read_rows_at_start``).
_rows: list[RowTarget] = []


@events.init.add_listener
def validate_targets(environment, **_kwargs) -> None:
    """Bad targets end the run before any traffic, with one readable paragraph and exit code 2;
    so does a bad ``--slo-targets`` file (its file, line, column and the fix)."""
    if environment.parsed_options is None or _is_worker(environment):
        return
    options = environment.parsed_options
    try:
        read_rows_at_start(getattr(options, "slo_targets", None))
        SloTargets.from_options(options)
    except SloConfigError as exc:
        stop(options, str(exc))
    except PersonaFileError as exc:
        stop(options, file_set_by(str(exc), source_of("slo_targets")))


def read_rows_at_start(path: str | None) -> None:
    """Read the ``--slo-targets`` file (none: no rows); ``PersonaFileError`` when it is bad."""
    _rows.clear()
    if path and str(path).strip():
        _rows.extend(read_row_targets(str(path).strip()))


def _rows_p50_above_p95(path: str, targets: SloTargets) -> list[str]:
    """Each ``--slo-targets`` row whose p50 target is above the p95 it is judged with, the
    global one (its p95_ms empty): refused as a p50 above p95 anywhere else is, at start and
    in the web UI's form (a lower --slo-p95-ms typed there)."""
    return [
        f"{path}, line {row.line} ({row.name}), column p50_ms: {row.p50_ms:g} is above "
        f"--slo-p95-ms {targets.p95_ms:g}, the p95 target it is judged with (its p95_ms is "
        "empty): set its p95_ms too, or a lower p50_ms"
        for row in targets.rows
        if row.p95_ms is None and row.p50_ms is not None and row.p50_ms > targets.p95_ms
    ]


@events.test_start.add_listener
def announce_targets(environment, **_kwargs) -> None:
    if _is_worker(environment):
        return
    try:
        log.info(
            "SLO targets: %s",
            SloTargets.from_options(environment.parsed_options).describe(),
        )
    except SloConfigError as exc:
        log.error("%s", exc)
