"""An earlier run's CSV files, read for ``--baseline PREFIX``: the rows a run is compared with.

Two files of that run's ``--csv PREFIX``: Locust's ``PREFIX_stats.csv`` (its HTTP rows, keyed
``POST checkout: pay`` and ``Aggregated``; the ``journey`` timing rows are not requests) and our
``PREFIX_journeys.csv`` (a row per journey × persona, keyed ``journey checkout/budget_shopper``).
Read once with pandas, at start, into small ``Figures``; a file that is missing, unreadable or
not what its name says raises ``BaselineError`` naming the file and the fix::

    baseline = read("reports/last-good")
    baseline.http["POST checkout: pay"].p95_ms     # 240
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import pandas as pd

from journeys.results.collector import JOURNEY_REQUEST_TYPE
from journeys.results.stats import FINISHED_OUTCOMES
from journeys.wording import unreadable

#: What a Locust stats CSV has, of what the comparison reads.
STATS_COLUMNS = ("Type", "Name", "Request Count", "Failure Count", "95%")
#: What our journeys CSV has, of what the comparison reads.
JOURNEY_COLUMNS = ("journey", "persona", "p95_ms", *FINISHED_OUTCOMES)


class BaselineError(ValueError):
    """The baseline cannot be read: the message names the file and the fix."""


@dataclass(frozen=True)
class Figures:
    """One row of a run: how many (requests, or finished journeys), how many failed, its p95."""

    count: int
    failures: int
    p95_ms: float | None

    @property
    def failure_share(self) -> float:
        return self.failures / self.count if self.count else 0.0


@dataclass(frozen=True)
class Baseline:
    prefix: str
    http: dict[str, Figures] = field(default_factory=dict)
    journeys: dict[str, Figures] = field(default_factory=dict)


def http_label(method: str, name: str) -> str:
    """``POST checkout: pay``; Locust's ``Aggregated`` row has no type."""
    return f"{method} {name}".strip()


def journey_label(journey: str, persona: str) -> str:
    return f"journey {journey}/{persona}"


def journey_figures(row: dict) -> Figures:
    """A journeys CSV row's figures: finished journeys, the failed ones (a reconciliation
    mismatch is one, as the SLO's journey error rate counts it) and the durations' p95."""
    finished = sum(int(row[o] or 0) for o in FINISHED_OUTCOMES)
    failed = int(row["failed"] or 0) + int(row["mismatch"] or 0)
    p95 = row["p95_ms"]
    return Figures(finished, failed, None if p95 in (None, "") else float(p95))


def read(prefix: str) -> Baseline:
    """The baseline at ``prefix``: both files read, or ``BaselineError``."""
    stats = _frame(f"{prefix}_stats.csv", STATS_COLUMNS, "a Locust stats CSV", prefix)
    journeys = _frame(
        f"{prefix}_journeys.csv", JOURNEY_COLUMNS, "a journeys CSV", prefix
    )
    http = {
        http_label(r["Type"], r["Name"]): Figures(
            _whole(r["Request Count"], "Request Count", r, stats.path),
            _whole(r["Failure Count"], "Failure Count", r, stats.path),
            _number(r["95%"], "95%", r, stats.path),
        )
        for r in stats.rows
        if r["Type"] != JOURNEY_REQUEST_TYPE
    }
    rows = {}
    for r in journeys.rows:
        for column in (*FINISHED_OUTCOMES, "p95_ms"):
            r[column] = _number(r[column], column, r, journeys.path)
        rows[journey_label(r["journey"], r["persona"])] = journey_figures(r)
    return Baseline(prefix, http, rows)


@dataclass
class _Frame:
    path: str
    rows: list[dict]


def _frame(path: str, columns: tuple[str, ...], what: str, prefix: str) -> _Frame:
    """``path`` read as text cells (``N/A`` and empty kept as written), with ``columns``."""
    try:
        os.stat(path)
    except PermissionError:
        # a folder on its way this user may not open (a 0700 folder mounted into a container):
        # the file may well be there, so not "no file"
        raise BaselineError(
            f"cannot read {path}: {unreadable(_closed_folder(path))}"
        ) from None
    except OSError:
        raise BaselineError(f"no file {path}{_hint(prefix)}") from None
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise BaselineError(
            f"{path} is empty, not {what} (a run stopped at its start leaves no figures): "
            "keep the files of a run that ran to its end"
        ) from None
    except IsADirectoryError:
        raise BaselineError(f"{path} is a folder, not {what}") from None
    except PermissionError:
        raise BaselineError(f"cannot read {path}: {unreadable()}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = (
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        )
        raise BaselineError(f"cannot read {path} as CSV ({first})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        has = ", ".join(str(c) for c in list(frame.columns)[:8])
        raise BaselineError(
            f"{path} is not {what}: it has no column {', '.join(missing)} (its columns: "
            f"{has}{', ...' if len(frame.columns) > 8 else ''}); the baseline is the "
            "--csv prefix of an earlier run of this tool"
        )
    return _Frame(path, frame.to_dict("records"))


def _closed_folder(path: str) -> str | None:
    """The first folder on ``path``'s way this user may not open (search), if any."""
    folder = os.path.dirname(os.path.abspath(path))
    way = [folder]
    while os.path.dirname(way[-1]) != way[-1]:
        way.append(os.path.dirname(way[-1]))
    return next((f for f in reversed(way) if not os.access(f, os.X_OK)), None)


def _hint(prefix: str) -> str:
    """What to write instead: a file name given for the prefix (``reports/run_stats.csv``), or
    what a baseline is."""
    for suffix in ("_stats.csv", "_journeys.csv"):
        if prefix.endswith(suffix) and os.path.isfile(prefix):
            return (
                f" ({prefix} is one of the baseline's files, not its prefix): give "
                f"--baseline {prefix.removesuffix(suffix)}"
            )
    return (
        " (--baseline is the --csv prefix of an earlier run: it reads PREFIX_stats.csv and "
        "PREFIX_journeys.csv); give the prefix that run was written with, or copy its files "
        "there (docs/ci.md: keep the last good build's)"
    )


def _number(text: str, column: str, row: dict, path: str) -> float | None:
    """A cell's number; ``N/A`` and empty are none (Locust's percentiles of a row without
    requests)."""
    if text in ("", "N/A"):
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise BaselineError(
            f"{path}: {column} of the row {_name(row)} is {text!r}, not a number: the file "
            "was edited or is not this tool's; write it again with a run"
        )
    return value


def _whole(text: str, column: str, row: dict, path: str) -> int:
    value = _number(text, column, row, path)
    return int(value or 0)


def _name(row: dict) -> str:
    if "Name" in row:
        return http_label(row["Type"], row["Name"])
    return journey_label(row["journey"], row["persona"])
