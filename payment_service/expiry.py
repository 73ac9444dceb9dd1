"""How long idempotency keys live, and their purge in the background.

A key's stored answer is replayed for ``--key-ttl`` (default 24 h, as Stripe prunes its keys);
after that the key is free again (``Store.answer_for`` checks the age, so this holds whether the
purge has run or not). Kept forever, the keys and their indexes grew the database by ~0.6 KB per
payment, of ~1 KB in all (~7 GB a day at 130 payments/s). ``purge_keys`` deletes expired keys
every minute in small batches, in a thread, with a pause after each: ~2,000 keys/s at most, and
/pay answers as fast as without it. Payments are never deleted: reports sum them, and a key's
expiry forgets only which answer the key got::

    python -m payment_service --key-ttl 24h     # the default
    python -m payment_service --key-ttl 10m     # a soak that should not fill the disk
    python -m payment_service --key-ttl forever # keep every key (the database grows)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable

DEFAULT_KEY_TTL = dt.timedelta(hours=24)
KEEP_FOREVER = "forever"
#: The shortest and longest lifetime ``--key-ttl`` takes.
TTL_RANGE = (dt.timedelta(seconds=1), dt.timedelta(days=3650))
TTL_HELP = (
    "a number with s, m, h or d (e.g. 90s, 30m, 24h, 7d) from 1s to 3650d, or forever"
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
log = logging.getLogger("payment_service")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")

#: Keys deleted per transaction, and the pause after each: 500 with 0.01 s between them
#: (~19,000 keys/s) cut the payments a lone client made by half and doubled their p95 while
#: 200k expired keys went; at this pace (~2,000 keys/s, far above 130 payments/s) a 60-user
#: Locust run's /pay p95 and p99 stay as without a purge.
PURGE_BATCH = 200
PURGE_PAUSE_S = 0.1
#: How often expired keys are looked for (sooner with a shorter lifetime).
PURGE_EVERY_S = 60.0


def parse_ttl(text: str) -> dt.timedelta | None:
    """``--key-ttl``'s value as a lifetime, None for ``forever``; ValueError naming the fix."""
    value = text.strip().lower()
    if value == KEEP_FOREVER:
        return None
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ValueError(f"{text!r} is not a lifetime: use {TTL_HELP}")
    ttl = dt.timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    if not TTL_RANGE[0] <= ttl <= TTL_RANGE[1]:
        raise ValueError(f"{text} is out of range: use {TTL_HELP}")
    return ttl


def describe(ttl: dt.timedelta | None) -> str:
    """``24h``, ``90m``, ``forever``: the lifetime as the start-up line says it."""
    if ttl is None:
        return KEEP_FOREVER
    seconds = ttl.total_seconds()
    for unit in "hm":
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{int(seconds // _UNITS[unit])}{unit}"
    return f"{seconds:g}s"


async def purge_keys(
    purge_batch: Callable[[int], Awaitable[int]], ttl: dt.timedelta
) -> None:
    """Run for the app's life: every minute (or every ``ttl``, when shorter) await
    ``purge_batch(PURGE_BATCH)`` until it deletes less than a batch, pausing after each one.
    The first round runs at once: a database that was stopped for a day is cleaned at start."""
    every = min(PURGE_EVERY_S, ttl.total_seconds())
    while True:
        try:
            while await purge_batch(PURGE_BATCH) == PURGE_BATCH:
                await asyncio.sleep(PURGE_PAUSE_S)
        except sqlite3.Error as exc:  # e.g. another process held the database 10 s
            log.warning(
                "expired idempotency keys not purged, retried in %gs: %s", every, exc
            )
        await asyncio.sleep(every)
