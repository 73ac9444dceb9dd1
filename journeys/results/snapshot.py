"""One consistent picture of the run for the outputs: journey rows, persona mix and SLO verdict
(with the ``--baseline`` comparison's checks)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from journeys import journey_rate
from journeys.results import baseline
from journeys.results.collector import book
from journeys.results.distributed import lost_workers
from journeys.results.slo import Check, Verdict, evaluate
from journeys.results.tables import journey_rows, mix_rows, personas_of


@dataclass(frozen=True)
class Snapshot:
    rows: list[dict[str, Any]]
    mix: list[dict[str, Any]]
    verdict: Verdict
    #: a load profile test's phase report (``journeys.profiles.report.PhaseReport``), else None
    profile: Any = None
    #: ``--baseline``: which run the verdict's ``baseline`` checks compared with, else None
    baseline: str | None = None


def take(environment, extra_checks: Callable[[], Iterable[Check]] = tuple) -> Snapshot:
    """What this process knows now (on the master: the sum of all workers' reports; the
    journeys a lost worker had in flight count as interrupted); ``extra_checks()`` join the
    verdict (the end of the run adds its own), unless there was no test to judge: they would
    judge the test whose figures a reset cleared (its ``run_time``, its ``books``)."""
    shown = book.with_lost_workers(lost_workers(environment))
    verdict = evaluate(environment, shown)
    rows = journey_rows(
        shown,
        personas_of(environment),
        with_pace=bool(journey_rate.rate(environment.parsed_options)),
    )
    if verdict.judged:
        # --baseline: this run's rows against an earlier run's
        verdict.checks += baseline.checks(environment, rows)
        verdict.checks += extra_checks()
    return Snapshot(
        rows=rows,
        mix=mix_rows(environment, shown),
        verdict=verdict,
        profile=_phase_report(environment),
        baseline=baseline.describe(environment.parsed_options)
        if verdict.judged
        else None,
    )


def _phase_report(environment):
    # imported here: journeys.profiles imports the results
    from journeys.profiles.hooks import phase_report

    return phase_report(environment)
