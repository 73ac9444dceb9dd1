"""Locust's per-second request and failure counts keep a window, not every second of the run.

Each stats entry (and ``Aggregated``) counts its requests and failures per second in a dict, for
its current RPS, which reads the last 12 s. Locust never forgets a second, so a standalone
generator or a master grows by a key per entry every second the run lasts: a 5-minute run of
150 users (35 entries) grew by some 12 MB an hour, ~290 MB over a day's soak (workers send theirs
with each report and start again). Once a second per entry, as the entry moves on to a new second
and caches its response times, the seconds older than ``KEEP_S`` are dropped.
"""

from __future__ import annotations

from collections import defaultdict

import locust.stats

from journeys.library_patch import original

#: Seconds of per-second counts kept: the current RPS reads 12, Locust's percentile cache 20.
KEEP_S = 60

_cache_response_times = original(
    locust.stats.StatsEntry, "_cache_response_times", "results/rps_window"
)


def _cache_and_forget(entry: locust.stats.StatsEntry, t: int) -> None:
    """Locust's caching of the second ``t``'s response times, then the old seconds dropped
    (the dict rebuilt once it holds twice the window: a few key checks a second, amortized)."""
    _cache_response_times(entry, t)
    for name in ("num_reqs_per_sec", "num_fail_per_sec"):
        counts = getattr(entry, name)
        if len(counts) > 2 * KEEP_S:
            kept = {s: n for s, n in counts.items() if s > t - KEEP_S}
            setattr(entry, name, defaultdict(int, kept))  # Locust adds with ``+= 1``


locust.stats.StatsEntry._cache_response_times = _cache_and_forget
