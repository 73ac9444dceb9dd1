"""The terminal summary at the end of a run: a compact journey table and the SLO verdict."""

from __future__ import annotations

from journeys.results.snapshot import Snapshot
from journeys.results.tables import fmt, pct

COLUMNS = (
    # (header, width, value)
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
)


def _declines(row: dict) -> str:
    observed, configured = row["decline_rate_observed"], row["decline_rate_configured"]
    if observed is None and configured is None:
        return ""
    return f"{pct(observed, 0) or '-'}/{pct(configured, 0) or '-'}"


def _cell(value, width: int, left: bool) -> str:
    text = str(value)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.ljust(width) if left else text.rjust(width)


def lines(snapshot: Snapshot) -> list[str]:
    """The summary as lines of text (journey rows, then the verdict and each failed check)."""
    out = []
    if snapshot.rows:
        out.append(" ".join(_cell(h, w, i < 2) for i, (h, w, _) in enumerate(COLUMNS)))
        out.append("-" * (sum(w for _, w, _ in COLUMNS) + len(COLUMNS) - 1))
        for row in snapshot.rows:
            out.append(
                " ".join(
                    _cell(get(row), w, i < 2) for i, (_, w, get) in enumerate(COLUMNS)
                )
            )
    else:
        out.append("No journeys were recorded.")
    out.append("")
    verdict = snapshot.verdict
    out.append(
        f"SLO verdict: {'PASS' if verdict.passed else 'FAIL'} ({len(verdict.checks)} checks, "
        f"{len(verdict.failures)} failed) - targets: {verdict.targets.describe()}"
    )
    out += [f"  FAILED: {check.message}" for check in verdict.failures]
    return out
