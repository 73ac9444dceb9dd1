"""Worker: a master gone silent mid-test (killed, its host down, cut off) ends this worker's load.

Locust's master answers each worker heartbeat (one a second). Locust's worker gives up on a
silent master only after 60 s, and runs its users all that time, also past the run time: load
that no master watches, counts or stops. Here a worker whose users run and that has heard no
heartbeat for ``MASTER_SILENCE_S`` stops its users and quits with exit code 1 (its results never
reached a report). An idle worker keeps Locust's 60 s; a worker that was itself paused
(SIGSTOP, a paused VM) gives the master that long again from its resumption.

    locust --worker --master-port 5557   # the master is killed: this worker quits ~10 s later

A worker forked by ``locust --processes`` watches the process that forked it, its master: when
that is gone it quits within a second, busy or idle, connected or not. Locust's worker waits up
to 5 minutes for a master it has not reached yet, and does so before any listener of ours runs:
a master that exited 2 at start-up before a slow worker connected left it knocking for good,
holding the output pipe open (``| tee`` hung; a CI test waited 300 s).
"""

from __future__ import annotations

import logging
import os
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
        if _busy(runner) and master_silent_for(runner, since) > MASTER_SILENCE_S:
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
            _quit(runner, busy=True)
            return


def _busy(runner: WorkerRunner) -> bool:
    """The worker runs users (or stops them): its load goes on without a master."""
    return runner.state in (STATE_RUNNING, STATE_SPAWNING, STATE_CLEANUP)


def _quit(runner: WorkerRunner, busy: bool) -> None:
    """Stop the worker's users and quit; exit code 1 when it ran users, whose load since its
    last report is in no report."""
    if busy and runner.environment.process_exit_code is None:
        runner.environment.process_exit_code = 1
    runner.quit()


@events.init.add_listener
def watch_the_master(environment, runner=None, **_kwargs) -> None:
    if isinstance(runner, WorkerRunner):
        _forked["runner"] = runner
        gevent.spawn(_watch, runner)


#: A ``--processes`` worker: the pid of the process that forked it, and its runner once made.
_forked: dict = {"forking": None, "parent": None, "runner": None}


def _before_fork() -> None:
    """The forking process's pid, taken before the fork: the child's ``os.getppid()`` is
    already init's (or a subreaper's) if its parent exited before the child's hook ran."""
    _forked["forking"] = os.getpid()


def _after_fork_in_child() -> None:
    """Runs in every process forked from this one: ``locust --processes`` forks its workers
    after importing the locustfile. The watch starts before Locust makes the worker's runner,
    which waits for the master inside its constructor."""
    _forked.update(parent=_forked["forking"], runner=None)
    gevent.spawn(_watch_the_forking_process)


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def _watch_the_forking_process() -> None:
    parent = _forked["parent"]
    while os.getppid() == parent:
        gevent.sleep(1)
    runner = _forked["runner"]
    if runner is None or not runner.connected:  # still knocking at the master's port
        log.warning(
            "The locust process (pid %d) that forked this worker is gone before this worker "
            "reached it: quitting",
            parent,
        )
        hub = gevent.get_hub()
        hub.loop.run_callback(hub.parent.throw, SystemExit(1))
        return
    busy = _busy(runner)
    log.warning(
        "The locust process (pid %d) that forked this worker is gone: %s",
        parent,
        f"stopping this worker's {counted(runner.user_count, 'user')} and quitting with exit "
        "code 1 (what it ran since its last report is in no report)"
        if busy
        else "quitting",
    )
    _quit(runner, busy)
