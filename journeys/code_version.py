"""Which version of this tool a process runs: a fingerprint of its source files.

Master and workers exchange journey counters, histograms and the ledger in a shape that changes
with the code; a worker from another checkout or image would be merged wrongly, or break the
master's merge (an older worker's counters lack a field: every report of it was dropped, its
journeys missing from the results). So the master sends its fingerprints with the options of
each spawn (a worker compares them before its users start) and every worker report carries the
worker's (the master compares them: an older worker does not check); ``same_personas`` refuses
a worker whose code differs, naming the files.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from journeys.wording import named_differences

#: Report key (worker → master) and spawn option (master → workers).
KEY = "journeys_code"
ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("journeys", "payment_contract")
#: Files named in a message, at most.
NAMED = 5


@cache
def fingerprints() -> dict[str, str]:
    """{path relative to the checkout: short hash of its content} for the tool's Python files."""
    paths = sorted(
        path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    )
    return {
        path.relative_to(ROOT).as_posix(): hashlib.sha256(
            path.read_bytes()
        ).hexdigest()[:16]
        for path in paths
    }


def same_as_ours(report: dict) -> bool:
    """Master: does this worker report come from a process running this very code?"""
    return report.get(KEY) == fingerprints()


def differences(masters: dict[str, str], workers: dict[str, str]) -> str:
    """Which files differ between the master's fingerprints and a worker's, by name."""
    return named_differences(masters, workers, "other content", most=NAMED)
