"""Ctrl-C stops a run the way Locust means to, never from inside a journey.

Python raises ``KeyboardInterrupt`` wherever the main thread is when SIGINT arrives. Under gevent
that is often a user's greenlet in the middle of a journey: the journey is counted failed with
"KeyboardInterrupt", gevent prints a traceback, and only then does the exception reach Locust's
main loop. Handled in gevent's loop instead, SIGINT is raised in the main greenlet between
requests, where Locust catches it, writes ``--html`` and shuts down; the journeys still running
end as interrupted, as on SIGTERM.

A headless master still waiting for ``--expect-workers`` is another case (a TODO in Locust's
own ``main.py``): Ctrl-C there was a ``KeyboardInterrupt`` traceback, SIGTERM killed the master
at once, and the workers that had connected went on running for a master that was gone. Either
signal now tells those workers to quit and ends the master with exit code 1, no load sent.
A headless load profile is a third: Locust sets its SIGTERM handler only once the profile has
ended, so SIGTERM (``docker stop``) there stops the run as Ctrl-C does, reports and all.
"""

from __future__ import annotations

import atexit
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import gevent
from locust import events
from locust.runners import STATE_INIT, MasterRunner, WorkerRunner

# imported first so that its init listener, which starts ddtrace and gives SIGTERM back from it,
# runs before this module's sets gevent's handlers (ddtrace's Python handler would replace them)
import journeys.tracing  # noqa: F401
from journeys.setup_stop import NOTHING_SENT

log = logging.getLogger(__name__)

#: The environment of this process, once Locust has built it (None before ``init``).
_environment = None


#: What a further Ctrl-C does once one has stopped the run (``when_stopped_again``).
_stop_again: list[Callable[[], None]] = []


def when_stopped_again(stop_again: Callable[[], None]) -> None:
    """Once a Ctrl-C has stopped the run, a further one calls ``stop_again`` instead of
    raising ``KeyboardInterrupt`` in the main greenlet: pressed twice, it landed wherever the
    end of the run was (stopping the users, writing the reports): a traceback, and no report
    or verdict at all."""
    _stop_again[:] = [stop_again]


#: True once a Ctrl-C has stopped the run (raised in the main greenlet).
_interrupted: list[bool] = []


def _interrupt_the_main_greenlet() -> None:
    if _interrupted and _stop_again:
        _stop_again[0]()
        return
    if _waiting_for_workers():
        _stop_waiting_for_workers("Ctrl-C")
        return
    _interrupted.append(True)
    _raise_keyboard_interrupt_in_the_main_greenlet()


def _raise_keyboard_interrupt_in_the_main_greenlet() -> None:
    hub = gevent.get_hub()
    hub.loop.run_callback(hub.parent.throw, KeyboardInterrupt)


def _on_sigterm() -> None:
    # Locust sets its own SIGTERM handler once the workers are there and, with a load profile,
    # once the profile has ended; this one acts before that
    if _waiting_for_workers():
        _stop_waiting_for_workers("SIGTERM")
    elif _running_a_headless_profile():
        log.info("Got SIGTERM signal during the load profile: stopping as Ctrl-C does")
        _raise_keyboard_interrupt_in_the_main_greenlet()


def _running_a_headless_profile() -> bool:
    """A headless run of a load profile: Locust's main greenlet waits for the profile to end
    before it sets its SIGTERM handler, so until then SIGTERM killed a standalone run with no
    report at all, and a master ignored it."""
    env = _environment
    shape = getattr(env and env.runner, "shape_greenlet", None)
    return (
        shape is not None
        and not shape.dead
        and bool(getattr(env.parsed_options, "headless", False))
    )


def _waiting_for_workers() -> bool:
    """A headless master that has not started its test: it is waiting for its workers."""
    env = _environment
    return (
        env is not None
        and isinstance(env.runner, MasterRunner)
        and env.runner.state == STATE_INIT
        and bool(getattr(env.parsed_options, "headless", False))
    )


def _stop_waiting_for_workers(signal_name: str) -> None:
    runner, options = _environment.runner, _environment.parsed_options
    connected = len(runner.clients)
    log.warning(
        "%s while waiting for workers (%d of %d connected): %s. %s",
        signal_name,
        connected,
        options.expect_workers,
        "the connected ones were told to quit" if connected else "none had connected",
        NOTHING_SENT,
    )
    gevent.spawn(_quit, runner)


def _quit(runner) -> None:
    runner.quit()  # sends every connected worker "quit"
    sys.exit(1)  # raised in the main greenlet, as Locust's own shutdown does


@events.init.add_listener
def _handle_ctrl_c_in_the_loop(environment, **_kwargs) -> None:
    global _environment
    _environment = environment
    # only Python's own handler is replaced: `locust --processes` sets its own in the parent,
    # and a shell starts its background jobs (`locust ... &` in a CI script) with SIGINT ignored
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        gevent.signal_handler(signal.SIGINT, _interrupt_the_main_greenlet)
    # SIGTERM regardless: tied to SIGINT's handler, `kill` of a background job's profile run
    # ended it with exit 143, no report and, with --processes, its workers orphaned
    if not isinstance(getattr(environment, "runner", None), WorkerRunner):
        gevent.signal_handler(signal.SIGTERM, _on_sigterm)


@events.init.add_listener
def _let_forked_workers_go_at_exit(environment, runner=None, **_kwargs) -> None:
    """``--processes``: a master that exits before its test starts (a start-up check's exit 2)
    left its forked workers running: Locust's exit forgets live children. For five minutes they
    knocked at the master port, and the next run there counted them as workers lost."""
    if not isinstance(runner, MasterRunner):
        return
    processes = getattr(environment.parsed_options, "processes", None)
    if processes:
        atexit.register(_release_workers, runner, processes)


def _release_workers(runner, forked: int) -> None:
    if runner.state != STATE_INIT or not len(runner.greenlet):  # a test ran, or it quit
        return
    deadline = time.monotonic() + 3
    while len(runner.clients) < forked and time.monotonic() < deadline:
        gevent.sleep(0.1)  # they connect within a second of the fork
    runner.quit()


class StoppedBeforeStart(Exception):
    """SIGTERM arrived during a check that runs before the test (``sigterm_stops``)."""


@contextmanager
def sigterm_stops() -> Iterator[None]:
    """SIGTERM in the block raises ``StoppedBeforeStart`` there. Before Locust sets its own
    SIGTERM handler the process has none, and `locust` as a container's PID 1 then ignores
    SIGTERM: ``docker stop`` waited out the whole ``--wait-for-host``."""
    hub, main = gevent.get_hub(), gevent.getcurrent()
    watcher = gevent.signal_handler(
        signal.SIGTERM, lambda: hub.loop.run_callback(main.throw, StoppedBeforeStart)
    )
    try:
        yield
    finally:
        watcher.cancel()
