"""A run stopped before its planned run time (SIGTERM, Ctrl-C) fails its verdict instead of passing.

Locust ends such a run like a finished one: exit code 0 and every output written from the part
that ran. A gate that passes a 15-minute soak stopped after 7 seconds judges load that never ran,
so the verdict gets a failing ``run_time`` check saying how much of the planned run there was.

The plan is ``--run-time`` for a headless or ``--autostart`` run, counted from ``test_start``;
for a test started in the web UI's form (after an ``--autostart`` test too) it is the form's run
time (none: no plan), counted from the form; an edit of the running test keeps the plan and
Locust's timer that ends the test. The run ends at the first ``test_stopping``: the time limit, the load profile's end,
the web UI's stop, or a signal (``end_of_run`` then stops the test itself).
"""

from __future__ import annotations

import time

from flask import after_this_request, request
from locust import events
from locust.runners import STATE_RUNNING, STATE_SPAWNING, WorkerRunner
from locust.util.timespan import parse_timespan

# imported before this module's hooks: the web UI's check of the start form's SLO fields must
# refuse a bad form before _remember_the_plan lays out a plan for a test that never starts
from journeys.results import webui  # noqa: F401
from journeys.results.distributed import END_GRACE_S
from journeys.results.slo import Check
from journeys.start_form import start_form_sent

# "start" and "stopped" (time.monotonic()), "seconds" (the planned run time, None: no plan)
_plan: dict[str, float | None] = {}
_started_wall: list[float] = []


def _from_command_line(options) -> bool:
    return bool(options is not None and (options.headless or options.autostart))


@events.test_start.add_listener
def _started(environment, **_kwargs) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    _started_wall[:] = [time.time()]
    options = environment.parsed_options
    if _plan.pop("from_form", False):
        return  # the start form laid out this test's plan
    if _from_command_line(options):
        _plan.clear()
        _plan.update(start=time.monotonic(), seconds=options.run_time)


@events.init.add_listener
def _plan_from_the_start_form(environment, web_ui=None, **_kwargs) -> None:
    """The web UI's start form says how long its test runs (Locust keeps an earlier test's
    ``run_time`` in its options when the field is left empty, so they cannot tell); after an
    ``--autostart`` test as well, whose ``--run-time`` only the first test had."""
    if web_ui is None:
        return

    @web_ui.app.before_request
    def _remember_the_plan():
        if not start_form_sent(web_ui):
            return
        running = environment.runner is not None and environment.runner.state in (
            STATE_RUNNING,
            STATE_SPAWNING,
        )
        if running and _from_command_line(environment.parsed_options):
            return  # an edit of the --autostart test: its --run-time still ends it
        text = request.form.get("run_time", "").strip()
        if running and not text:
            # Locust's edit form has no run time field: the test keeps its plan and its timer
            _keep_the_run_time(web_ui)
            return
        # a new test, or an edit that sends a run time (a script): Locust times it from now
        try:
            seconds = parse_timespan(text) if text else None
        except ValueError:
            return  # Locust refuses the form
        _plan.clear()
        _plan.update(start=time.monotonic(), seconds=seconds, from_form=not running)


def _keep_the_run_time(web_ui) -> None:
    """In a ``before_request`` hook of an edit without a run time: Locust's view cancels the
    test's run-time timer for any posted form, and re-arms it only from the form's run time, so
    an edited test (a new user count) ran on for good. The timer is kept out of the view's
    reach and put back after it."""
    timer = web_ui._run_time_greenlet
    if timer is None:
        return
    web_ui._run_time_greenlet = None

    @after_this_request
    def _put_it_back(response):
        if web_ui._run_time_greenlet is None:
            web_ui._run_time_greenlet = timer
        return response


@events.test_stopping.add_listener
def _stopping(environment, **_kwargs) -> None:
    if "start" in _plan:
        _plan.setdefault("stopped", time.monotonic())


def started_at() -> float | None:
    """Wall-clock time (``time.time()``) the last test started in this process, if it did."""
    return _started_wall[0] if _started_wall else None


def check_if_stopped() -> Check | None:
    """``check`` for the web UI while Locust runs: only once the test has stopped (a test still
    running has not run its time yet)."""
    return check() if "stopped" in _plan else None


def check() -> Check | None:
    """The failing ``run_time`` check for a run stopped early, else None. Call it at quitting."""
    planned = _plan.get("seconds")
    if not planned:
        return None
    ran = (_plan.get("stopped") or time.monotonic()) - _plan["start"]
    if ran >= planned - END_GRACE_S:
        return None
    return Check(
        "run",
        "run_time",
        f"{planned:g} s",
        f"{ran:.0f} s",
        False,
        f"stopped after {ran:.0f} s of its {planned:g} s run time: these results cover only "
        "part of the planned load (run)",
    )
