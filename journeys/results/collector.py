"""Listens to the journey events and counts them; times each journey as a Locust stats entry.

Every finished journey (not ``interrupted``) is also logged in Locust's own statistics as an
entry of type ``journey`` with the journey's name, so it shows in Locust's statistics table,
charts, CSV and HTML beside the requests. Unexpected outcomes (``failed``, ``mismatch``) are
logged as failures carrying the journey's detail, so they land in Locust's failures table too.

The entries are logged directly rather than through ``events.request``: that event would also
add every journey to Locust's ``Aggregated`` row, inflating the run's requests per second,
failure share and percentiles with whole journeys. ``Aggregated`` stays HTTP requests only.
"""

from __future__ import annotations

from locust import events
from locust.runners import STATE_MISSING, MasterRunner
from locust.stats import StatsError

from journeys.events import (
    UNEXPECTED_OUTCOMES,
    JourneyResult,
    journey_dropped,
    journey_finished,
    journey_started,
)
from journeys.results.stats import JourneyBook
from journeys.scrub_sinks import scrubbed_error

#: Locust stats entries of this type are whole journeys, not HTTP requests.
JOURNEY_REQUEST_TYPE = "journey"
#: Distinct failure messages kept per journey; after that failures share one message, so a run
#: with a failure per journey (each naming its own batch) cannot grow Locust's error table forever.
MAX_DISTINCT_DETAILS = 50

#: This process's counters: on a worker, what it counted since its last report to the master.
book = JourneyBook()
_environment = None
_details_seen: dict[str, set[str]] = {}


class JourneyFailure(Exception):
    """A journey ended with an outcome that is a defect of the service (failed, mismatch)."""

    # Locust's failures table shows repr(): keep it the plain message
    def __repr__(self) -> str:
        return str(self)


@events.init.add_listener
def _remember_environment(environment, **_kwargs) -> None:
    global _environment
    _environment = environment


@events.test_start.add_listener
def _reset_on_start(**_kwargs) -> None:
    book.restart()
    _details_seen.clear()


def connected_workers(runner: MasterRunner) -> set[str]:
    """Ids of the master's workers that are still there (not missing)."""
    return {w.id for w in runner.clients.values() if w.state != STATE_MISSING}


def _reset() -> None:
    """Reset the book; on a master, journeys in flight count only on workers still connected."""
    runner = _environment.runner if _environment is not None else None
    if isinstance(runner, MasterRunner):
        book.forget_workers_except(connected_workers(runner))
    book.reset()


@events.reset_stats.add_listener
def _reset_on_request(**_kwargs) -> None:
    """The web UI's reset (standalone or master; workers are not told and keep counting)."""
    _reset()


@events.spawning_complete.add_listener
def _reset_after_ramp_up(**_kwargs) -> None:
    """``--reset-stats``: Locust forgets the ramp-up's requests, so we forget its journeys.

    Each process resets when its spawning completes, as Locust does: the master its sum, then
    (told by the master) each worker what it has not reported yet. The journeys in flight count
    as started again where they run, so the master only clears its sum.
    """
    if _environment is None or not _environment.reset_stats:
        return
    if isinstance(_environment.runner, MasterRunner):
        book.clear()
    else:
        book.reset()


@journey_started.add_listener
def on_journey_started(journey: str, persona: str, **_kwargs) -> None:
    book.started(journey, persona)


@journey_dropped.add_listener
def on_journey_dropped(journey: str, persona: str, count: int, **_kwargs) -> None:
    book.dropped(journey, persona, count)


@journey_finished.add_listener
def on_journey_finished(result: JourneyResult, **_kwargs) -> None:
    book.finished(result)
    if result.outcome == "interrupted" or _environment is None:
        return
    stats = _environment.stats
    entry = stats.get(result.journey, JOURNEY_REQUEST_TYPE)
    entry.log(result.duration_ms, 0)
    if result.outcome in UNEXPECTED_OUTCOMES:
        # Locust's RequestStats.log_error without its total: the entry and the failures table
        error = scrubbed_error(JourneyFailure(_failure_message(result)))
        entry.log_error(error)
        key = StatsError.create_key(JOURNEY_REQUEST_TYPE, result.journey, error)
        if key not in stats.errors:
            stats.errors[key] = StatsError(JOURNEY_REQUEST_TYPE, result.journey, error)
        stats.errors[key].occurred()


def _failure_message(result: JourneyResult) -> str:
    if not result.detail:
        return result.outcome
    seen = _details_seen.setdefault(result.journey, set())
    if result.detail in seen or len(seen) < MAX_DISTINCT_DETAILS:
        seen.add(result.detail)
        return f"{result.outcome}: {result.detail}"
    return f"{result.outcome} (more than {MAX_DISTINCT_DETAILS} distinct details; see the first ones)"
