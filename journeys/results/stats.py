"""Journey statistics as plain, mergeable data: bounded histograms and counters.

Everything here serializes to msgpack/JSON-friendly dicts and merges by addition, so a worker can
ship what it counted since its last report and the master can add it up::

    book = JourneyBook()
    book.started("checkout", "budget_shopper")
    book.finished(result)                      # a JourneyResult
    data = book.serialize(); book.clear()      # worker: send the delta
    master_book.merge(data)                    # master: add it up

Resetting (Locust's "reset stats", ``--reset-stats``) forgets what was counted, but journeys in
flight at that moment count as started again: their outcomes arrive after the reset, and a funnel
must never show more outcomes than starts (Locust counts a request when it ends, so it needs no
such gauge).

Memory stays bounded: one entry per journey × persona, and durations live in rounded millisecond
buckets (``bucket_ms``, at most a few thousand keys), never in lists of samples.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import locust.stats
from locust.stats import calculate_response_time_percentile

from journeys.events import CUSTOMER_OUTCOMES, OPERATOR_OUTCOMES, JourneyResult

#: Every outcome a journey can end with, in the order tables show them: the customers' (and the
#: probes'), then the operators' own (``reconciled``, ``mismatch``).
OUTCOMES = CUSTOMER_OUTCOMES + tuple(
    o for o in OPERATOR_OUTCOMES if o not in CUSTOMER_OUTCOMES
)
#: The outcomes of journeys that ran to their end (``interrupted`` ones were cut off).
FINISHED_OUTCOMES = tuple(o for o in OUTCOMES if o != "interrupted")


def bucket_ms(ms: float) -> int:
    """A time rounded to three significant digits (147 → 147, 1047 → 1050, 23456 → 23500).

    Locust keeps two (1047 → 1000), so a p95 of 1047 ms passed a 1020 ms target. Locust's
    ``bucket_response_time`` is meant to be replaced like this: its tables, charts and CSV
    percentiles, the journeys' and the SLO verdict then all use these buckets (on every worker
    too: each imports this module).
    """
    if ms < 1000:
        return round(ms)
    if ms < 10_000:
        return int(round(ms, -1))
    if ms < 100_000:
        return int(round(ms, -2))
    return int(round(ms, -3))


locust.stats.bucket_response_time = bucket_ms


def within_samples(bucket: int, fastest: float, slowest: float) -> int:
    """A percentile's ``bucket`` kept within the fastest and slowest sample (as tables round
    them): a bucket rounds up or down (1007 → 1010, 144 → 140), and a percentile above the
    slowest or below the fastest sample would be a figure no sample had (Locust does this for
    its median only)."""
    return max(round(fastest), min(bucket, round(slowest)))


_locust_percentile = locust.stats.StatsEntry.get_response_time_percentile


def _percentile_within_samples(entry: locust.stats.StatsEntry, percent: float) -> int:
    """Locust's percentile of ``entry`` (its tables, CSV, HTML report), kept within the entry's
    samples as the journeys' and the SLO verdict's are: else a row showed a 95%ile of 1010 ms
    beside a max of 1008 ms, and the verdict's p95 of 1008 ms."""
    bucket = _locust_percentile(entry, percent)
    if not entry.response_times:
        return bucket
    return within_samples(
        bucket, entry.min_response_time or 0.0, entry.max_response_time
    )


locust.stats.StatsEntry.get_response_time_percentile = _percentile_within_samples


@dataclass
class Histogram:
    """Counts per rounded millisecond bucket (147 → 147, 3432 → 3430), plus the exact minimum
    and maximum, which keep percentiles within the samples' range."""

    buckets: Counter = field(default_factory=Counter)
    count: int = 0
    max: float = 0.0
    min: float = 0.0  # meaningful once count > 0

    def add(self, ms: float) -> None:
        self.buckets[bucket_ms(ms)] += 1
        # what min() and max() would keep, without their two calls per journey
        if not self.count or ms < self.min:
            self.min = ms
        self.count += 1
        if ms > self.max:  # noqa: PLR1730 (no max() call: once per journey)
            self.max = ms

    def merge(self, other: Histogram) -> None:
        if other.count:
            self.min = min(self.min, other.min) if self.count else other.min
        self.buckets.update(other.buckets)
        self.count += other.count
        self.max = max(self.max, other.max)

    def percentile(self, fraction: float) -> int | None:
        """The bucket ``fraction`` (0..1) of the samples fall within, kept within the samples
        (``within_samples``); None when empty."""
        if not self.count:
            return None
        bucket = calculate_response_time_percentile(self.buckets, self.count, fraction)
        return within_samples(bucket, self.min, self.max)

    def to_dict(self) -> dict[str, Any]:
        return {
            "buckets": [[k, v] for k, v in self.buckets.items()],
            "count": self.count,
            "max": self.max,
            "min": self.min,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        return cls(
            Counter({int(k): int(v) for k, v in data["buckets"]}),
            int(data["count"]),
            float(data["max"]),
            float(data["min"]),
        )


@dataclass
class JourneyCounters:
    """What one journey × persona did: outcomes, payments, the funnel and the duration histogram.

    Payment figures (attempts, payments, declines) come from journeys that reached an outcome;
    an ``interrupted`` journey may have been cut off before its first answer, which would bias the
    observed decline rate, so it only adds to its outcome count and duplicate charges. Its
    duration is left out too: cut off or stretched by the stop, it is not how long a journey
    takes (Locust's ``journey`` row leaves it out as well, and so does the journey p95 SLO).
    """

    started: int = 0
    outcomes: Counter = field(default_factory=Counter)
    attempts: int = 0
    payments: int = 0
    declined_payments: int = 0
    # payments whose first attempt ended neither paid nor declined: not in the decline rate
    unsettled_payments: int = 0
    # funnel: the first attempt (of any payment) was declined
    declined_journeys: int = 0
    retried_journeys: int = 0  # funnel: after a decline, the journey tried again
    duplicate_charges: int = 0
    #: ``--journey-rate``: starts the pace asked for that came a whole interval late or more
    dropped: int = 0
    durations: Histogram = field(default_factory=Histogram)

    def record(self, result: JourneyResult) -> None:
        self.outcomes[result.outcome] += 1
        self.duplicate_charges += result.duplicate_charges
        if result.outcome == "interrupted":
            return
        self.durations.add(result.duration_ms)
        self.attempts += result.attempts
        self.payments += result.payments
        self.declined_payments += result.declined_payments
        self.unsettled_payments += result.unsettled_payments
        self.declined_journeys += result.declined_payments > 0
        self.retried_journeys += bool(result.retried)

    def merge(self, other: JourneyCounters) -> None:
        self.started += other.started
        self.outcomes.update(other.outcomes)
        self.attempts += other.attempts
        self.payments += other.payments
        self.declined_payments += other.declined_payments
        self.unsettled_payments += other.unsettled_payments
        self.declined_journeys += other.declined_journeys
        self.retried_journeys += other.retried_journeys
        self.duplicate_charges += other.duplicate_charges
        self.dropped += other.dropped
        self.durations.merge(other.durations)

    @property
    def finished(self) -> int:
        """Journeys that reached a real outcome (interrupted ones left out)."""
        return sum(self.outcomes[outcome] for outcome in FINISHED_OUTCOMES)

    @property
    def asked(self) -> int:
        """``--journey-rate``: the starts the pace asked for, made or dropped."""
        return self.started + self.dropped

    @property
    def attempts_per_payment(self) -> float | None:
        return self.attempts / self.payments if self.payments else None

    @property
    def settled_payments(self) -> int:
        """Payments whose first attempt was paid or declined: what a decline rate is over."""
        return self.payments - self.unsettled_payments

    @property
    def decline_rate(self) -> float | None:
        """Observed share of settled payments whose first attempt was declined."""
        settled = self.settled_payments
        return self.declined_payments / settled if settled else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "outcomes": dict(self.outcomes),
            "attempts": self.attempts,
            "payments": self.payments,
            "declined_payments": self.declined_payments,
            "unsettled_payments": self.unsettled_payments,
            "declined_journeys": self.declined_journeys,
            "retried_journeys": self.retried_journeys,
            "duplicate_charges": self.duplicate_charges,
            "dropped": self.dropped,
            "durations": self.durations.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JourneyCounters:
        return cls(
            started=int(data["started"]),
            outcomes=Counter({str(k): int(v) for k, v in data["outcomes"].items()}),
            attempts=int(data["attempts"]),
            payments=int(data["payments"]),
            declined_payments=int(data["declined_payments"]),
            unsettled_payments=int(data["unsettled_payments"]),
            declined_journeys=int(data["declined_journeys"]),
            retried_journeys=int(data["retried_journeys"]),
            duplicate_charges=int(data["duplicate_charges"]),
            dropped=int(data["dropped"]),
            durations=Histogram.from_dict(data["durations"]),
        )


class JourneyBook:
    """All journey counters of a run, keyed by (journey, persona).

    Besides the counters, the book keeps a gauge of journeys in flight: this process's own
    (``in_flight``, started and not yet finished) and, on a master, the latest one each worker
    reported (``merge(..., in_flight=..., source=...)``). Clearing the counters leaves the gauge.
    """

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], JourneyCounters] = {}
        self.in_flight: Counter = Counter()
        self.workers_in_flight: dict[str, Counter] = {}

    def _entry(self, journey: str, persona: str) -> JourneyCounters:
        key = (journey, persona)
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = JourneyCounters()
        return entry

    def started(self, journey: str, persona: str) -> None:
        key = (journey, persona)
        # once per journey: the entry is nearly always there, so look before calling _entry
        (self.entries.get(key) or self._entry(journey, persona)).started += 1
        self.in_flight[key] += 1

    def dropped(self, journey: str, persona: str, count: int) -> None:
        """``count`` starts the pace asked for before this journey were dropped."""
        self._entry(journey, persona).dropped += count

    def finished(self, result: JourneyResult) -> None:
        key = (result.journey, result.persona)
        (self.entries.get(key) or self._entry(*key)).record(result)
        if self.in_flight[key] > 0:
            self.in_flight[key] -= 1

    def clear(self) -> None:
        """Forget the counters (a worker after sending them); the in-flight gauge stays."""
        self.entries = {}

    def reset(self) -> None:
        """Forget the counters; journeys in flight here or on the workers count as started."""
        self.entries = {}
        for gauge in (self.in_flight, *self.workers_in_flight.values()):
            for (journey, persona), count in gauge.items():
                if count > 0:
                    self._entry(journey, persona).started += count

    def forget_workers_except(self, live: set[str]) -> None:
        """Drop the in-flight gauges of workers that are gone (quit, killed, missing)."""
        for worker in set(self.workers_in_flight) - live:
            del self.workers_in_flight[worker]

    def restart(self) -> None:
        """A new test: forget everything, the in-flight gauges too."""
        self.entries = {}
        self.in_flight = Counter()
        self.workers_in_flight = {}

    def in_flight_report(self) -> list[list]:
        """This process's journeys in flight, for a report to the master."""
        return [[j, p, n] for (j, p), n in self.in_flight.items() if n > 0]

    def __bool__(self) -> bool:
        return bool(self.entries)

    def serialize(self) -> list[dict[str, Any]]:
        return [
            {"journey": j, "persona": p, **c.to_dict()}
            for (j, p), c in self.entries.items()
        ]

    def merge(
        self,
        data: list[dict[str, Any]],
        in_flight: list[list] | None = None,
        source: str | None = None,
    ) -> None:
        """Add a worker's counters; ``in_flight`` is its gauge at the time (replaces the last)."""
        for item in data:
            self._entry(item["journey"], item["persona"]).merge(
                JourneyCounters.from_dict(item)
            )
        if source is not None and in_flight is not None:
            self.workers_in_flight[source] = Counter(
                {(str(j), str(p)): int(n) for j, p, n in in_flight}
            )

    def with_lost_workers(self, lost: list[str]) -> JourneyBook:
        """The book as the results show it when workers were lost: the journeys each had in
        flight at its last report were counted as started, and their outcomes will never come,
        so they count as ``interrupted`` (else the outcomes fall short of the journeys started).
        A copy: a worker that comes back reports those outcomes itself."""
        gauges = [self.workers_in_flight.get(worker) or Counter() for worker in lost]
        if not any(gauges):
            return self
        view = JourneyBook()
        view.merge(self.serialize())
        for gauge in gauges:
            for (journey, persona), count in gauge.items():
                view._entry(journey, persona).outcomes["interrupted"] += max(count, 0)
        return view

    def journeys(self) -> list[str]:
        return sorted({j for j, _ in self.entries})

    def personas(self, journey: str | None = None) -> list[str]:
        return sorted({p for j, p in self.entries if journey is None or j == journey})

    def get(self, journey: str, persona: str) -> JourneyCounters:
        return self.entries.get((journey, persona)) or JourneyCounters()

    def total(
        self, journey: str | None = None, persona: str | None = None
    ) -> JourneyCounters:
        """The counters of one journey (all personas), one persona (all journeys), or everything."""
        total = JourneyCounters()
        for (j, p), counters in self.entries.items():
            if (journey is None or j == journey) and (persona is None or p == persona):
                total.merge(counters)
        return total
