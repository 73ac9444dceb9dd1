"""The web UI's Journey rate field: each test's ``--journey-rate``, to try 10 journeys/s, then 20,
without starting Locust again.

The start form's field (under *Custom parameters*) is prefilled with the rate Locust started with;
empty is off (the personas' think time). A bad value is refused with the flag's wording and the
test does not start. The field is taken off the form before Locust's view reads it (Locust
would keep the text as the option, or fail on an empty one) and becomes the option as the test
starts (``journey_rate.next_tests_rate``). An edit of the running test keeps the test's rate, as
it keeps the SLO targets: its users were paced for it; a different rate in the edit is logged as
not applied. A script that posts no field gets the rate Locust started with.
"""

from __future__ import annotations

import argparse
import logging

from flask import request
from locust import events
from locust.runners import STATE_RUNNING, STATE_SPAWNING, WorkerRunner

from journeys import journey_rate
from journeys.journey_rate import FIELD_FIX, OPTION, USERS_KEY, journeys_per_second
from journeys.start_form import refusal, set_form_values, start_form_sent

log = logging.getLogger(__name__)


def _described(journeys_per_s: float | None) -> str:
    return (
        f"{journeys_per_s:g} journeys/s"
        if journeys_per_s
        else "the personas' think time"
    )


@events.init.add_listener
def check_rate_field(environment, web_ui=None, **_kwargs) -> None:
    """The ``journey_rate`` posted to ``/swarm``: the rate of the test it starts, checked; the
    internal ``USERS_KEY`` is dropped (the test's start sets it)."""
    if web_ui is None or isinstance(environment.runner, WorkerRunner):
        return
    started_with = journey_rate.rate(environment.parsed_options)

    @web_ui.app.before_request
    def _rate_of_the_test():
        if not start_form_sent(web_ui):
            return None
        if USERS_KEY in request.form:
            set_form_values(USERS_KEY, [])
        text = request.form.get(OPTION)
        if text is not None:
            set_form_values(OPTION, [])
            text = text.strip()
        if environment.runner.state in (STATE_SPAWNING, STATE_RUNNING):
            _an_edit_keeps_the_rate(journey_rate.rate(environment.parsed_options), text)
            return None
        try:
            asked = journeys_per_second(text, FIELD_FIX) if text else None
        except argparse.ArgumentTypeError as exc:
            problem = f"Journey rate: {exc}. The test was not started."
            log.error("%s", problem)
            return refusal(environment, problem)
        journey_rate.next_tests_rate(started_with if text is None else asked)
        return None


def _an_edit_keeps_the_rate(running: float | None, text: str | None) -> None:
    """Say so when the edit of a running test asks for another rate than the test's: Locust's
    edit dialog shows no answer, the Logs tab does."""
    if text is None:
        return
    try:
        asked = journeys_per_second(text) if text else None
    except argparse.ArgumentTypeError:
        asked = text
    if asked == running:
        return
    log.warning(
        "Journey rate: the running test keeps its %s (the edit's %r is not applied): stop the "
        "test and start a new one to change the rate",
        _described(running),
        text,
    )
