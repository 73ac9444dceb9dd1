"""What every journey shares: its persona, data, API client, think time and outcome reporting."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Self

from gevent import GreenletExit
from locust import SequentialTaskSet
from locust.exception import InterruptTaskSet, StopUser

from journeys import tracing
from journeys.events import (
    JourneyResult,
    journey_dropped,
    journey_finished,
    journey_started,
)

#: Exceptions that mean "the run or the user stopped us", never a failure of the service.
STOPPED = (GreenletExit, StopUser, InterruptTaskSet)


@dataclass(slots=True)
class JourneyRun:
    """One journey in flight: times it, counts its attempts and reports its outcome once.

    Use as a context manager; ``finish`` sets the outcome. Leaving the block because the run
    stopped records ``interrupted``; leaving it on an unexpected exception records ``failed``.
    """

    journey: str
    persona: str
    #: Sent as ``metadata.journey_id`` with each of the journey's payments, to group them.
    journey_id: str = ""
    attempts: int = 0
    payments: int = 0
    declined_payments: int = 0
    unsettled_payments: int = 0
    retried: bool = False
    duplicate_charges: int = 0
    _started: float = 0.0
    _done: bool = False
    _span_cm: object = None
    _span: object = None
    #: ``--journey-rate``: the user's pace (its missed starts count if the user is stopped)
    pace: object = None

    def __enter__(self) -> Self:
        self._started = time.perf_counter()
        journey_started.fire(journey=self.journey, persona=self.persona)
        if tracing.enabled():
            self._span_cm = tracing.journey_span(self.journey, self.persona)
            self._span = self._span_cm.__enter__()
        else:  # no span to enter, tag and leave (its calls were ~4 per journey)
            self._span = tracing.NO_SPAN
        return self

    def tag(self, key: str, value) -> None:
        """Tag the journey's trace span (e.g. ``batch_id``)."""
        self._span.set_tag(key, value)

    def finish(self, outcome: str, detail: str = "") -> None:
        if self._done:
            return
        self._done = True
        if self._span_cm is not None:
            self._span.set_tag("outcome", outcome)
            if detail:  # why, for every outcome that has a reason (abandoned too)
                self._span.set_tag("outcome.reason", detail)
            if detail and outcome in ("failed", "mismatch"):
                self._span.set_error(detail)
        journey_finished.fire(
            result=JourneyResult(
                journey=self.journey,
                persona=self.persona,
                outcome=outcome,
                duration_ms=(time.perf_counter() - self._started) * 1000,
                attempts=self.attempts,
                payments=self.payments,
                declined_payments=self.declined_payments,
                unsettled_payments=self.unsettled_payments,
                retried=self.retried,
                duplicate_charges=self.duplicate_charges,
                detail=detail,
            )
        )

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, STOPPED):
            if self.pace is not None:  # a user stopped mid-run (a profile ramping down)
                self.pace.drop_missed()
            self.finish("interrupted")
        elif exc_type is not None:
            self.finish("failed", f"{exc_type.__name__}: {exc}")
        if self._span_cm is not None:
            self._span_cm.__exit__(exc_type, exc, tb)
        return False


class Journey(SequentialTaskSet):
    """Base of every journey: ``self.persona``, ``self.data``, ``self.api`` come from the user.

    Think time is an explicit first step (``think``) rather than Locust's ``wait_time`` so a
    journey's duration can exclude it. With ``--journey-rate`` the user's pace takes its place.
    """

    #: Locust's wait after each task: none, but ``think``'s pause when it passes one (``_pause``)
    _pause_s = 0.0
    #: Journeys that should hand control back to the user after one pass (users with several journeys).
    one_pass = False
    #: The journey's name (``checkout``): its requests' prefix (``checkout: pay``), its
    #: ``--slo-targets`` rows', and how the results tell which journeys a run's classes run.
    journey_name = ""

    def __init__(self, parent) -> None:
        super().__init__(parent)
        # Locust makes a journey when its user runs it, after the user's on_start: read once
        # here, not through a property on each use (~5 calls per journey)
        user = self.user
        self.persona = user.persona
        self.data = user.data
        self.api = user.api
        self.pace = getattr(user, "pace", None)
        #: starts the pace dropped before this journey (``think``), told as it starts
        self.dropped = 0

    def think(self) -> None:
        """The persona's think time before the journey starts, or with ``--journey-rate`` the
        wait for the user's next start (``journeys.journey_rate``)."""
        if self.pace is not None:
            self.dropped = self.pace.wait(self._pause)
            return
        p = self.persona
        if p.wait_max > 0:
            self._pause(self.data.rng.uniform(p.wait_min, p.wait_max))

    def wait_time(self) -> float:
        """Locust's wait between tasks: 0, or once the pause ``_pause`` asked for."""
        seconds, self._pause_s = self._pause_s, 0.0
        return seconds

    def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` in Locust's ``wait``, where a stopping user stops (``StopUser``,
        or at once): a plain sleep inside the task kept it running, so with ``--stop-timeout``
        a user thinking (or waiting for its pace) when the run ended woke up and started a
        journey after the end."""
        self._pause_s = seconds
        self.wait()

    def start(self, journey: str) -> JourneyRun:
        if self.dropped:
            journey_dropped.fire(
                journey=journey, persona=self.persona.name, count=self.dropped
            )
            self.dropped = 0
        if self.pace is not None:
            self.pace.journey, self.pace.persona = journey, self.persona.name
        return JourneyRun(
            journey, self.persona.name, self.data.journey_id(), pace=self.pace
        )

    def metadata(self, run: JourneyRun, **extra: str) -> dict[str, str]:
        """The ``metadata`` of the journey's payments: who, which journey, and ``extra``."""
        return {
            "persona": self.persona.name,
            "journey": run.journey,
            "journey_id": run.journey_id,
            **extra,
        }

    def done(self) -> None:
        """End of one pass: go back to the user to pick the next journey, if it has several."""
        if self.one_pass:
            self.interrupt(reschedule=False)
