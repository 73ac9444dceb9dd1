"""Worker: a master gone silent mid-test (killed, its host down, cut off) ends this worker's load.

Locust's master answers each worker heartbeat (one a second). Locust's worker gives up on a
silent master only after 60 s, and runs its users all that time, also past the run time: load
that no master watches, counts or stops. Here a worker whose users run and that has heard no
heartbeat for ``MASTER_SILENCE_S`` stops its users and quits with exit code 1 (its results never
reached a report). An idle worker keeps Locust's 60 s; a worker that was itself paused
(SIGSTOP, a paused VM) gives the master that long again from its resumption.

    locust --worker --master-port 5557   # the master is killed: this worker quits ~10 s later
"""

from __future__ import annotations

import logging
import time

import gevent
from locust import events
from locust.runners import STATE_CLEANUP, STATE_RUNNING, STATE_SPAWNING, WorkerRunner

from journeys.wording import counted

log = logging.getLogger(__name__)
#: How long a worker running users waits for the master's heartbeat before it quits.
MASTER_SILENCE_S = 10.0


def master_silent_for(runner: WorkerRunner, since: float = 0.0) -> float:
    """Seconds since the master's last heartbeat, or since ``since`` (``time.time()``) if later;
    0 before the first heartbeat."""
    last = runner.last_heartbeat_timestamp
    return time.time() - max(last, since) if last else 0.0


def _watch(runner: WorkerRunner) -> None:
    since = 0.0  # this worker's own pause (SIGSTOP, a paused VM) is no silence of the master
    while True:
        before = time.time()
        gevent.sleep(1)
        if time.time() - before > 3:
            since = time.time()
        busy = runner.state in (STATE_RUNNING, STATE_SPAWNING, STATE_CLEANUP)
        if busy and master_silent_for(runner, since) > MASTER_SILENCE_S:
            log.error(
                "No heartbeat from the master at %s:%s for %.0f s (killed, its host down or cut "
                "off): stopping this worker's %s and quitting with exit code 1, as no master "
                "watches, counts or stops their load; what it ran since its last report is in "
                "no report. Start the master again, then the workers",
                runner.master_host,
                runner.master_port,
                master_silent_for(runner, since),
                counted(runner.user_count, "user"),
            )
            if runner.environment.process_exit_code is None:
                runner.environment.process_exit_code = 1
            runner.quit()
            return


@events.init.add_listener
def watch_the_master(environment, runner=None, **_kwargs) -> None:
    if isinstance(runner, WorkerRunner):
        gevent.spawn(_watch, runner)
