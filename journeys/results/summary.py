"""The terminal summary at the end of a run: a compact journey table and the SLO verdict."""

from __future__ import annotations

from journeys.results.baseline import COMPARED
from journeys.results.baseline import SCOPE as BASELINE
from journeys.results.snapshot import Snapshot
from journeys.results.tables import fmt, paced, pct
from journeys.wording import aligned

COLUMNS = (
    # (header, minimum width, value): a column widens to its longest cell
    ("Journey", 14, lambda r: r["journey"]),
    ("Persona", 18, lambda r: r["persona"]),
    ("started", 8, lambda r: r["started"]),
    ("ok", 6, lambda r: r["succeeded"] + r["reconciled"]),
    ("recov", 6, lambda r: r["recovered"]),
    ("aband", 6, lambda r: r["abandoned"]),
    ("failed", 6, lambda r: r["failed"]),
    ("mism", 5, lambda r: r["mismatch"]),
    ("intr", 5, lambda r: r["interrupted"]),
    ("dup", 4, lambda r: r["duplicate_charges"]),
    ("att/pay", 7, lambda r: fmt(r["attempts_per_payment"])),
    ("decl obs/cfg", 13, lambda r: _declines(r)),
    ("p50", 6, lambda r: fmt(r["p50_ms"])),
    ("p95", 6, lambda r: fmt(r["p95_ms"])),
    ("p99", 6, lambda r: fmt(r["p99_ms"])),
    ("max", 6, lambda r: fmt(r["max_ms"])),
)
#: ``--journey-rate`` only, after ``started``: the starts its pace asked for, and those dropped.
PACE_COLUMNS = (
    ("asked", 8, lambda r: r["asked"]),
    ("dropped", 7, lambda r: r["dropped"]),
)
PACE_LEGEND = (
    "asked = starts --journey-rate asked for; dropped = those missed, as the user's journey "
    "before ran a whole interval or more past them"
)
#: Under the table: what its short headers count (the CSV and HTML report name them in full).
LEGEND = (
    "ok = succeeded (customers, probes) or reconciled (operators); recov = paid after a decline; "
    "mism = report mismatch; intr = users stopped mid-journey (end of the run, a profile ramping "
    "down, SIGTERM, Ctrl-C, a worker lost; --stop-timeout lets them finish); dup = duplicate charges; "
    "durations in ms"
)


def _declines(row: dict) -> str:
    observed, configured = row["decline_rate_observed"], row["decline_rate_configured"]
    if observed is None and configured is None:
        return ""
    return f"{pct(observed, 0) or '-'}/{pct(configured, 0) or '-'}"


def _table(rows: list[dict]) -> list[str]:
    """Header, rule and one line per row; journey and persona left-aligned, numbers right
    (names never cut, so two personas sharing a long prefix stay apart)."""
    columns = COLUMNS
    if paced(rows):
        columns = (*COLUMNS[:3], *PACE_COLUMNS, *COLUMNS[3:])
    header = [h for h, _, _ in columns]
    cells = [[str(get(row)) for _, _, get in columns] for row in rows]
    first, *lines = aligned([header, *cells], [m for _, m, _ in columns], left=2)
    return [first, "-" * len(first), *lines]


def lines(snapshot: Snapshot) -> list[str]:
    """The summary as lines of text (journey rows, then the verdict and each failed check)."""
    out = []
    if snapshot.rows:
        out += _table(snapshot.rows)
        out.append(LEGEND)
        if paced(snapshot.rows):
            out.append(PACE_LEGEND)
    else:
        out.append("No journeys were recorded.")
    out.append("")
    verdict = snapshot.verdict
    out.append(f"{verdict.result()} - targets: {verdict.targets.describe()}")
    failed = "FAILED" if verdict.judged else "NOT JUDGED"
    out += [f"  {failed}: {check.message}" for check in verdict.failures]
    # --slo-targets rows of journeys left out of this run ("not run: journey ...")
    out += [f"  {check.message}" for check in verdict.not_run]
    # run-wide checks that held are worth a line too (e.g. the service's books, --reconcile-run)
    out += [
        f"  ok: {c.message}" for c in verdict.checks if c.passed and c.scope == "run"
    ]
    # --baseline: the rows it did not compare (too few requests, in one run only)
    out += [
        f"  baseline: {c.message}"
        for c in verdict.checks
        if c.scope == BASELINE and c.passed and not c.metric.startswith(COMPARED)
    ]
    return out
