"""Worker → master: each stats report carries the journey counters counted since the last one.

A worker adds its book to the report Locust sends every few seconds (and once more when it
quits) and starts counting afresh; the master adds every report to its own book. So the master's
numbers are the sum of the workers', and nothing is counted twice. Each report also says how
many journeys the worker has in flight: when the master resets its stats (the web UI's reset,
``--reset-stats``), those count as started again, as the outcomes still to come need them.

The end of a run needs care. A headless master quits by sending ``quit`` and waiting half a
second, while workers let their users finish the current journey for up to ``--stop-timeout``:
journeys (and requests) finishing in that window would never reach the master. So the master
first *stops* the workers the way the web UI's stop button does (and waits until they report no
users), and each worker sends its final report as soon as its users are gone, before it tells
the master it stopped. Only then does Locust's own quit run. A signal during that stop cannot
reach the workers (a stopping worker reads no messages): the master waits for their final
reports, and a second signal leaves without them (they count as lost).

A worker can also leave on its own mid-test (SIGTERM, Ctrl-C: ``docker stop`` of a worker).
Locust would send ``quit`` first and stop its users after: the master forgets the worker at
once, counts it as lost until its final report comes, and when it was the last worker ends the
test without waiting for that report (a SIGTERM to a ``locust --processes`` run counted no
request at all). The worker instead tells the master it leaves (``LEAVING_MESSAGE``, with how
many users it runs), stops its users, sends its final report, and only then ``quit``. Its
journeys are all counted, but the load the test was asked for dropped (Locust starts its users
again on the other workers, if any, at the spawn rate, once it has quit): ``left_workers``
names it, and the verdict fails (``workers_left``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import gevent
from locust import events
from locust.rpc import Message
from locust.runners import (
    STATE_CLEANUP,
    STATE_RUNNING,
    STATE_SPAWNING,
    STATE_STOPPING,
    MasterRunner,
    WorkerRunner,
)
from locust.stats import StatsEntry

from journeys import code_version
from journeys.results.collector import book, connected_workers
from journeys.wording import counted

log = logging.getLogger(__name__)
REPORT_KEY = "journeys"
#: The worker's journeys in flight when it reported: the master counts them as started on a reset.
IN_FLIGHT_KEY = "journeys_in_flight"
#: Set in a worker's last report of a test, sent once its users are gone.
FINAL_KEY = "journeys_final"
#: Beyond ``--stop-timeout``: how long a master waits for its stopping workers' final reports.
FINAL_REPORTS_MARGIN_S = 5.0
#: Worker → master: this worker leaves the test on its own (SIGTERM, Ctrl-C) while it runs users.
LEAVING_MESSAGE = "journeys_worker_leaving"
#: Set by the master in a report from a worker that never connected to it (emptied, not counted).
STRANGER_KEY = "journeys_stranger"
#: A stop this close to the planned end, or a worker leaving this close to the end of the test
#: (``locust --processes``: one Ctrl-C reaches the master and its workers at once), is the end.
END_GRACE_S = 1.0


@dataclass(frozen=True)
class Departure:
    """Master: a worker that left the test on its own while its users ran."""

    worker: str
    at_s: float  # seconds into the test
    users: int  # its users then
    #: other workers were still there: Locust starts its users again on them
    others: bool


class _Workers:
    """Master: the workers of this test (at its start, or reporting since), and which of them
    sent their final report."""

    def __init__(self) -> None:
        self.reporting: set[str] = set()
        self.finished: set[str] = set()
        self.given_up: set[str] = set()  # master: left without their final report
        self.left: dict[str, Departure] = {}  # master: left on their own mid-test
        self.started: float | None = None  # master: time.monotonic() at test start ...
        self.stopped: float | None = None  # ... and when the test began to stop
        self.stopped_by_workers = False  # master: it stopped as its last worker left
        self.stopping = False  # worker: the next report is the final one
        self.waiting = False  # master: waiting for final reports after a signal
        self.give_up = False  # master: a second signal ends that wait


workers = _Workers()


def lost_workers(environment) -> list[str]:
    """Workers of this test that vanished (killed, cut off) before their final report: what
    they counted since their last report is missing from the results."""
    runner = environment.runner
    if not isinstance(runner, MasterRunner):
        return []
    missing = workers.reporting - workers.finished - connected_workers(runner)
    return sorted(missing | (workers.given_up - workers.finished))


def left_workers(environment) -> list[Departure]:
    """Workers of this test that left on their own (SIGTERM, Ctrl-C) while their users ran,
    first to leave first: their journeys are counted, but the load was lower than asked. Not
    those also lost (their final report never came), nor those that left with the end of the
    test (within ``END_GRACE_S`` of a stop that was not theirs)."""
    if not isinstance(environment.runner, MasterRunner):
        return []
    lost = set(lost_workers(environment))
    end = run_length_s()
    return sorted(
        (
            d
            for d in workers.left.values()
            if d.worker not in lost
            and not (
                end is not None
                and not workers.stopped_by_workers
                and end - d.at_s < END_GRACE_S
            )
        ),
        key=lambda d: d.at_s,
    )


def what_became_of_their_users(left: Sequence[Departure]) -> str:
    """The end of a sentence on the users of workers that ``left`` (the last one tells):
    `` until Locust started them again on the other workers``."""
    if left[-1].others:
        return " until Locust started them again on the other workers"
    return ", and no worker was left to run them"


def run_length_s() -> float | None:
    """Master: how long this test ran until it began to stop; None while it runs."""
    if workers.started is None or workers.stopped is None:
        return None
    return workers.stopped - workers.started


@events.test_start.add_listener
def _new_test(environment, **_kwargs) -> None:
    workers.__init__()
    if isinstance(environment.runner, MasterRunner):
        # the workers this test starts with (one gone missing in an earlier test, or one that
        # left for a wrong setup, stays listed for a minute and is not one of them)
        workers.reporting = connected_workers(environment.runner)
        workers.started = time.monotonic()


@events.test_stopping.add_listener
def _test_stopping(environment, **_kwargs) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner) and workers.stopped is None:
        workers.stopped = time.monotonic()
        # Locust stops the test when its last worker quits
        workers.stopped_by_workers = not connected_workers(runner)


def _worker_leaves(runner: MasterRunner, worker: str, data) -> None:
    """Master: ``worker`` leaves this test on its own (its final report follows)."""
    if runner.state not in (STATE_RUNNING, STATE_SPAWNING) or workers.started is None:
        return  # the test is over (or stopping): that is the end, not a worker leaving
    users = int((data or {}).get("users") or 0)
    if not users:
        return  # the load it ran was none
    others = bool(connected_workers(runner) - {worker})
    at_s = time.monotonic() - workers.started
    workers.left[worker] = Departure(worker, at_s, users, others)
    log.warning(
        "Worker %s leaves the run at %.0f s with %s: its final report follows; %s",
        worker,
        at_s,
        counted(users, "user"),
        "Locust starts them again on the other workers"
        if others
        else "no worker is left to run them",
    )


def leave_after_a_final_report(runner: WorkerRunner) -> None:
    """Worker, quitting (SIGTERM, Ctrl-C) while its users run: tell the master, stop the users
    and send the final report, all before Locust's own ``quit`` (after ``quit`` the master
    counts the worker as lost, and may end before that report comes)."""
    if runner.state not in (STATE_RUNNING, STATE_SPAWNING):
        return  # the master stopped it (the end of the test), or it runs none
    log.info(
        "Worker %s leaves the run: its %s stop (--stop-timeout %g s) and its final report "
        "goes to the master before it quits",
        runner.client_id,
        counted(runner.user_count, "user"),
        runner.environment.stop_timeout or 0,
    )
    runner.send_message(LEAVING_MESSAGE, {"users": runner.user_count})
    runner.stop()  # test_stop: send_final_report


@events.report_to_master.add_listener
def send_journey_counters(client_id: str, data: dict, **_kwargs) -> None:
    if book:
        data[REPORT_KEY] = book.serialize()
        book.clear()
    data[IN_FLIGHT_KEY] = book.in_flight_report()
    data[code_version.KEY] = code_version.fingerprints()
    if workers.stopping:
        data[FINAL_KEY] = True


@events.worker_report.add_listener
def merge_journey_counters(client_id: str, data: dict, **_kwargs) -> None:
    if data.get(STRANGER_KEY) or not code_version.same_as_ours(data):
        return  # another version of this tool: not merged (same_personas stops the run)
    book.merge(data.get(REPORT_KEY) or [], data.get(IN_FLIGHT_KEY), source=client_id)
    workers.reporting.add(client_id)
    if data.get(FINAL_KEY):
        workers.finished.add(client_id)


@events.test_stop.add_listener
def send_final_report(environment, **_kwargs) -> None:
    """Worker: all users are gone; report now, ahead of the ``client_stopped`` message."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        workers.stopping = True
        runner._send_stats()
        workers.stopping = False


def stop_the_test(runner) -> None:
    """Stop a test whose users still run, so every journey in flight ends (``interrupted``) and
    is counted (a test already stopped is left as it is). A master stops its workers and waits
    for their final reports, then tells them to quit (a stopped worker is forgotten until it
    says "ready" again, so Locust's own quit would not reach it)."""
    # the run is over and its users finish their journeys (--stop-timeout): the signal cuts
    # that grace short, and Locust would exit with those journeys neither done nor counted
    if runner.state == STATE_CLEANUP and not isinstance(runner, MasterRunner):
        runner.user_greenlets.kill(block=True)
        return
    if runner.state == STATE_STOPPING and isinstance(runner, MasterRunner):
        wait_for_final_reports(runner)
        return
    if runner.state not in (STATE_RUNNING, STATE_SPAWNING):
        return
    if not isinstance(runner, MasterRunner):
        runner.stop()
        return
    workers = [client.id for client in runner.clients.all]
    runner.stop()  # sends stop and waits until the workers report no users
    for worker_id in workers:
        if worker_id not in runner.clients:
            runner.server.send_to_client(Message("quit", None, worker_id))


def wait_for_final_reports(runner: MasterRunner) -> None:
    """Master: its workers' users finish their journeys (``--stop-timeout``) and a signal came.
    A worker hears no message while it stops, so wait for their final reports (they come
    within the grace); a second signal gives up, and those workers count as lost."""
    if workers.waiting:  # SIGTERM again: this is the second stop, the first one waits
        give_up_waiting()
        return
    stopping = connected_workers(runner) - workers.finished - workers.given_up
    if not stopping:
        return
    grace = runner.environment.stop_timeout or 0
    log.info(
        "Waiting up to %g s for %s to finish their journeys (--stop-timeout %g s) and send "
        "their final report; stop again to leave without them",
        grace + FINAL_REPORTS_MARGIN_S,
        counted(len(stopping), "worker"),
        grace,
    )
    deadline = time.monotonic() + grace + FINAL_REPORTS_MARGIN_S
    workers.waiting = True
    try:
        while (stopping - workers.finished) & connected_workers(runner):
            if workers.give_up or time.monotonic() > deadline:
                break
            gevent.sleep(0.1)
    except KeyboardInterrupt:  # Ctrl-C again (raised here, in the main greenlet)
        pass
    finally:
        workers.waiting = False
    workers.given_up |= (stopping - workers.finished) & connected_workers(runner)


def forget_worker(runner: MasterRunner, worker_id: str | None) -> None:
    """Master: ``worker_id`` left the run on its own before any user (a wrong setup): drop it
    at once, so the master neither hands it users, nor waits for its final report at the end,
    nor counts it as lost (Locust would list it until its heartbeats run out, ~60 s)."""
    runner.clients.pop(worker_id, None)
    workers.reporting.discard(worker_id)


class _Strangers:
    """Master: the workers that ever connected to it, and the strangers it told to quit."""

    def __init__(self) -> None:
        self.connected: set[str] = set()
        self.told: set[str] = set()


strangers = _Strangers()


def ignore_strangers(runner: MasterRunner) -> None:
    """Master: a worker that never connected to this master reports to it all the same: one a
    killed master left running (Locust's workers never connect again; ``lost_master`` stops
    their users 10 s after the master's last heartbeat). Locust merged its requests into this test, and we its
    journeys and ledger, counting it as a worker lost at the end. Its reports are emptied
    before any listener reads them, and it is told to quit: its load is no part of this test."""
    events_ = runner.environment.events
    events_.worker_connect.add_listener(
        lambda client_id, **_kw: strangers.connected.add(client_id)
    )

    def empty_a_strangers_report(client_id: str, data: dict, **_kw) -> None:
        if client_id in strangers.connected or client_id in runner.clients:
            return
        total = runner.stats.total
        empty_total = StatsEntry(runner.stats, total.name, total.method).serialize()
        data.clear()
        data.update(stats=[], stats_total=empty_total, errors={}, user_classes_count={})
        data[STRANGER_KEY] = True
        if client_id in strangers.told:
            return
        strangers.told.add(client_id)
        log.warning(
            "Worker %s reports to this master but never connected to it (a master before it "
            "on this port left it running): its reports are not counted, and it was told to "
            "quit",
            client_id,
        )
        runner.server.send_to_client(Message("quit", None, client_id))

    # first of all: Locust's own listener merges the requests of any report
    events_.worker_report._handlers.insert(0, empty_a_strangers_report)


def give_up_waiting() -> None:
    """A second signal: stop waiting for the workers' final reports."""
    workers.give_up = True


def stop_now(runner) -> None:
    """Ctrl-C again while the test stops: stop the users at once instead of waiting for them
    (their ``--stop-timeout`` grace). A master stops waiting for its workers (Locust waits
    until they report no users, up to the grace plus 60 s) and leaves without the final
    reports still to come: those workers count as lost, as after a second SIGTERM."""
    give_up_waiting()
    if not isinstance(runner, MasterRunner):
        runner.user_greenlets.kill(block=False)
        return
    if runner.state != STATE_STOPPING:
        return
    workers.given_up |= connected_workers(runner) - workers.finished
    for client in runner.clients.all:
        client.user_classes_count = {}  # what Locust's stop waits for: no user reported


@events.test_stopping.add_listener
def stop_spawning(environment, **_kwargs) -> None:
    """Master: a test that stops mid-ramp stops handing out users. Locust's master stop leaves
    the greenlet that walks its users dispatcher going (the loop holds the dispatcher), so a
    run time ending during the ramp-up (``--processes 2 -t 3s``, 10 users at 2/s) had the
    workers start the rest of the users after the stop and run them until the master gave up
    waiting for them, 60 s on: load after the run time, counted in its results. Here, before
    Locust sends "stop", the dispatch is given the users it has handed out as its target: it
    ends once its current pause between two spawn messages is over, sending none. Both are
    Locust's privates: one it no longer has raises, named, rather than set nothing."""
    runner = environment.runner
    if not isinstance(runner, MasterRunner):
        return
    dispatcher = runner._users_dispatcher  # None before the first start
    if dispatcher is None:
        return
    if not hasattr(dispatcher, "_target_user_count"):
        raise RuntimeError(
            "Locust's users dispatcher has no _target_user_count: a run stopping mid-ramp "
            "keeps handing out users; install the locust version requirements.txt names"
        )
    dispatcher._target_user_count = dispatcher._current_user_count


@events.init.add_listener
def stop_workers_before_quitting(environment, runner=None, **_kwargs) -> None:
    """Master: on quit, stop the workers first and wait for their final reports. Worker:
    leaving on its own, tell the master and stop the users before Locust sends ``quit``."""
    if isinstance(runner, WorkerRunner):
        # added after Locust's own listener (which sends "quit"), so it runs first: Locust
        # fires ``quitting`` in reverse
        environment.events.quitting.add_listener(
            lambda **_kw: leave_after_a_final_report(runner)
        )
        return
    if not isinstance(runner, MasterRunner):
        return
    ignore_strangers(runner)
    runner.register_message(
        LEAVING_MESSAGE,
        lambda msg, **_kw: _worker_leaves(runner, msg.node_id, msg.data),
    )
    quit_now = runner.quit

    def quit_after_stopping() -> None:
        stop_the_test(runner)
        quit_now()

    runner.quit = quit_after_stopping
