"""CSV files beside Locust's own: ``PREFIX_journeys.csv``, ``PREFIX_persona_mix.csv``, ``PREFIX_slo.csv``.

Written once at the end of the run (``--csv PREFIX``); the web UI offers the same CSVs for download.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import IO, Any

from journeys.results.slo import Verdict, verdict_rows
from journeys.results.tables import JOURNEY_COLUMNS, MIX_COLUMNS

SLO_COLUMNS = ("scope", "metric", "target", "actual", "passed", "message")


def _write(out: IO[str], columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    writer = csv.DictWriter(
        out, fieldnames=columns, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})


def write_journeys(out: IO[str], rows: list[dict[str, Any]]) -> None:
    _write(out, JOURNEY_COLUMNS, rows)


def write_mix(out: IO[str], rows: list[dict[str, Any]]) -> None:
    _write(out, MIX_COLUMNS, rows)


def write_slo(out: IO[str], verdict: Verdict) -> None:
    rows = [
        {**row, "passed": str(row["passed"]).lower()} for row in verdict_rows(verdict)
    ]
    _write(out, SLO_COLUMNS, rows)


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
