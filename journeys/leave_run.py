"""A worker that cannot take part in a run leaves it before any user starts, and its master
stops the run: for a worker whose personas differ from the master's (``same_personas``) and
for one without the token or with ``DD_*`` values tracing cannot run with (``run_checks``).
"""

from __future__ import annotations

import logging
import os
import sys
import time

import gevent
from locust.runners import STATE_INIT, WorkerRunner

from journeys.results.distributed import forget_worker


def worker_runner(environment, wait_s: float = 5.0) -> WorkerRunner | None:
    """In a ``test_start`` listener: this worker's runner, else None (master, standalone).

    A worker that joins a running test gets its first spawn message while Locust is still
    creating its runner: ``test_start`` then fires with ``environment.runner`` still None. Its
    users start only once the listeners return, so waiting here for the runner costs nothing.
    """
    options = environment.parsed_options
    deadline = time.monotonic() + wait_s
    while environment.runner is None and getattr(options, "worker", False):
        if time.monotonic() > deadline:
            return None
        gevent.sleep(0.02)
    runner = environment.runner
    return runner if isinstance(runner, WorkerRunner) else None


def leave_the_run(runner, message: str, data: dict, why: str) -> None:
    """Worker, in ``test_start``: tell the master ``message`` (``data``), say ``why`` and exit 2
    before any user starts (the master then stops the run: ``stop_for_a_worker``)."""
    runner.send_message(message, data)
    sys.stderr.write(f"{why} No traffic was sent from this worker.\n")
    sys.stderr.flush()
    logging.shutdown()
    gevent.sleep(0.2)  # let the message reach the master
    os._exit(2)  # no users started yet: nothing to finish or report


def stop_for_a_worker(environment, worker: str | None) -> None:
    """Master: ``worker`` cannot take part (it has left), and is forgotten at once. A headless
    or ``--autostart`` run ends with exit 2; in the web UI only the test stops (quitting the
    runner left the web UI up with its workers gone and a start button that started nothing).
    A headless master still waiting for ``--expect-workers`` exits 2 at once: Locust's wait
    loop would outlive the quit, waiting forever."""
    options = environment.parsed_options
    runner = environment.runner
    forget_worker(runner, worker)
    if options is not None and not (options.headless or options.autostart):
        gevent.spawn(runner.stop)
        return
    environment.process_exit_code = 2
    if runner.state == STATE_INIT:
        gevent.spawn(_quit_before_the_test, runner)
    else:
        gevent.spawn(runner.quit)


def _quit_before_the_test(runner) -> None:
    runner.quit()  # sends every connected worker "quit"
    sys.exit(2)  # raised in the main greenlet, as Locust's own shutdown does
