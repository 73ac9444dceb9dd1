"""Distributed runs: every worker must run the master's personas and the master's code.

The master hands out users by persona class name and judges each persona's decline rate by its
own file; a worker started with another file (or none, so the default) would crash on a class it
does not have, or send other data than the master reports. So the master sends a fingerprint of
each of its personas with the options of every spawn; at test start each worker compares them with
its own and, when they differ, says which personas do.
A worker that differs tells the master and leaves (exit 2, nothing sent); the master then ends
the run with exit 2 and says which worker and how to fix it.

The same goes for the tool's own code (``code_version``): a worker from another checkout or
image leaves before its users start, naming the files that differ (when the master sees its
first report before any spawn, the master sends its fingerprints so the worker can). A worker
older than this check does not compare; the master knows it by its reports (they lack the
code's fingerprints, or carry others), merges none of its journeys, tells it to quit and ends
the run the same way.
"""

from __future__ import annotations

import hashlib
import logging

from locust import events
from locust.runners import STATE_INIT, MasterRunner, WorkerRunner

from journeys import code_version, leave_run
from journeys.results.distributed import STRANGER_KEY
from journeys.results.slo import Check
from journeys.wording import counted, named_differences

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
CODE_MESSAGE = "code_differs"
CODE_FIX = (
    "Start every worker from the master's code (the same checkout, commit or image) and "
    "personas file."
)
#: Master: ids of the workers of this run that run another version of this tool.
other_code: list[str] = []


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
        options = environment.parsed_options
        if options is not None:
            setattr(options, OPTION, loaded.fingerprints)
            setattr(options, code_version.KEY, code_version.fingerprints())
        runner.register_message(
            MESSAGE, lambda msg, **_kw: _worker_differs(environment, msg.data)
        )
        runner.register_message(
            CODE_MESSAGE,
            lambda msg, **_kw: _worker_code_differs(
                environment,
                msg.data.get("worker"),
                msg.data.get("code"),
                sent_load=False,
            ),
        )
        environment.events.worker_report.add_listener(
            lambda client_id, data, **_kw: _check_report(environment, client_id, data)
        )
    elif isinstance(runner, WorkerRunner):
        # the master saw other code in this worker's first report, before any spawn
        runner.register_message(
            CODE_MESSAGE, lambda msg, **_kw: _leave_for_other_code(runner, msg.data)
        )


@events.test_start.add_listener
def _check_on_worker(environment, **_kwargs) -> None:
    """Worker: the options of the first spawn carry the master's fingerprints."""
    runner = leave_run.worker_runner(environment)
    if runner is None or loaded.fingerprints is None:
        return
    masters_code = getattr(environment.parsed_options, code_version.KEY, None)
    if masters_code is not None and masters_code != code_version.fingerprints():
        _leave_for_other_code(runner, masters_code)
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


def _leave_for_other_code(runner, masters_code: dict[str, str]) -> None:
    """Worker: the master runs other code; name the files that differ and exit 2."""
    leave_run.leave_the_run(
        runner,
        CODE_MESSAGE,
        {"worker": runner.client_id, "code": code_version.fingerprints()},
        "This worker runs another version of the load generator than the master ("
        f"{code_version.differences(masters_code, code_version.fingerprints())}). "
        f"{CODE_FIX}",
    )


def differences(masters: dict[str, str], workers: dict[str, str]) -> str:
    """Which personas differ, by name: only on one side, or on both with other values."""
    return named_differences(masters, workers, "other values in") or "other content"


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


def _check_report(environment, client_id: str, data: dict) -> None:
    """Master: a report from another version of this tool (one older than the worker's own
    check sends no fingerprints) is not merged (``distributed``); end the run for it."""
    if not data.get(STRANGER_KEY) and not code_version.same_as_ours(data):
        sent_load = environment.runner.state != STATE_INIT
        _worker_code_differs(
            environment, client_id, data.get(code_version.KEY), sent_load
        )


def _worker_code_differs(
    environment, worker: str | None, code, sent_load: bool
) -> None:
    """Master: ``worker`` runs another version of this tool; end the run with exit 2."""
    if worker in other_code:
        return
    other_code.append(str(worker))
    what = (
        code_version.differences(code_version.fingerprints(), code)
        if isinstance(code, dict)
        else "its reports carry no fingerprint of its code: an older version"
    )
    log.error(
        "Worker %s runs another version of the load generator than this master (%s): %s. "
        "%s The run stops.",
        worker,
        what,
        "none of its journeys are counted" if sent_load else "it sent no load",
        CODE_FIX,
    )
    if worker in environment.runner.clients:  # a worker that has not left by itself
        if isinstance(code, dict):  # one with the check: it names the files, exits 2
            environment.runner.send_message(
                CODE_MESSAGE, code_version.fingerprints(), client_id=worker
            )
        environment.runner.send_message("quit", client_id=worker)  # older ones quit
    leave_run.stop_for_a_worker(environment, worker)


def check() -> Check | None:
    """The failing ``personas`` (or ``code``) check of a run stopped for it, for the verdict;
    else None."""
    if other_code:
        return Check(
            "setup",
            "code",
            "the master's on every worker",
            f"{counted(len(other_code), 'worker')} {'differs' if len(other_code) == 1 else 'differ'}",
            False,
            f"worker {', '.join(other_code)} ran another version of the load generator than "
            f"the master; the run was stopped. {CODE_FIX} (setup)",
        )
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
