"""``--journey-rate R``: an open model, R journeys per second whatever the service's latency.

Locust's users are a closed model: each runs its journeys back to back, so a slow service gets
less load than asked (coordinated omission). With ``--journey-rate`` each of the test's ``-u``
users starts a journey every ``users / R`` seconds (Locust's ``constant_pacing`` idea), in place
of the personas' think time::

    locust --headless -u 50 -t 5m --journey-rate 20     # 20 journeys/s: each user one every 2.5 s

A user's first start comes at an offset within its first interval drawn from its seeded stream,
so the users do not all fire at once and ``--seed`` still repeats the data. A journey that ends
after the user's next start was due is followed by the next one at once, and every whole
interval it missed is a *dropped* start (k6's ``dropped_iterations``): no burst to catch up.

The pace uses the whole test's user count, not a worker's share: a worker knows the master's
parsed options only from its spawn message, and Locust leaves its own options (``-u``, and the
count typed in the web UI's start form) out of it (``runners.WorkerRunner``), so the master puts
the count it starts with under ``USERS_KEY``, which the spawn message carries. A profile that
changes the user count (spike, step) changes the rate with it: the pace stays the start's.
"""

from __future__ import annotations

import argparse
import logging
import time

import gevent
from flask import request
from locust import events
from locust.runners import WorkerRunner

from journeys.argtypes import finite_number
from journeys.start_form import refusal, set_form_values, start_form_sent

log = logging.getLogger(__name__)

OPTION = "journey_rate"
#: The test's user count as the master (or a standalone run) started it, sent to every worker.
USERS_KEY = "journey_rate_users"


def journeys_per_second(text: str) -> float:
    """``--journey-rate``: journeys per second, above 0."""
    fix = (
        "give journeys per second above 0, e.g. --journey-rate 20, or leave it out to keep "
        "the personas' think time"
    )
    try:
        value = finite_number(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc}: {fix}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is no rate: {fix}")
    return value


def add_option(group) -> None:
    group.add_argument(
        "--journey-rate",
        type=journeys_per_second,
        default=None,
        env_var="LOCUST_JOURNEY_RATE",
        help="Journeys per second in total (an open model): each of the -u users starts one "
        "every users/R seconds, in place of the personas' think time (default: off).",
    )


def rate(options) -> float | None:
    """The run's ``--journey-rate``, None when off."""
    return getattr(options, OPTION, None) if options is not None else None


@events.init.add_listener
def refuse_the_rate_in_the_start_form(environment, web_ui=None, **_kwargs) -> None:
    """``journey_rate`` posted to ``/swarm`` (the form has no such field; a script may send
    one) is refused: Locust kept it as a string (a TypeError in every user of a run without
    the option), and the Journeys tab's columns follow the option Locust started with. The
    internal ``USERS_KEY`` is dropped: the test's start sets it."""
    if web_ui is None or isinstance(environment.runner, WorkerRunner):
        return

    @web_ui.app.before_request
    def _no_rate_per_test():
        if not start_form_sent(web_ui):
            return None
        if USERS_KEY in request.form:
            set_form_values(USERS_KEY, [])
        if OPTION not in request.form:
            return None
        problem = (
            "--journey-rate is set as Locust starts (the command line, LOCUST_JOURNEY_RATE or "
            "a config file), not per test: start Locust again with it. The test was not started."
        )
        log.error("%s", problem)
        return refusal(environment, problem)


@events.test_start.add_listener
def pass_on_the_user_count(environment, **_kwargs) -> None:
    """The master (or a standalone run) notes the test's user count for every user's pace, and
    says once that the pace replaces the think time."""
    options = environment.parsed_options
    if not rate(options) or isinstance(environment.runner, WorkerRunner):
        return
    users = getattr(options, "num_users", None) or 1
    setattr(options, USERS_KEY, users)
    log.info(
        "Journey rate: %g journeys/s over %d users, each starting a journey every %.3g s; "
        "the pace replaces the personas' think time (wait_min, wait_max)",
        options.journey_rate,
        users,
        users / options.journey_rate,
    )


class Pace:
    """One user's schedule: a start every ``interval`` seconds from its first, ``offset`` in."""

    def __init__(self, interval: float, offset: float) -> None:
        self.interval = interval
        self.offset = offset
        self.due: float | None = None

    def wait(self, sleep=gevent.sleep) -> int:
        """Sleep (``sleep(seconds)``) until the next start is due; the whole intervals missed
        (dropped starts)."""
        now = time.monotonic()
        if self.due is None:
            self.due = now + self.offset
        late = now - self.due
        dropped = int(late // self.interval) if late >= 0 else 0
        self.due += (dropped + 1) * self.interval
        if late < 0:
            sleep(-late)
        return dropped


def paced_users(options) -> int:
    """The test's user count the pace is set for: the master's (``USERS_KEY``), else this
    process's ``-u``."""
    return getattr(options, USERS_KEY, None) or getattr(options, "num_users", None) or 1


def pace_for(environment, rng) -> Pace | None:
    """A user's pace (its first offset drawn from ``rng``), None with ``--journey-rate`` off."""
    options = environment.parsed_options
    journeys_per_s = rate(options)
    if not journeys_per_s:
        return None
    interval = paced_users(options) / journeys_per_s
    return Pace(interval, rng.uniform(0, interval))
