"""One consistent picture of the run for the outputs: journey rows, persona mix and SLO verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from journeys.results.collector import book
from journeys.results.slo import Verdict, evaluate
from journeys.results.tables import journey_rows, mix_rows, personas_of


@dataclass(frozen=True)
class Snapshot:
    rows: list[dict[str, Any]]
    mix: list[dict[str, Any]]
    verdict: Verdict


def take(environment) -> Snapshot:
    """What this process knows now (on the master: the sum of all workers' reports)."""
    return Snapshot(
        rows=journey_rows(book, personas_of(environment)),
        mix=mix_rows(environment, book),
        verdict=evaluate(environment, book),
    )
