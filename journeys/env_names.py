"""``LOCUST_*`` variables that nothing reads, named at start: Locust ignores them without a word.

A CI job's typo leaves the run without the setting it meant: ``LOCUST_RUNTIME=60s`` (for
``LOCUST_RUN_TIME``) gave a headless run with no run time, which never ended;
``LOCUST_MASTER_PORT`` (a worker reads ``LOCUST_MASTER_NODE_PORT``) left ``--processes`` workers
dialling port 5557 while their master waited for them forever. A warning, not a refusal: a
Kubernetes service named ``locust`` sets ``LOCUST_SERVICE_HOST`` and the like in every pod.
"""

from __future__ import annotations

import logging
import os

from locust import events
from locust.runners import WorkerRunner

from journeys.option_sources import env_var_names
from payment_contract.env_names import unread_names

log = logging.getLogger(__name__)

#: Read by Locust outside its options (``LOCUST_MODE_MASTER``/``WORKER`` are options' names and
#: need no entry here); Kubernetes' service links are never named (``unread_names``).
READ_ELSEWHERE = {
    "LOCUST_USER_CLASSES",
    "LOCUST_PLAYWRIGHT",
    "LOCUST_SKIP_MONKEY_PATCH",
    "LOCUST_SKIP_URLLIB",
    "LOCUST_WAIT_FOR_WORKERS_REPORT_AFTER_RAMP_UP",
    "LOCUST_WORKER_ADDITIONAL_WAIT_BEFORE_READY_AFTER_STOP",
}


def unread_variables(environ: dict, known: set[str]) -> list[str]:
    """One line per ``LOCUST_*`` name in ``environ`` that no option (``known``) reads."""
    return [
        f"{name} is set, but no Locust or tool option reads it: it is ignored ("
        + (f"did you mean {meant}? " if meant else "")
        + "Locust's LOCUST_* names: https://docs.locust.io/en/stable/configuration.html; "
        "the tool's: its README)"
        for name, meant in unread_names(
            environ, "LOCUST_", known | READ_ELSEWHERE, known
        )
    ]


@events.init.add_listener
def name_unread_variables(environment, **_kwargs) -> None:
    options = environment.parsed_options
    if options is None:
        return
    if isinstance(environment.runner, WorkerRunner) and getattr(
        options, "processes", None
    ):
        return  # forked by a --processes master, which has said it
    for line in unread_variables(dict(os.environ), env_var_names()):
        log.warning("%s", line)
