"""``--slo-targets PATH``: SLO targets of their own for some requests or journeys (k6's
per-endpoint thresholds), read with pandas and validated before any traffic.

A report that takes 1-2 s by design should not fail the 500 ms p95 made for ``/pay``, and a
team that wants ``/pay`` under 200 ms should not tighten everything else to say so::

    name,p50_ms,p95_ms,error_rate
    POST batch_report: report,1000,2500,      # a request, as Locust's _stats.csv names it
    POST checkout: pay,,200,0.005
    edge_probes,,,0.02                        # a journey: every request it sends

A ``name`` starting with an HTTP method is a request (``Type`` and ``Name`` of ``_stats.csv``);
otherwise it must be one of our journeys. An empty cell keeps the global ``--slo-*`` target.
What the rows judge is ``slo.py``'s job (``row_checks``); this module reads the file, and a bad
one raises ``PersonaFileError`` (the personas file's, as it is read the same way) naming the
file, line, column and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from journeys.events import JOURNEYS
from journeys.persona_csv import (
    SAVE_WITH_COMMAS,
    PersonaFileError,
    did_you_mean,
    extra_fields,
    other_separator,
    read_frame,
    read_records,
    read_text,
)
from journeys.scrub import scrub, secrets_from_env

NAME = "name"
TARGET_COLUMNS = ("p50_ms", "p95_ms", "error_rate")
COLUMNS = (NAME, *TARGET_COLUMNS)
#: A name starting with one of these and a space is a request (``POST checkout: pay``).
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
EXAMPLE = "slo-targets.example.csv"


@dataclass(frozen=True)
class RowTarget:
    """One row: the request (``POST checkout: pay``) or journey (``checkout``) it judges, and
    its own targets (None: the global ``--slo-*`` one)."""

    name: str
    journey: bool
    line: int
    p50_ms: float | None = None
    p95_ms: float | None = None
    error_rate: float | None = None

    @property
    def sets_latency(self) -> bool:
        """Its requests are judged on latency here, so they leave broader scopes' latency."""
        return self.p50_ms is not None or self.p95_ms is not None

    def matches(self, method: str, name: str) -> bool:
        """A Locust stats entry (method, name) this row judges."""
        if self.journey:
            return name.startswith(f"{self.name}: ")
        return f"{method} {name}" == self.name

    def describe(self) -> str:
        parts = [
            f"{label} {sign} {value:g}{unit}"
            for label, sign, value, unit in (
                ("p50", "<", self.p50_ms, " ms"),
                ("p95", "<", self.p95_ms, " ms"),
                ("error rate", "<=", self.error_rate, ""),
            )
            if value is not None
        ]
        return f"{self.name}: {', '.join(parts)}"


def read(path: str | Path) -> tuple[RowTarget, ...]:
    """The rows of the targets file; ``PersonaFileError`` names every problem at once."""
    path = Path(path)
    shown = str(path)
    text = read_text(
        path,
        missing_fix=(
            "Pass --slo-targets PATH (or LOCUST_SLO_TARGETS) pointing at an SLO targets CSV "
            f"(see {EXAMPLE})"
        ),
        binary_fix="Point --slo-targets at an SLO targets CSV",
    )
    records = read_records(shown, text)
    if not records:
        raise PersonaFileError(
            path, [f"{shown}: is empty. Add the header {','.join(COLUMNS)} and a row"]
        )
    header = records[0]
    columns = [field.strip() for field in header.fields]
    while len(columns) > 1 and not columns[-1]:
        columns.pop()
    problems = _header_problems(shown, header.line, columns)
    if problems:
        raise PersonaFileError(path, problems)
    frame = read_frame(shown, records, len(columns))
    frame.columns = columns
    rows: list[RowTarget] = []
    seen: dict[str, int] = {}
    for record, cells in zip(records[1:], frame.to_dict("records")):
        extra = extra_fields(shown, record.line, record.fields, len(columns))
        if extra:
            problems.append(extra)
            continue
        name = _name(cells)
        if name in seen:
            problems.append(
                f"{shown}, line {record.line}, column {NAME}: {name!r} is already on "
                f"line {seen[name]}. Keep one row per name"
            )
        seen.setdefault(name, record.line)
        row = _row(f"{shown}, line {record.line}", record.line, cells, problems)
        if row is not None:
            rows.append(row)
    if not problems and not rows:
        problems.append(
            f"{shown}: has a header but no rows. Add a row per request or journey"
        )
    if problems:
        raise PersonaFileError(path, problems)
    return tuple(rows)


def _header_problems(shown: str, line: int, columns: list[str]) -> list[str]:
    where = f"{shown}, line {line}"
    if separator := other_separator(columns):
        message = (
            f"{where}: the columns are separated by {separator}, but the file must be "
            f"comma-separated. {SAVE_WITH_COMMAS}"
        )
        return [message]
    problems = []
    for number, column in enumerate(columns, 1):
        if not column:
            problems.append(
                f"{where}, column {number}: has no name. Name it or remove it"
            )
        elif column not in COLUMNS:
            hint = did_you_mean(column.lower(), COLUMNS)
            problems.append(
                f"{where}, column {column}: unknown column{hint}. Known columns: "
                f"{', '.join(COLUMNS)}"
            )
        elif columns.count(column) > 1 and columns.index(column) == number - 1:
            problems.append(
                f"{where}, column {column}: appears more than once. Keep one"
            )
    if NAME not in columns:
        problems.append(
            f"{where}, column {NAME}: required column is missing. Add it to the header "
            f"({','.join(COLUMNS)})"
        )
    return problems


def _name(cells: dict) -> str:
    """The row's name, its spaces as Locust's (one between words)."""
    return " ".join(str(cells.get(NAME) or "").split())


def _row(where: str, line: int, cells: dict, problems: list[str]) -> RowTarget | None:
    """The row's RowTarget, or None with its problems added."""
    before = len(problems)
    name = _name(cells)
    journey = False
    if not name:
        problems.append(
            f"{where}, column {NAME}: is empty. Name a request or a journey"
        )
    elif scrub(name, secrets_from_env()) != name:
        # no request is named so, and the name would reach every report
        problems.append(
            f"{where}, column {NAME}: holds a card number or the internal token. Name the "
            "request as _stats.csv does ('POST checkout: pay')"
        )
    elif name.split(" ", 1)[0] in METHODS and " " in name:
        journey = False
    elif name in JOURNEYS:
        journey = True
    else:
        hint = did_you_mean(name, JOURNEYS)
        method = name.split(" ", 1)[0]
        if method.upper() in METHODS and " " in name:
            upper = f"{method.upper()} {name.split(' ', 1)[1]}"
            hint = (
                f" (did you mean '{upper}'? the method is upper-case, as in _stats.csv)"
            )
        elif name.casefold() == "aggregated":
            hint = (
                " (all requests together are judged by the --slo-* options: scope http)"
            )
        elif method == "journey":
            hint = (
                " (the journey timing rows are durations, judged by --slo-journey-p95-ms; "
                f"for the journey's requests write {name.split(' ', 1)[-1]!r})"
            )
        problems.append(
            f"{where}, column {NAME}: {name!r} is neither a request nor a journey{hint}. "
            "Write a request as Locust's _stats.csv names it, its Type and Name "
            f"('POST checkout: pay'), or a journey: {', '.join(JOURNEYS)}"
        )
    values = {}
    for column in TARGET_COLUMNS:
        values[column] = _target(where, column, cells.get(column), problems)
    p50, p95 = values["p50_ms"], values["p95_ms"]
    if p50 is not None and p95 is not None and p50 > p95:
        problems.append(
            f"{where}, column p50_ms: {p50:g} is above p95_ms {p95:g}: the median is never "
            "slower than the 95th percentile, so this p50 target could never fail (swapped?)"
        )
    if name and not problems[before:] and all(v is None for v in values.values()):
        problems.append(
            f"{where}: sets no target. Give p50_ms, p95_ms or error_rate, or remove the row"
        )
    if problems[before:]:
        return None
    return RowTarget(name, journey, line, **values)


def _target(where: str, column: str, raw, problems: list[str]) -> float | None:
    """The cell as a target (None when empty), or None with a problem added."""
    text = str(raw if raw is not None else "").strip()
    if not text:
        return None
    rate = column == "error_rate"
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        fix = (
            "a fraction from 0 to 1 (0.01 means 1%)" if rate else "milliseconds above 0"
        )
        if rate and text.endswith("%"):
            try:
                fix = f"{float(text[:-1]) / 100:g} for {text}"
            except ValueError:
                pass
        problems.append(
            f"{where}, column {column}: {text!r} is not a number. Write {fix}"
        )
        return None
    if rate and not 0 <= value <= 1:
        problems.append(
            f"{where}, column {column}: {text} is not a fraction from 0 to 1 (0.01 means 1%)"
        )
        return None
    if not rate and value <= 0:
        problems.append(
            f"{where}, column {column}: {text} is not above 0. Write milliseconds above 0, "
            "or leave the cell empty for the global target"
        )
        return None
    return value
