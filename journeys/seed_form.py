"""The seed of a web UI test: each test logs its own, and a ``seed`` posted to ``/swarm``
(the form has no such field; a script starting tests may send one) sets it. Started without
``--seed``, every test draws a seed of its own (new data, as a new headless run has); with
``--seed N`` every test repeats N's data.

Locust turns a posted ``seed`` into the option with ``int()``: an empty one (to draw a new
seed) or a typo was a 500 that started nothing and said nothing. Here an empty one draws a
seed and a bad one is refused with the flag's wording. An edit of a running test keeps the
test's seed: users it adds would draw from another seed's data pools, built by Faker mid-test.
"""

from __future__ import annotations

import logging

from flask import request
from locust import events
from locust.runners import STATE_RUNNING, STATE_SPAWNING, WorkerRunner

from journeys.data import resolve_seed
from journeys.start_form import refusal, set_form_values, start_form_sent

log = logging.getLogger(__name__)


#: The run was started with ``--seed``: its web UI tests repeat that seed's data.
_seed_asked = False


def log_seed(seed: int) -> None:
    log.info("data seed: %s (pass --seed %s to repeat this run's data)", seed, seed)


def settle_the_seed(options) -> None:
    """The run's seed: the one asked for, else a new one; logged either way."""
    global _seed_asked
    _seed_asked = options.seed is not None
    options.seed = resolve_seed(options.seed)
    log_seed(options.seed)


@events.init.add_listener
def check_seed_field(environment, web_ui=None, **_kwargs) -> None:
    """A ``seed`` posted to start a test: empty draws one, anything but a whole number is
    refused before the test starts."""
    if web_ui is None or isinstance(environment.runner, WorkerRunner):
        return

    @web_ui.app.before_request
    def _seed_of_the_test():
        if not start_form_sent(web_ui):
            return None
        if environment.runner.state in (STATE_SPAWNING, STATE_RUNNING):
            set_form_values("seed", [])  # an edit keeps the test's seed
            return None
        if "seed" not in request.form:
            if not _seed_asked:  # no --seed: each test new data, its seed logged
                set_form_values("seed", [str(resolve_seed(None))])
            return None
        text = request.form["seed"].strip()
        try:
            seed = int(text) if text else resolve_seed(None)
        except ValueError:
            problem = (
                f"--seed must be a whole number, got {text!r}: send one to repeat a test's "
                "data, or an empty seed to draw a new one. The test was not started."
            )
            log.error("%s", problem)
            return refusal(environment, problem)
        set_form_values("seed", [str(seed)])
        return None


@events.test_start.add_listener
def log_the_tests_seed(environment, **_kwargs) -> None:
    """A web UI runs several tests, each maybe with a seed of its own (a headless run's is
    logged once, when the run is checked)."""
    options = environment.parsed_options
    if (
        environment.web_ui is None
        or options is None
        or isinstance(environment.runner, WorkerRunner)
    ):
        return
    log_seed(options.seed)
