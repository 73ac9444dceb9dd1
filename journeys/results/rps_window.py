"""What Locust keeps each second per stats entry: a window of counts, and response-time copies
only where they are read.

Each stats entry (and ``Aggregated``) counts its requests and failures per second in a dict, for
its current RPS, which reads the last 12 s. Locust never forgets a second, so a standalone
generator or a master grows by a key per entry every second the run lasts: a 5-minute run of
150 users (35 entries) grew by some 12 MB an hour, ~290 MB over a day's soak (workers send theirs
with each report and start again). Once a second per entry, as the entry moves on to a new second
and caches its response times, the seconds older than ``KEEP_S`` are dropped.

That caching copies the entry's response-time counts and keeps 20 copies, for its *current*
(last 10 s) percentiles. Only ``Aggregated``'s are read (the charts, the web UI, the history
CSV), and every entry's only with ``--csv-full-history``. With our 3-digit buckets
(``stats.bucket_ms``) a copy holds up to ~1,900 keys for times up to the 10 s request timeout,
so an entry's 20 copies take up to ~2.8 MB: those of 34 entries grew a standalone generator by
~8 MB an hour as slower times filled new buckets, towards ~95 MB. So only those read are made.
"""

from __future__ import annotations

from collections import defaultdict

import locust.stats
from locust import events

from journeys.library_patch import original

#: Seconds of per-second counts kept: the current RPS reads 12, Locust's percentile cache 20.
KEEP_S = 60

_cache_response_times = original(
    locust.stats.StatsEntry, "_cache_response_times", "results/rps_window"
)
#: Copy every entry's response times (``--csv-full-history``, or Locust run as a library),
#: not only ``Aggregated``'s.
_every_entry = True
#: ``Aggregated``'s name and method (``RequestStats.total``, which is set only after the entry
#: is made, and a reset makes a new one)
_AGGREGATED = ("Aggregated", "")


@events.init.add_listener
def _copies_read(environment, **_kwargs) -> None:
    global _every_entry
    options = environment.parsed_options
    _every_entry = options is None or bool(
        getattr(options, "stats_history_enabled", False)
    )


def _cache_and_forget(entry: locust.stats.StatsEntry, t: int) -> None:
    """Locust's caching of the second ``t``'s response times where they are read, then the old
    seconds dropped (the dict rebuilt once it holds twice the window: a few key checks a second,
    amortized)."""
    if _every_entry or (entry.name, entry.method) == _AGGREGATED:
        _cache_response_times(entry, t)
    for name in ("num_reqs_per_sec", "num_fail_per_sec"):
        counts = getattr(entry, name)
        if len(counts) > 2 * KEEP_S:
            kept = {s: n for s, n in counts.items() if s > t - KEEP_S}
            setattr(entry, name, defaultdict(int, kept))  # Locust adds with ``+= 1``


locust.stats.StatsEntry._cache_response_times = _cache_and_forget
