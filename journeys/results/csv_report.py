"""CSV files beside Locust's own: ``PREFIX_journeys.csv``, ``PREFIX_persona_mix.csv``, ``PREFIX_slo.csv``.

Written once at the end of the run (``--csv PREFIX``); the web UI offers the same CSVs for download.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import IO, Any

from journeys.results.slo import Verdict, verdict_rows
from journeys.results.tables import MIX_COLUMNS, journey_columns, paced

SLO_COLUMNS = (
    "scope",
    "metric",
    "target",
    "actual",
    "passed",
    "message",
    "target_value",
    "actual_value",
    "over_by",
)

#: ``< 1000``, ``<= 0.01``, ``0``, ``> 0``, ``30 s``, ``12 payments``: a bound and a number,
#: with at most one word of unit after it; ``< 1e+20`` too (a target of ``--slo-p95-ms 1e20``).
_FIGURE = re.compile(
    r"(?P<op><=|>=|<|>|=)?\s*(?P<number>-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)(?:\s+[a-z]+)?"
)
#: The decline-rate check's ``0.025..0.115``.
_RANGE = re.compile(r"(?P<low>\d+(?:\.\d+)?)\.\.(?P<high>\d+(?:\.\d+)?)")


def _write(out: IO[str], columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    writer = csv.DictWriter(
        out, fieldnames=columns, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})


def write_journeys(out: IO[str], rows: list[dict[str, Any]]) -> None:
    _write(out, journey_columns(paced(rows)), rows)


def write_mix(out: IO[str], rows: list[dict[str, Any]]) -> None:
    _write(out, MIX_COLUMNS, rows)


def write_slo(out: IO[str], verdict: Verdict) -> None:
    rows = [
        {**row, **figures(row), "passed": str(row["passed"]).lower()}
        for row in verdict_rows(verdict)
    ]
    _write(out, SLO_COLUMNS, rows)


def figures(row: dict) -> dict:
    """A check's target and actual as plain numbers, for a script (``target`` ``< 1000`` is
    ``target_value`` 1000; ``actual`` ``4 s`` is ``actual_value`` 4), and for a failed check
    ``over_by``: how far past its target the figure is, in the target's unit (p95 612 against
    ``< 500`` is 112; 3 duplicate charges against ``0`` is 3; 4 s run against ``30 s`` is 26).
    A decline rate outside ``0.025..0.115`` is over by its distance to the nearer end. Empty
    where a side is not a number (``the ledger``, the verdict row) and for a check that held."""
    target, actual = _FIGURE.fullmatch(row["target"]), _FIGURE.fullmatch(row["actual"])
    out = {
        "target_value": target and target["number"],
        "actual_value": actual and actual["number"],
        "over_by": None,
    }
    if actual and not row["passed"]:
        value = float(actual["number"])
        bounds = _RANGE.fullmatch(row["target"])
        # a failed bound or count is on its wrong side: the distance is the excess
        if target:
            out["over_by"] = f"{abs(value - float(target['number'])):.6g}"
        elif bounds:  # outside low..high: the distance to the nearer end
            low, high = float(bounds["low"]), float(bounds["high"])
            out["over_by"] = f"{max(low - value, value - high):.6g}"
    return out


def as_text(writer, *args) -> str:
    buffer = io.StringIO()
    writer(buffer, *args)
    return buffer.getvalue()


def write_files(
    prefix: str, rows: list[dict], mix: list[dict], verdict: Verdict
) -> list[Path]:
    """Write the three CSV files next to Locust's ``PREFIX_stats.csv``; returns their paths."""
    written = []
    for suffix, writer, data in (
        ("journeys", write_journeys, rows),
        ("persona_mix", write_mix, mix),
        ("slo", write_slo, verdict),
    ):
        path = Path(f"{prefix}_{suffix}.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer(f, data)
        written.append(path)
    return written
