"""Per-phase request statistics: what each phase of a load profile did to the service.

HTTP requests only (Locust ``request`` events other than the ``journey`` entries), counted into
the phase that is running: requests, failures and a bounded response-time histogram per phase.

The phase comes from the shape's tick (about once a second). On a distributed run the master
tells every worker the current phase with each tick (message ``load_profile_phase``); workers
count, and ship what they counted since their last stats report to the master, which adds it up::

    book.start(schedule)   # master/standalone, when a profile run starts
    book.enter(2)          # tick: phase 2 is running (workers hear it from the master)
    book.record(...)       # each request, on the node that sent it
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from journeys.profiles.schedule import Schedule
from journeys.results.stats import Histogram

PHASE_MESSAGE = "load_profile_phase"
REPORT_KEY = "load_profile"


@dataclass
class PhaseStats:
    requests: int = 0
    failures: int = 0
    times: Histogram = field(default_factory=Histogram)

    def merge(self, other: PhaseStats) -> None:
        self.requests += other.requests
        self.failures += other.failures
        self.times.merge(other.times)


@dataclass
class PhaseBook:
    """This process's phase counters (on a worker: since its last report to the master)."""

    schedule: Schedule | None = None  # master/standalone only; workers just count
    current: int | None = None
    reached: int = -1  # the last phase entered
    stopped_at_s: float | None = None
    phases: dict[int, PhaseStats] = field(default_factory=dict)
    #: Told ``True`` when a phase starts being counted and ``False`` when counting stops: the
    #: hooks listen to requests only in between, so a steady run pays nothing per request.
    on_counting: Callable[[bool], None] | None = field(
        default=None, repr=False, compare=False
    )

    def start(self, schedule: Schedule | None) -> None:
        self.schedule, self.reached, self.stopped_at_s = schedule, -1, None
        self._set_current(None)
        self.phases.clear()

    def enter(self, index: int | None) -> None:
        self._set_current(index)
        if index is not None:
            self.reached = max(self.reached, index)

    def _set_current(self, index: int | None) -> None:
        counting = index is not None
        changed = counting != (self.current is not None)
        self.current = index
        if changed and self.on_counting is not None:
            self.on_counting(counting)

    def record(self, response_time: float | None, failed: bool) -> None:
        if self.current is None:
            return
        stats = self.phases.get(self.current)
        if stats is None:
            stats = self.phases[self.current] = PhaseStats()
        stats.requests += 1
        stats.failures += failed
        if response_time is not None:
            stats.times.add(response_time)

    def serialize(self) -> list[list]:
        return [
            [index, s.requests, s.failures, s.times.to_dict()]
            for index, s in self.phases.items()
        ]

    def reset(self) -> None:
        self.phases.clear()

    def merge(self, data: list[list]) -> None:
        for index, requests, failures, times in data:
            other = PhaseStats(int(requests), int(failures), Histogram.from_dict(times))
            self.phases.setdefault(int(index), PhaseStats()).merge(other)


book = PhaseBook()
