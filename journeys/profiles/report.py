"""The phase report: one row per phase reached, a comparison per profile, and ``PREFIX_profile.csv``.

* spike: peak and recovery against the baseline (p95 and error rate before / during / after)
* soak:  drift, the last window against the first
* step:  the first step where p95 doubled (and grew by 10 ms or more) against step 1, or the error
         rate passed 1% (the knee)
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from journeys.profiles.phases import PhaseBook
from journeys.results.distributed import (
    END_GRACE_S,
    Departure,
    what_became_of_their_users,
)
from journeys.wording import aligned, counted

COLUMNS = (
    "phase",
    "start_s",
    "end_s",
    "target_users",
    "requests",
    "failures",
    "error_rate",
    "p50_ms",
    "p95_ms",
)
KNEE_P95_RATIO = 2.0
#: ... and grew by at least this much: 2 → 4 ms doubles, but is noise to anyone reading a knee.
KNEE_MIN_GAIN_MS = 10.0
KNEE_ERROR_RATE = 0.01
#: Fewer requests than this in a window give no p95 worth comparing (one outlier is the p95).
MIN_REQUESTS_TO_COMPARE = 20


@dataclass(frozen=True)
class PhaseReport:
    """The report as the HTML report shows it: ``title``, the ``table`` rows, the ``notes``."""

    title: str
    table: list[dict[str, Any]]
    notes: list[str]


def rows(book: PhaseBook) -> list[dict[str, Any]]:
    """The phases the run reached (cut at the moment it stopped), with their figures."""
    if book.schedule is None:
        return []
    out = []
    for index, phase in enumerate(book.schedule.phases[: book.reached + 1]):
        stats = book.phases.get(index)
        end = phase.end_s
        if book.stopped_at_s is not None:
            end = min(end, max(book.stopped_at_s, phase.start_s))
        requests = stats.requests if stats else 0
        failures = stats.failures if stats else 0
        out.append(
            {
                "phase": phase.name,
                "start_s": round(phase.start_s, 1),
                "end_s": round(end, 1),
                "target_users": phase.users,
                "requests": requests,
                "failures": failures,
                "error_rate": round(failures / requests, 4) if requests else None,
                "p50_ms": stats.times.percentile(0.5) if stats else None,
                "p95_ms": stats.times.percentile(0.95) if stats else None,
            }
        )
    return out


def write_csv(prefix: str, table: list[dict[str, Any]]) -> Path:
    path = Path(f"{prefix}_profile.csv")
    with open(path, "w", newline="") as f:
        write(f, table)
    return path


def write(out: IO[str], table: list[dict[str, Any]]) -> None:
    """The phase table as ``PREFIX_profile.csv`` holds it (the web UI's download too)."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})


def _ms(value) -> str:
    return "-" if value is None else f"{value:g}"


def _pct(rate) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def lines(
    book: PhaseBook,
    table: list[dict[str, Any]],
    lost: Sequence[str] = (),
    left: Sequence[Departure] = (),
) -> list[str]:
    """The terminal report: a header, the phase table, what cut it short (workers ``lost``,
    workers that ``left``, an early stop), the profile's comparison."""
    if book.schedule is None:
        return []
    header = [
        "phase",
        "window (s)",
        "users",
        "reqs",
        "fails",
        "err%",
        "p50 ms",
        "p95 ms",
    ]
    cells = [
        [
            r["phase"],
            f"{r['start_s']:g}-{r['end_s']:g}",
            *(str(r[k]) for k in ("target_users", "requests", "failures")),
            _pct(r["error_rate"]),
            _ms(r["p50_ms"]),
            _ms(r["p95_ms"]),
        ]
        for r in table
    ]
    # as wide as the longest cell: a day's soak counts 20 million requests in a window
    out = [title(book), *aligned([header, *cells], [11, 13, 6, 8, 6, 7, 7, 7], left=1)]
    return out + notes(book, table, lost, left)


def title(book: PhaseBook) -> str:
    """``Load profile spike: 4 → 20 → 4 users over 12s (3 phases) — HTTP requests per phase``"""
    return f"Load profile {book.schedule.describe()} — HTTP requests per phase"


def notes(
    book: PhaseBook,
    table: list[dict[str, Any]],
    lost: Sequence[str] = (),
    left: Sequence[Departure] = (),
) -> list[str]:
    """The lines under the table: what cut it short, then the profile's comparison."""
    out = lost_workers_line(lost) + left_workers_line(left, table)
    stop = stopped_early(book)
    if stop:
        out.append(stop)
    compare = {"spike": _spike, "soak": _soak, "step": _step}.get(book.schedule.profile)
    if compare:
        # a test still running (the web UI's report) has phases yet to come, not phases that never ran
        missing = "has not started yet" if book.stopped_at_s is None else "never ran"
        out += compare({r["phase"]: r for r in table}, table, missing)
    return out


def lost_workers_line(lost: Sequence[str]) -> list[str]:
    """Under the table when workers were lost: their requests since their last report (and so
    the end of the phase they were in) are missing, as in the journey results."""
    if not lost:
        return []
    its = "its" if len(lost) == 1 else "their"
    line = (
        f"{counted(len(lost), 'worker')} lost before {its} final report: {its} requests "
        f"since {its} last report are missing from these phases ({', '.join(lost)})"
    )
    return [line]


def left_workers_line(
    left: Sequence[Departure], table: list[dict[str, Any]]
) -> list[str]:
    """Under the table when workers left mid-run on their own (SIGTERM, Ctrl-C): their
    requests are in the phases, but from then on the phases ran with fewer users than their
    target (until Locust started them again on the other workers, at the spawn rate)."""
    if not left:
        return []

    def where(d: Departure) -> str:
        at = f"{d.worker} at {d.at_s:.0f} s"
        for row in table:
            if row["start_s"] <= d.at_s < row["end_s"]:
                phase = row["phase"]
                return (
                    f"{at}, in {phase if phase.startswith('step') else 'the ' + phase}"
                )
        return at

    its = "its" if len(left) == 1 else "their"
    users = counted(sum(d.users for d in left), "user")
    line = (
        f"{counted(len(left), 'worker')} left mid-run ({'; '.join(map(where, left))}): {its} "
        f"requests are in these phases, but {its} {users} stopped, so the phases from then on "
        f"ran with fewer users than their target{what_became_of_their_users(left)}"
    )
    return [line]


def stopped_early(book: PhaseBook) -> str | None:
    """``stopped at 7.6 s of its 20 s run time, in the peak (3.6 of its 6 s); never ran:
    recovery`` for a run stopped before its run time (Ctrl-C, SIGTERM, the web UI's stop), else
    None: the comparisons below cover only what ran."""
    schedule, stopped = book.schedule, book.stopped_at_s
    if schedule is None or schedule.run_time is None or stopped is None:
        return None
    if stopped >= schedule.run_time - END_GRACE_S:
        return None
    reached = max(book.reached, 0)  # -1: stopped before the shape's first tick
    last = schedule.phases[reached]
    ran = max(0.0, min(stopped, last.end_s) - last.start_s)
    where = last.name if last.name.startswith("step") else f"the {last.name}"
    line = (
        f"stopped at {stopped:.1f} s of its {schedule.run_time:g} s run time, in {where} "
        f"({ran:.1f} of its {last.end_s - last.start_s:g} s)"
    )
    never = [p.name for p in schedule.phases[reached + 1 :]]
    return line + (f"; never ran: {', '.join(never)}" if never else "")


def _compare(
    label: str, by_name: dict, before: str, after: str, missing_word: str = "never ran"
) -> str:
    """``_versus`` of two phases, or why not: a run stopped early never reached one (a
    running one has not yet)."""
    missing = [name for name in (before, after) if name not in by_name]
    if missing:
        return f"{label}: not compared: the {' and the '.join(missing)} {missing_word}"
    return _versus(label, by_name[before], by_name[after])


def _versus(label: str, before: dict | None, after: dict | None) -> str:
    counts = [r["requests"] if r else 0 for r in (before, after)]
    if min(counts) < MIN_REQUESTS_TO_COMPARE:
        return (
            f"{label}: not enough requests to compare ({counts[0]} and {counts[1]}; "
            f"needs {MIN_REQUESTS_TO_COMPARE} in each)"
        )
    p95_a, p95_b = before["p95_ms"], after["p95_ms"]
    ratio = f" (×{p95_b / p95_a:.2f})" if p95_a else ""
    err_a, err_b = before["error_rate"], after["error_rate"]
    return (
        f"{label}: p95 {_ms(p95_a)} → {_ms(p95_b)} ms{ratio}, "
        f"error rate {_pct(err_a)} → {_pct(err_b)} ({(err_b - err_a) * 100:+.1f} pt)"
    )


def _spike(by_name: dict, _table: list, missing: str = "never ran") -> list[str]:
    return [
        _compare("peak vs baseline", by_name, "baseline", "peak", missing),
        _compare("recovery vs baseline", by_name, "baseline", "recovery", missing),
    ]


def _soak(by_name: dict, _table: list, missing: str = "never ran") -> list[str]:
    return [_compare("drift, last vs first window", by_name, "first", "last", missing)]


def _step(_by_name: dict, table: list, _missing: str = "") -> list[str]:
    """The knee: the first step whose error rate reached 1% (on any number of requests: a
    collapsing service answers few), or whose p95 doubled, and by ``KNEE_MIN_GAIN_MS`` at least,
    against the baseline, the first step
    with ``MIN_REQUESTS_TO_COMPARE`` requests (fewer give no p95 worth comparing)."""
    steps = [r for r in table if r["requests"]]
    if not steps:
        return ["knee: no requests measured"]
    base = next(
        (i for i, r in enumerate(steps) if r["requests"] >= MIN_REQUESTS_TO_COMPARE),
        None,
    )
    base_p95 = steps[base]["p95_ms"] if base is not None else None
    few = [r for r in steps if r["requests"] < MIN_REQUESTS_TO_COMPARE]
    note = (
        [
            f"p95 not compared for {', '.join(r['phase'] for r in few)}: fewer than "
            f"{MIN_REQUESTS_TO_COMPARE} requests"
            + (f" (the baseline is {steps[base]['phase']})" if base is not None else "")
        ]
        if few
        else []
    )
    for i, r in enumerate(steps):
        failing = r["error_rate"] is not None and r["error_rate"] >= KNEE_ERROR_RATE
        slow = (
            base is not None
            and i > base
            and r["requests"] >= MIN_REQUESTS_TO_COMPARE
            and bool(base_p95 and r["p95_ms"])
            and r["p95_ms"] >= KNEE_P95_RATIO * base_p95
            and r["p95_ms"] - base_p95 >= KNEE_MIN_GAIN_MS
        )
        if failing or slow:
            why = (
                f"error rate {_pct(r['error_rate'])}"
                if failing
                else f"p95 {_ms(base_p95)} → {_ms(r['p95_ms'])} ms"
            )
            return [
                f"knee: {r['phase']} ({counted(r['target_users'], 'user')}): {why}",
                *note,
            ]
    compared = base is not None and any(
        r["requests"] >= MIN_REQUESTS_TO_COMPARE for r in steps[base + 1 :]
    )
    if base is None:
        p95_limit = f"p95 not compared: no step with {MIN_REQUESTS_TO_COMPARE} requests"
    elif not compared:
        p95_limit = (
            f"p95 not compared: no step after {steps[base]['phase']} had "
            f"{MIN_REQUESTS_TO_COMPARE} requests"
        )
    else:
        p95_limit = (
            f"p95 under {KNEE_P95_RATIO:g}× or +{KNEE_MIN_GAIN_MS:g} ms of "
            f"{steps[base]['phase']}"
        )
    limits = f"{p95_limit}, error rate under {_pct(KNEE_ERROR_RATE)}"
    return [
        f"knee: not reached up to {counted(steps[-1]['target_users'], 'user')} ({limits})",
        *note,
    ]
