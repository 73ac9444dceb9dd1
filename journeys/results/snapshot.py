"""One consistent picture of the run for the outputs: journey rows, persona mix and SLO verdict."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from journeys.results.collector import book
from journeys.results.slo import Check, Verdict, evaluate
from journeys.results.tables import journey_rows, mix_rows, personas_of


@dataclass(frozen=True)
class Snapshot:
    rows: list[dict[str, Any]]
    mix: list[dict[str, Any]]
    verdict: Verdict


def take(environment, extra_checks: Iterable[Check] = ()) -> Snapshot:
    """What this process knows now (on the master: the sum of all workers' reports);
    ``extra_checks`` join the verdict (the end of the run adds its own)."""
    verdict = evaluate(environment, book)
    verdict.checks += extra_checks
    return Snapshot(
        rows=journey_rows(book, personas_of(environment)),
        mix=mix_rows(environment, book),
        verdict=verdict,
    )
