"""``--baseline PREFIX``: is this build slower than the last good one? A regression gate.

The SLO targets say whether the service is fast enough; the baseline says whether it got slower
than an earlier run (``PREFIX``: that run's ``--csv`` prefix, read at start by ``baseline_csv``).
Each HTTP row (``POST checkout: pay``, ``Aggregated``) and each journey × persona row present in
both runs is compared; a row regressed when

* its p95 grew by more than ``--baseline-tolerance`` (0.25: +25%) and by ``--baseline-min-ms``
  or more (10: 2 → 4 ms doubles, but is noise, as for a step profile's knee), or
* its failure share grew by more than 1 point (0.5% → 1.6%).

Each comparison is a check of scope ``baseline`` in the SLO verdict (``snapshot.take`` adds them),
so a regression fails the run with exit 1 and shows wherever checks show::

    p95 612 ms vs 240 ms in the baseline: +372 ms (+155%), over +25% and at least +10 ms (POST checkout: pay)

Rows with fewer than ``MIN_COUNT`` requests (journeys) in either run are not compared, and say
so; rows in one run only are listed, not failed; but a baseline that compared no row at all
fails (``compared``): a gate that compares nothing would pass any build. The baseline is read while the locustfile loads
(``read_at_start``): a missing or unreadable one, or this run's own ``--csv`` prefix (Locust would
empty its files as it opens them), ends the run with exit 2 before any traffic.
"""

from __future__ import annotations

import logging
import os

from locust import events
from locust.runners import WorkerRunner

from journeys.argtypes import growth, non_negative_float
from journeys.option_sources import file_set_by
from journeys.results.baseline_csv import (
    Baseline,
    BaselineError,
    Figures,
    http_label,
    journey_figures,
    journey_label,
    read,
)
from journeys.results.collector import JOURNEY_REQUEST_TYPE
from journeys.results.slo import Check
from journeys.setup_stop import stop
from journeys.wording import counted

SCOPE = "baseline"
#: The metrics of the rows compared (the others say a row was not: ``not_compared``, ``only_in_*``).
COMPARED = ("p95_ms", "failure_share")
DEFAULT_TOLERANCE = 0.25
DEFAULT_MIN_MS = 10.0
#: Rows with fewer requests (or finished journeys) in either run are not compared: a p95 of a
#: handful of samples is one request's time (the load profiles' phases need as many).
MIN_COUNT = 20
#: A failure share may grow by this much (one point) before the row regressed.
FAILURE_SHARE_GROWTH = 0.01

#: The baseline this process compares with (read at start), if any.
_loaded: list[Baseline] = []


def add_options(parser) -> None:
    """``--baseline`` and its two knobs (also on the parser that reads options early)."""
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="PREFIX",
        env_var="LOCUST_BASELINE",
        help="Compare this run with an earlier one: PREFIX is that run's --csv prefix. A row "
        "(HTTP, journey × persona) whose p95 or failure share grew past the limits fails the "
        "SLO verdict (exit 1).",
    )
    parser.add_argument(
        "--baseline-tolerance",
        type=growth,
        default=DEFAULT_TOLERANCE,
        env_var="LOCUST_BASELINE_TOLERANCE",
        help="Growth of a row's p95 over the baseline's allowed, as a fraction (default 0.25: +25%%).",
    )
    parser.add_argument(
        "--baseline-min-ms",
        type=non_negative_float,
        default=DEFAULT_MIN_MS,
        env_var="LOCUST_BASELINE_MIN_MS",
        help="A p95 growth below this many ms is noise, whatever its share (default 10).",
    )


def read_at_start(options, source: str | None = None) -> None:
    """Read ``--baseline`` now (``options``: read while the locustfile loads, before Locust
    opens this run's ``--csv`` files), or end the run with exit 2 naming the file and the fix,
    and ``source``, the ``LOCUST_*`` variable or config file line that set it, if one did."""
    prefix = getattr(options, "baseline", None)
    _loaded.clear()
    if not prefix:
        return
    own = getattr(options, "csv_prefix", None)
    if own and _at_own_prefix(prefix, own):
        # not a stop that clears this run's report paths: they hold the baseline
        stop(
            None,
            file_set_by(
                f"--baseline (LOCUST_BASELINE) {prefix} is at this run's own --csv prefix "
                f"{own}: Locust would overwrite the baseline's files as the run starts. Copy "
                f"the last good run's {own}_stats.csv and {own}_journeys.csv to a prefix of "
                "their own (e.g. baseline/last-good_stats.csv and "
                "baseline/last-good_journeys.csv, then --baseline baseline/last-good), or "
                "write this run elsewhere (--csv).",
                source,
            ),
        )
    try:
        _loaded.append(read(prefix))
    except BaselineError as exc:
        stop(
            options,
            file_set_by(f"--baseline (LOCUST_BASELINE) {prefix}: {exc}.", source),
        )


def _at_own_prefix(prefix: str, own: str) -> bool:
    """The baseline is this run's ``--csv`` prefix, however spelled (``./reports/run``), or
    one of its files given for the prefix (``reports/run_stats.csv``)."""
    mine = os.path.realpath(own)
    given = os.path.realpath(prefix)
    return given == mine or given in (f"{mine}_stats.csv", f"{mine}_journeys.csv")


def loaded() -> Baseline | None:
    return _loaded[0] if _loaded else None


def describe(options) -> str | None:
    """Which run the checks say "the baseline" of, and when a row fails (the checks name only
    their row): ``reports/last-good (3 HTTP rows, 3 journey rows); a row fails when ...``."""
    baseline = loaded()
    if baseline is None:
        return None
    rule = Rule(
        getattr(options, "baseline_tolerance", DEFAULT_TOLERANCE),
        getattr(options, "baseline_min_ms", DEFAULT_MIN_MS),
    )
    return (
        f"{baseline.prefix} ({counted(len(baseline.http), 'HTTP row')}, "
        f"{counted(len(baseline.journeys), 'journey row')}); a row fails when its p95 grows "
        f"by over {rule.limits()}, or its failure share by more than "
        f"{counted(round(FAILURE_SHARE_GROWTH * 100), 'point')}"
    )


@events.init.add_listener
def say_which_baseline(environment, **_kwargs) -> None:
    """The baseline read at start (the locustfile loads before Locust sets up its logging)."""
    if isinstance(environment.runner, WorkerRunner):
        return
    described = describe(environment.parsed_options)
    if described:
        logging.getLogger(__name__).info("Baseline: %s", described)


def checks(environment, journey_rows: list[dict]) -> list[Check]:
    """This run (its Locust stats, its journey rows as the tables show them) against the
    baseline: no checks without one."""
    baseline = loaded()
    if baseline is None:
        return []
    options = environment.parsed_options
    rule = Rule(
        getattr(options, "baseline_tolerance", DEFAULT_TOLERANCE),
        getattr(options, "baseline_min_ms", DEFAULT_MIN_MS),
    )
    now_http = http_figures(environment.runner.stats)
    now_journeys = {
        journey_label(r["journey"], r["persona"]): journey_figures(r)
        for r in journey_rows
    }
    found = [
        *compare(baseline.http, now_http, rule, "request"),
        *compare(baseline.journeys, now_journeys, rule, "journey"),
    ]
    if not any(c.metric.startswith(COMPARED) for c in found):
        found.append(_nothing_compared(baseline))
    return [*found, *one_sided(baseline, now_http, now_journeys)]


def _nothing_compared(baseline: Baseline) -> Check:
    """A gate that compared no row would pass any build: it fails, saying why."""
    return Check(
        SCOPE,
        "compared",
        ">= 1 row",
        "0 rows",
        False,
        f"nothing compared with the baseline {baseline.prefix}: no row had {MIN_COUNT} "
        "requests (or finished journeys) in both runs, so this gate would pass any build; "
        "run both longer or with more users, or drop --baseline",
    )


def http_figures(request_stats) -> dict[str, Figures]:
    """This run's HTTP rows as its ``PREFIX_stats.csv`` shows them (the p95 as its ``95%``)."""
    entries = [
        e for e in request_stats.entries.values() if e.method != JOURNEY_REQUEST_TYPE
    ]
    return {
        http_label(e.method or "", e.name): Figures(
            e.num_requests,
            e.num_failures,
            int(e.get_response_time_percentile(0.95) or 0) if e.num_requests else None,
        )
        for e in [*entries, request_stats.total]
    }


class Rule:
    """When a row regressed: p95 over ``tolerance`` and by ``min_ms`` or more, or its failure
    share by more than ``FAILURE_SHARE_GROWTH``."""

    def __init__(self, tolerance: float, min_ms: float) -> None:
        self.tolerance, self.min_ms = tolerance, min_ms

    def limits(self) -> str:
        return f"{self.share()} and at least +{self.min_ms:g} ms"

    def share(self) -> str:
        return f"+{self.tolerance * 100:g}%"


def compare(
    before: dict[str, Figures], now: dict[str, Figures], rule: Rule, noun: str
) -> list[Check]:
    """The checks of the rows in both runs, in this run's order."""
    found = []
    for label in [name for name in now if name in before]:
        old, new = before[label], now[label]
        if min(old.count, new.count) < MIN_COUNT:
            found.append(_not_compared(label, old, new, noun))
            continue
        if old.p95_ms is not None and new.p95_ms is not None:
            found.append(_p95_check(label, old.p95_ms, new.p95_ms, rule))
        found.append(_failure_check(label, old, new, noun))
    return found


def _p95_check(label: str, old: float, new: float, rule: Rule) -> Check:
    growth = new - old
    share = growth / old if old else (0.0 if not growth else float("inf"))
    over_share = new > old * (1 + rule.tolerance)
    over_ms = growth >= rule.min_ms
    regressed = over_share and over_ms
    if regressed:
        why = f"over {rule.limits()}"
    elif not over_share:
        why = f"within {rule.share()}"
    else:
        why = f"under +{rule.min_ms:g} ms, noise"
    # the highest p95 that holds, as a bound: ``<= 300`` (the share decides) or ``< 250``
    by_share, by_ms = old * (1 + rule.tolerance), old + rule.min_ms
    target = f"< {by_ms:g}" if by_ms > by_share else f"<= {by_share:g}"
    grown = f"{growth:+g} ms" + (f" ({share:+.0%})" if old else "")
    return Check(
        SCOPE,
        f"p95_ms ({label})",
        target,
        f"{new:g}",
        not regressed,
        f"p95 {new:g} ms vs {old:g} ms in the baseline: {grown}, {why} ({label})",
    )


def _failure_check(label: str, old: Figures, new: Figures, noun: str) -> Check:
    points = (new.failure_share - old.failure_share) * 100
    regressed = points > FAILURE_SHARE_GROWTH * 100 + 1e-9
    word = "journeys" if noun == "journey" else "requests"
    return Check(
        SCOPE,
        f"failure_share ({label})",
        f"<= {old.failure_share + FAILURE_SHARE_GROWTH:.4f}",
        f"{new.failure_share:.4f}",
        not regressed,
        f"failure share {new.failure_share:.2%} vs {old.failure_share:.2%} in the baseline: "
        f"{points:+.2f} points, {'over' if regressed else 'within'} +1 point ({label}, "
        f"{new.failures} of {new.count} {word} failed)",
    )


def _not_compared(label: str, old: Figures, new: Figures, noun: str) -> Check:
    return Check(
        SCOPE,
        f"not_compared ({label})",
        f">= {MIN_COUNT} {noun}s",
        f"{min(old.count, new.count)} {noun}s",
        True,
        f"not compared: {counted(new.count, noun)} in this run, {old.count} in the baseline; "
        f"{MIN_COUNT} in each are needed ({label})",
    )


def one_sided(
    baseline: Baseline, http: dict[str, Figures], journeys: dict[str, Figures]
) -> list[Check]:
    """Rows of one run only, listed (a request renamed, a persona added): not failed."""
    before = {**baseline.http, **baseline.journeys}
    now = {**http, **journeys}
    found = []
    for metric, names, where in (
        ("only_in_this_run", [n for n in now if n not in before], "this run"),
        ("only_in_baseline", [n for n in before if n not in now], "the baseline"),
    ):
        if names:
            found.append(
                Check(
                    SCOPE,
                    metric,
                    "listed",
                    str(len(names)),
                    True,
                    f"{counted(len(names), 'row')} only in {where} ({baseline.prefix}), not "
                    f"compared: {', '.join(names)}",
                )
            )
    return found
