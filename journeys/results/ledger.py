"""The generator's own books: every payment the service confirmed (201 with an id), per currency.

After a run, a report over the run's time range must equal this ledger: nothing lost from the
books, nothing charged twice. The API client records each confirmed payment once (resends with the
same key return the same payment and are not counted again). Workers send their entries to the
master with each stats report, like the journey counters. With ``--csv PREFIX`` the ledger is
written to ``PREFIX_ledger.csv`` (``currency, payments, amount_minor, unknown_payments,
unknown_amount_minor``). "Unknown" payments got no readable answer even after every resend with
the same key (the service was down for longer than the client retries), or were in flight when
the run stopped their user, or were an error probe's bad request the service took (a 2xx): they
may or may not exist, so a report may hold up to that many more payments than the ledger, never
fewer. (A payment given up after 429s alone is not unknown: a
429 stores nothing.)
Every persona's payments are in it, the probers' too (edge probes and the first use of the key
the error probes then reuse go through the same client).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO

from locust import events

REPORT_KEY = "ledger"
COLUMNS = (
    "currency",
    "payments",
    "amount_minor",
    "unknown_payments",
    "unknown_amount_minor",
)

#: currency -> [payments, amount, unknown payments, unknown amount] (amounts in minor units)
entries: dict[str, list[int]] = {}


def record(currency: str, amount: int, *, unknown: bool = False) -> None:
    """One confirmed payment (or, with ``unknown``, one whose fate the client could not learn)."""
    entry = entries.setdefault(currency, [0, 0, 0, 0])
    entry[2 * unknown] += 1
    entry[2 * unknown + 1] += amount


def totals() -> dict[str, dict[str, int]]:
    """The ledger in the report's shape: ``{"USD": {"count": 12, "amount": 340000}}``."""
    return {
        c: {"count": e[0], "amount": e[1]} for c, e in sorted(entries.items()) if e[0]
    }


#: currency -> [unknown payments, unknown amount] of the previous test in this process: their
#: requests may still land once the next one started (a web UI stop, then a quick start).
carried: dict[str, list[int]] = {}


@events.test_start.add_listener
def _reset(**_kwargs) -> None:
    carried.clear()
    carried.update({c: e[2:] for c, e in entries.items() if e[2]})
    entries.clear()


@events.report_to_master.add_listener
def _send(client_id: str, data: dict, **_kwargs) -> None:
    if entries:
        data[REPORT_KEY] = {c: list(v) for c, v in entries.items()}
        entries.clear()


@events.worker_report.add_listener
def _merge(client_id: str, data: dict, **_kwargs) -> None:
    for currency, values in (data.get(REPORT_KEY) or {}).items():
        entry = entries.setdefault(currency, [0, 0, 0, 0])
        for i, value in enumerate(values):
            entry[i] += value


def write(out: IO[str]) -> None:
    """The ledger as CSV (``PREFIX_ledger.csv``, and the web UI's download)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for currency, entry in sorted(entries.items()):
        writer.writerow([currency, *entry])


def write_csv(prefix: str) -> Path:
    path = Path(f"{prefix}_ledger.csv")
    with open(path, "w", newline="") as f:
        write(f)
    return path
