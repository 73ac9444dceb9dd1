"""The corners of a profile's user curve in Locust's chart history (the HTML report's charts).

Locust samples its chart history every 5 s, so a 12 s spike's *Number of Users* chart began in
the peak and drew the baseline and the jumps as slopes that never happened. Points as the test
starts and where a phase's users have all arrived or left (``hooks``), and as each phase starts
(the users it starts from: ``shape``), put the corners where they are on the chart's time axis::

    mark(runner)   # a history point now, as Locust's own 5 s sampler adds one
"""

from __future__ import annotations

import time

import gevent
from locust.runners import STATE_RUNNING, STATE_SPAWNING, WorkerRunner
from locust.stats import update_stats_history

#: How long a master waits for its workers to report the users a phase reached: Locust waits
#: 1 s, then fires ``spawning_complete`` whatever they said (its user count still 0 at a busy
#: start); past this, Locust's own 5 s sampler has them.
REACHED_WAIT_S = 5.0


def mark(runner) -> None:
    """A chart history point now, where Locust keeps one (not on a worker: its master does)."""
    if (
        runner is not None
        and not isinstance(runner, WorkerRunner)
        and runner.stats.total.use_response_times_cache
    ):
        update_stats_history(runner)


def mark_reached(runner) -> None:
    """A point once the users the runner aims at are running: at once standalone, and on a
    master as soon as its workers' reports say so (they may come after ``spawning_complete``)."""
    if runner.user_count == runner.target_user_count:
        mark(runner)
    else:
        gevent.spawn(_mark_when_reached, runner, time.monotonic() + REACHED_WAIT_S)


def _mark_when_reached(runner, deadline: float) -> None:
    while time.monotonic() < deadline and runner.state in (
        STATE_RUNNING,
        STATE_SPAWNING,
    ):
        gevent.sleep(0.1)
        if runner.user_count == runner.target_user_count:
            mark(runner)
            return
