"""``LoadProfile``: the one shape class, driving the user count along the chosen profile's schedule.

Locust picks shape classes up from the locustfile's names, so the locustfile imports it::

    from journeys.profiles import LoadProfile  # noqa: F401

For ``steady`` (the default) the hooks take the shape off the environment at start-up, so the run
is plain Locust: ``-u``/``-r``/``-t`` and the web UI form work as they always do.
"""

from __future__ import annotations

import logging

import gevent
from locust import LoadTestShape
from locust.runners import MasterRunner

from journeys.profiles import chart
from journeys.profiles.phases import PHASE_MESSAGE, book
from journeys.profiles.schedule import ProfileConfigError, Schedule, build_schedule

log = logging.getLogger(__name__)


class LoadProfile(LoadTestShape):
    """Follows ``--profile`` (spike, soak, step), scaled from ``--users``/``--spawn-rate``/``--run-time``."""

    # we read -u/-r/-t: keep them in the web UI form, no "ignored" warning
    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self._schedule: Schedule | None = None
        self._logged: int | None = None  # the phase last logged as starting

    def reset_time(self) -> None:
        """A run starts: lay out its schedule from the options as they are now (CLI or web form)."""
        super().reset_time()
        options = self.runner.environment.parsed_options if self.runner else None
        previous = self._schedule
        try:
            self._schedule = build_schedule(options)
        except ProfileConfigError as exc:
            log.error("%s", exc)
            self._schedule = None
        book.start(self._schedule)
        # a master's first start() calls this again from the tick loop of the test it runs
        if self.runner is None or gevent.getcurrent() is not self.runner.shape_greenlet:
            self._logged = None
        if self._schedule is not None and self._schedule != previous:
            log.info("Load profile %s", self._schedule.describe())

    @property
    def schedule(self) -> Schedule | None:
        """The schedule of the test running (or last run); None before the first."""
        return self._schedule

    def tick(self) -> tuple[int, float] | None:
        if self._schedule is None:
            return None
        index = self._schedule.index_at(self.get_run_time())
        if index is None:
            return None  # run time over: Locust stops the test
        if index != self._logged:
            self._log_phase(index)
            chart.mark(self.runner)  # the users the phase starts from
        book.enter(index)
        if isinstance(self.runner, MasterRunner):
            # every tick: late workers catch up
            self.runner.send_message(PHASE_MESSAGE, index)
        phase = self._schedule.phases[index]
        return phase.users, phase.spawn_rate

    def _log_phase(self, index: int) -> None:
        """Which phase runs now, in the console and the web UI's Logs tab: a soak's phases
        keep the user count, so Locust's own log never showed where a long run was."""
        self._logged = index
        phase = self._schedule.phases[index]
        log.info(
            "Load profile %s, phase %s: %d users, %g-%g s",
            self._schedule.profile,
            phase.name,
            phase.users,
            phase.start_s,
            phase.end_s,
        )
