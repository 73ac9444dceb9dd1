"""The corners of a profile's user curve in Locust's chart history (the HTML report's charts).

Locust samples its chart history every 5 s, so a 12 s spike's *Number of Users* chart began in
the peak and drew the baseline and the jumps as slopes that never happened. Points as the test
starts and where a phase's users have all arrived or left (``hooks``), and as each phase starts
(the users it starts from: ``shape``), put the corners where they are on the chart's time axis::

    mark(runner)   # a history point now, as Locust's own 5 s sampler adds one
"""

from __future__ import annotations

from locust.runners import WorkerRunner
from locust.stats import update_stats_history


def mark(runner) -> None:
    """A chart history point now, where Locust keeps one (not on a worker: its master does)."""
    if (
        runner is not None
        and not isinstance(runner, WorkerRunner)
        and runner.stats.total.use_response_times_cache
    ):
        update_stats_history(runner)
