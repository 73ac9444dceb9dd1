"""SQLite storage: payments (never the card number) and idempotency records, in one WAL database.

The service runs one process with one event loop, so a single connection used from that loop is
enough and keeps every write atomic: a payment and the idempotent answer for its key are committed
together, so a replay can never disagree with the books. The key is checked again inside that
write transaction: another service process on the same file (``make run`` twice, a scaled
container) cannot see this one's keys in flight, and would otherwise charge the key a second time.
Reports read a snapshot on a connection of their own, off the event loop (``report_rows``).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from payment_service.expiry import DEFAULT_KEY_TTL

SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('succeeded', 'declined')),
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    decline_code TEXT,
    customer_id TEXT NOT NULL,
    batch_id TEXT,
    description TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    idempotency_key TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_batch ON payments (batch_id);
CREATE INDEX IF NOT EXISTS payments_created ON payments (created_at);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    response TEXT NOT NULL,
    payment_id TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at);
"""


#: The columns each table must have (a file made by another application may share a name).
COLUMNS = {
    "payments": {
        "id", "status", "amount", "currency", "brand", "last4", "fingerprint", "decline_code",
        "customer_id", "batch_id", "description", "metadata", "idempotency_key", "created_at",
    },
    "idempotency_keys": {
        "key", "request_hash", "status_code", "response", "payment_id", "created_at"
    },
}  # fmt: skip


def timestamp(moment: dt.datetime) -> str:
    """Stored form of a UTC instant: fixed-width ISO 8601, so text order is time order.
    ``isoformat`` pads the year to four digits (glibc's ``%Y`` wrote the year 500 as "500")."""
    utc = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """The answer first given for an idempotency key."""

    request_hash: str
    status_code: int
    response: dict
    payment_id: str | None


class KeyTaken(Exception):
    """The key got its answer from another writer of this database while this request was in flight."""

    def __init__(self, stored: StoredAnswer) -> None:
        super().__init__("idempotency key already answered")
        self.stored = stored


class Store:
    """The service's database. Open with ``Store(path)``; all methods are short transactions.
    An idempotency key's answer lives ``key_ttl`` (None: forever)."""

    def __init__(
        self, path: str | Path, key_ttl: dt.timedelta | None = DEFAULT_KEY_TTL
    ) -> None:
        self.path = Path(path)
        self.key_ttl = key_ttl
        #: ``--db :memory:`` is this connection's alone: reports read it here, on the event loop
        self.in_memory = str(path) == ":memory:"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = self._connect()
        #: the purge's connection (``purge_keys``), opened at its first use
        self._purger: sqlite3.Connection | None = None
        self._purge_lock = threading.Lock()
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self._check_columns()

    def _check_columns(self) -> None:
        """Refuse a file whose tables were made by something else (every write would fail)."""
        for table, needed in COLUMNS.items():
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            missing = sorted(needed - have)
            if missing:
                raise sqlite3.DatabaseError(
                    f"its {table} table lacks {', '.join(missing)}: another application's file"
                )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=10
        )
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: no fsync per commit
        return db

    def close(self) -> None:
        with self._purge_lock:  # a purge's batch in its thread ends first
            if self._purger not in (None, self.db):
                self._purger.close()
            self._purger = None
        self.db.close()

    def answer_for(self, key: str, now: dt.datetime) -> StoredAnswer | None:
        """The stored answer for a key younger than ``key_ttl``, else None (an expired key is
        free again, purged or not)."""
        row = self.db.execute(
            "SELECT request_hash, status_code, response, payment_id, created_at FROM idempotency_keys WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None or self._expired(row[4], now):
            return None
        return StoredAnswer(row[0], row[1], json.loads(row[2]), row[3])

    def _expired(self, created_at: str, now: dt.datetime) -> bool:
        return self.key_ttl is not None and created_at < timestamp(now - self.key_ttl)

    def purge_keys(self, now: dt.datetime, limit: int) -> int:
        """Delete up to ``limit`` keys older than ``key_ttl`` (oldest first, by the
        ``created_at`` index) in one short transaction; returns how many. Their payments stay.
        On a connection of its own, so it can run in a thread (``asyncio.to_thread``): the
        checkpoints its deletes cause took 30-70 ms each, which on the event loop held every
        /pay that long. A database in memory is purged on the service's connection."""
        if self.key_ttl is None:
            return 0
        with self._purge_lock:
            if self._purger is None:
                self._purger = self.db if self.in_memory else self._connect()
            return self._purger.execute(
                "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM "
                "idempotency_keys WHERE created_at < ? ORDER BY created_at LIMIT ?)",
                (timestamp(now - self.key_ttl), limit),
            ).rowcount

    def record_payment(
        self,
        payment: dict,
        key: str,
        request_hash: str,
        status_code: int,
        response: dict,
        now: dt.datetime,
        replace: bool = False,
    ) -> None:
        """Insert the payment and its idempotent answer in one transaction; ``KeyTaken`` (nothing
        stored) when the key already has a live answer, unless ``replace`` (the replay-charges fault)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            stored = None if replace else self.answer_for(key, now)
            if stored is not None:
                raise KeyTaken(stored)
            self.db.execute(
                "INSERT INTO payments (id, status, amount, currency, brand, last4, fingerprint, decline_code, "
                "customer_id, batch_id, description, metadata, idempotency_key, created_at) "
                "VALUES (:id, :status, :amount, :currency, :brand, :last4, :fingerprint, :decline_code, "
                ":customer_id, :batch_id, :description, :metadata, :idempotency_key, :created_at)",
                {
                    **payment,
                    "metadata": json.dumps(payment["metadata"], ensure_ascii=False),
                },
            )
            self.db.execute(
                "INSERT OR REPLACE INTO idempotency_keys (key, request_hash, status_code, response, payment_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    request_hash,
                    status_code,
                    json.dumps(response),
                    payment["id"],
                    payment["created_at"],
                ),
            )

    def report_rows(
        self,
        batch_id: str | None,
        start: str | None,
        end: str | None,
        latest: bool = False,
    ) -> tuple[list[tuple], tuple | None]:
        """(status, currency, brand, count, amount) groups for payments matching the filter, and
        with ``latest`` (currency, brand, amount) of the newest succeeded one (report-tamper
        fault), from one snapshot. Read on a connection of its own, so it can run in a thread
        (``asyncio.to_thread``): a report over many payments takes ~0.2 s per 300k on the event
        loop, and held every payment and /health that long; in WAL mode it reads while the
        service's connection writes. A database in memory is read on the service's connection,
        on the event loop (``in_memory``)."""
        reader = (
            self.db
            if self.in_memory
            else sqlite3.connect(self.path, isolation_level=None, timeout=10)
        )
        try:
            reader.execute("BEGIN")  # both queries read one snapshot
            where, params = _where(batch_id, start, end)
            rows = reader.execute(
                f"SELECT status, currency, brand, COUNT(*), SUM(amount) FROM payments{where} "
                "GROUP BY status, currency, brand",
                params,
            ).fetchall()
            newest = None
            if latest:
                where, params = _where(batch_id, start, end, "status = 'succeeded'")
                newest = reader.execute(
                    f"SELECT currency, brand, amount FROM payments{where} "
                    "ORDER BY created_at DESC LIMIT 1",
                    params,
                ).fetchone()
            return rows, newest
        finally:
            if reader is self.db:
                reader.execute("ROLLBACK")  # the read transaction; nothing was written
            else:
                reader.close()


def _where(
    batch_id: str | None, start: str | None, end: str | None, *extra: str
) -> tuple[str, list]:
    clauses, params = list(extra), []
    for clause, value in (
        ("batch_id = ?", batch_id),
        ("created_at >= ?", start),
        ("created_at < ?", end),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
