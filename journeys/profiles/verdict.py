"""The SLO targets judged on the phases a profile is about, as well as on the whole run.

The whole run dilutes them: a soak whose last 3 s of 15 had 4.5 % errors and a p95 ×30 kept
0.8 % over the run, and its verdict passed with exit 0. So the verdict also judges, with the same
targets (``--slo-p50-ms``, ``--slo-p95-ms``, ``--slo-error-rate``, HTTP requests only):

* spike: the peak and the recovery (scopes ``spike peak``, ``spike recovery``)
* soak:  the last window (``soak last window``)
* step:  no phase: the top of the stairs is meant to break them; the knee says where

The error rate is judged on any number of requests (a collapsing service answers few); p50 and
p95 from ``MIN_REQUESTS_TO_COMPARE`` requests on, as in the phase report (fewer give one request's
time). A phase the run never reached (stopped early) is not judged: the ``run_time`` check fails.
Each check names the phase's window, where to look in the charts: ``p95 612 ms > 500 ms (spike
peak, 60-120 s, 112 ms over)``.
"""

from __future__ import annotations

from journeys.profiles.phases import PhaseBook
from journeys.profiles.report import MIN_REQUESTS_TO_COMPARE, rows
from journeys.results.slo import Check, RequestFigures, SloTargets, request_checks

#: profile -> {phase: the scope its checks carry}
JUDGED = {
    "spike": {"peak": "spike peak", "recovery": "spike recovery"},
    "soak": {"last": "soak last window"},
}


def phase_checks(book: PhaseBook, targets: SloTargets) -> list[Check]:
    """The checks of the judged phases that ran, empty for steady and step."""
    if book.schedule is None:
        return []
    judged = JUDGED.get(book.schedule.profile, {})
    checks = []
    # the phase table's rows: each phase the run reached, its window cut where it stopped
    for index, row in enumerate(rows(book)):
        scope = judged.get(row["phase"])
        stats = book.phases.get(index)
        if scope is None or stats is None or not stats.requests:
            continue
        figures = RequestFigures(stats.requests, stats.failures, stats.times)
        # where to look: the window of the run, as the phase table and the charts show it
        where = f"{scope}, {row['start_s']:g}-{row['end_s']:g} s"
        checks += [
            check
            for check in request_checks(scope, figures, targets, where)
            if check.metric == "error_rate" or stats.requests >= MIN_REQUESTS_TO_COMPARE
        ]
    return checks
