"""Distributed runs: every worker must run the master's personas.

The master hands out users by persona class name and judges each persona's decline rate by its
own file; a worker started with another file (or none, so the default) would crash on a class it
does not have, or send other data than the master reports. So the master sends a fingerprint of
each of its personas with the options of every spawn; at test start each worker compares them with
its own and, when they differ, says which personas do.
A worker that differs tells the master and leaves (exit 2, nothing sent); the master then ends
the run with exit 2 and says which worker and how to fix it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from journeys.results.distributed import forget_worker
from journeys.results.slo import Check
from journeys.wording import counted

log = logging.getLogger(__name__)

#: The master's personas as {name: fingerprint}, so a worker can say which ones differ.
OPTION = "personas_fingerprints"
MESSAGE = "personas_differ"
FIX = (
    "Start every worker with the master's personas file (--personas or LOCUST_PERSONAS, "
    "the same content)."
)


class _Loaded:
    """This process's personas, as ``users.persona_user_classes`` loaded them."""

    def __init__(self) -> None:
        self.fingerprints: dict[str, str] | None = None  # persona name: its fingerprint
        self.names: tuple[str, ...] = ()
        self.path = ""


loaded = _Loaded()
#: Master: ids of the workers of this run that reported other personas.
differing: list[str] = []


def remember(personas, path) -> None:
    """Record the personas this process loaded from ``path``."""
    loaded.fingerprints = {
        p.name: hashlib.sha256(repr(p).encode()).hexdigest()[:16] for p in personas
    }
    loaded.names = tuple(sorted(p.name for p in personas))
    loaded.path = str(path)


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        if environment.parsed_options is not None:
            setattr(environment.parsed_options, OPTION, loaded.fingerprints)
        runner.register_message(
            MESSAGE, lambda msg, **_kw: _worker_differs(environment, msg.data)
        )


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


@events.test_start.add_listener
def _check_on_worker(environment, **_kwargs) -> None:
    """Worker: the options of the first spawn carry the master's fingerprints."""
    runner = worker_runner(environment)
    if runner is None or loaded.fingerprints is None:
        return
    theirs = getattr(environment.parsed_options, OPTION, None)
    if theirs is None or theirs == loaded.fingerprints:
        return
    detail = {
        "worker": runner.client_id,
        "path": loaded.path,
        "personas": ", ".join(loaded.names),
        "differences": differences(theirs, loaded.fingerprints),
    }
    leave_the_run(
        runner,
        MESSAGE,
        detail,
        f"This worker's personas ({detail['personas']} from {detail['path']}) differ from the "
        f"master's: {detail['differences']}. {FIX}",
    )


def leave_the_run(runner, message: str, data: dict, why: str) -> None:
    """Worker, in ``test_start``: tell the master ``message`` (``data``), say ``why`` and exit 2
    before any user starts (the master then stops the run: ``stop_for_a_worker``)."""
    runner.send_message(message, data)
    sys.stderr.write(f"{why} No traffic was sent from this worker.\n")
    sys.stderr.flush()
    logging.shutdown()
    gevent.sleep(0.2)  # let the message reach the master
    os._exit(2)  # no users started yet: nothing to finish or report


def differences(masters: dict[str, str], workers: dict[str, str]) -> str:
    """Which personas differ, by name: only on one side, or on both with other values."""
    changed = sorted(
        n for n in masters.keys() & workers.keys() if masters[n] != workers[n]
    )
    parts = [
        f"{label}: {', '.join(names)}"
        for label, names in (
            ("other values in", changed),
            ("only on the master", sorted(masters.keys() - workers.keys())),
            ("only on the worker", sorted(workers.keys() - masters.keys())),
        )
        if names
    ]
    return "; ".join(parts) or "other content"


def _worker_differs(environment, data) -> None:
    """Master: a worker runs other personas; end the run with exit 2."""
    data = data if isinstance(data, dict) else {}
    log.error(
        "Worker %s runs other personas than this master (%s from %s on the worker; %s here): "
        "%s. %s The run stops.",
        data.get("worker", "?"),
        data.get("personas", "?"),
        data.get("path", "?"),
        ", ".join(loaded.names),
        data.get("differences", "?"),
        FIX,
    )
    differing.append(str(data.get("worker", "?")))
    stop_for_a_worker(environment, data.get("worker"))


def stop_for_a_worker(environment, worker: str | None) -> None:
    """Master: ``worker`` cannot take part (it has left), and is forgotten at once. A headless
    or ``--autostart`` run ends with exit 2; in the web UI only the test stops (quitting the
    runner left the web UI up with its workers gone and a start button that started nothing)."""
    options = environment.parsed_options
    forget_worker(environment.runner, worker)
    if options is not None and not (options.headless or options.autostart):
        gevent.spawn(environment.runner.stop)
        return
    environment.process_exit_code = 2
    gevent.spawn(environment.runner.quit)


def check() -> Check | None:
    """The failing ``personas`` check of a run stopped for it, for the verdict; else None."""
    if not differing:
        return None
    return Check(
        "setup",
        "personas",
        "the master's on every worker",
        f"{counted(len(differing), 'worker')} {'differs' if len(differing) == 1 else 'differ'}",
        False,
        f"worker {', '.join(differing)} ran other personas than the master; the run was "
        f"stopped. {FIX} (setup)",
    )
