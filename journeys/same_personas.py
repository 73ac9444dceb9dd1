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

from locust import events
from locust.runners import MasterRunner

from journeys import leave_run
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


@events.test_start.add_listener
def _check_on_worker(environment, **_kwargs) -> None:
    """Worker: the options of the first spawn carry the master's fingerprints."""
    runner = leave_run.worker_runner(environment)
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
    leave_run.leave_the_run(
        runner,
        MESSAGE,
        detail,
        f"This worker's personas ({detail['personas']} from {detail['path']}) differ from the "
        f"master's: {detail['differences']}. {FIX}",
    )


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
    leave_run.stop_for_a_worker(environment, data.get("worker"))


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
