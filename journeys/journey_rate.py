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
The starts a journey still running when the test stops (or its user is stopped) ran past are
dropped too (``Pace.missed``), counted up to that moment: else a journey that outlasts the run
(an operator's long batch) hid every start it missed, and the rate read as held.

The pace uses the whole test's user count, not a worker's share: a worker knows the master's
parsed options only from its spawn message, and Locust leaves its own options (``-u``, and the
count typed in the web UI's start form) out of it (``runners.WorkerRunner``), so the master puts
the count it starts with under ``USERS_KEY``, which the spawn message carries. A profile that
changes the user count (spike, step) changes the rate with it: the pace stays the start's.

In the web UI each test has a rate of its own, from the start form's Journey rate field
(``journeys.rate_form``): it becomes the option as the test starts (``next_tests_rate``), so the
spawn messages carry it to the workers, and the outputs follow the test's rate.
"""

from __future__ import annotations

import argparse
import logging
import time
import weakref

import gevent
from locust import events
from locust.runners import WorkerRunner

from journeys.argtypes import finite_number
from journeys.events import journey_dropped

log = logging.getLogger(__name__)

OPTION = "journey_rate"
#: The test's user count as the master (or a standalone run) started it, sent to every worker.
USERS_KEY = "journey_rate_users"


#: How to fix a bad ``--journey-rate`` on the command line, and in the web UI's start form.
OPTION_FIX = (
    "give journeys per second above 0, e.g. --journey-rate 20, or leave it out to keep "
    "the personas' think time"
)
FIELD_FIX = (
    "give journeys per second above 0, e.g. 20, or leave the field empty to keep the "
    "personas' think time"
)


def journeys_per_second(text: str, fix: str = OPTION_FIX) -> float:
    """``--journey-rate``: journeys per second, above 0 (``fix`` says how to mend a bad one)."""
    try:
        value = finite_number(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc}: {fix}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is no rate: {fix}")
    return value


def add_option(group) -> None:
    action = group.add_argument(
        "--journey-rate",
        type=journeys_per_second,
        default=None,
        env_var="LOCUST_JOURNEY_RATE",
        # short: the web UI's form shows "Journey Rate (<help>)" as the field's label, cut at
        # ~85 characters while the field is empty
        help="Journeys per second in total, in place of the think time; empty: off",
    )
    # a field of the web UI's start form ("Custom parameters"), set per test: Locust shows a
    # plugin's option there only when added with its parser's own add_argument, not a group's
    action.include_in_web_ui = True


def rate(options) -> float | None:
    """The run's ``--journey-rate``, None when off."""
    return getattr(options, OPTION, None) if options is not None else None


#: Not asked: no start form has set the next test's rate.
_NOT_ASKED = object()
_next_rate: object = _NOT_ASKED


def next_tests_rate(journeys_per_s: float | None) -> None:
    """The web UI's start form: the rate of the test it starts (None: off), the option from
    that test's start on. A start refused after this leaves it to the next form to set."""
    global _next_rate
    _next_rate = journeys_per_s


@events.test_start.add_listener
def pass_on_the_user_count(environment, **_kwargs) -> None:
    """The master (or a standalone run) takes the rate a web UI test was started with, notes
    the test's user count for every user's pace, and says once that the pace replaces the
    think time."""
    global _next_rate
    options = environment.parsed_options
    if options is None or isinstance(environment.runner, WorkerRunner):
        return
    _test_time.clear()
    _test_time["start"] = time.monotonic()
    if _next_rate is not _NOT_ASKED:
        setattr(options, OPTION, _next_rate)
        _next_rate = _NOT_ASKED
    if not rate(options):
        return
    users = getattr(options, "num_users", None) or 1
    setattr(options, USERS_KEY, users)
    log.info(
        "Journey rate: %g journeys/s over %d users, each starting a journey every %s s; "
        "the pace replaces the personas' think time (wait_min, wait_max)",
        options.journey_rate,
        users,
        every(users / options.journey_rate),
    )


def every(interval_s: float) -> str:
    """A user's interval in seconds as people read it: ``0.4``, ``2.5``, ``2000`` (not
    ``2e+03``)."""
    return f"{interval_s:.3g}" if interval_s < 1000 else f"{interval_s:.0f}"


def nothing_asked(options, fix: str) -> str:
    """Why a paced test sent no request, when its users' interval outlasted it (their first
    starts come at random within it), else ""."""
    journeys_per_s = rate(options)
    if not journeys_per_s or "start" not in _test_time:
        return ""
    elapsed_s = _test_time.get("stop", time.monotonic()) - _test_time["start"]
    users = paced_users(options)
    interval = users / journeys_per_s
    if interval <= elapsed_s:
        return ""
    return (
        f": at {journeys_per_s:g} journeys/s over {users} users, each starts a journey every "
        f"{every(interval)} s, the first at a random moment within it, and the test ran "
        f"{elapsed_s:.0f} s; run for longer than that or {fix}"
    )


class Pace:
    """One user's schedule: a start every ``interval`` seconds from its first, ``offset`` in."""

    def __init__(self, interval: float, offset: float) -> None:
        self.interval = interval
        self.offset = offset
        self.due: float | None = None
        #: the user's journey in flight (``Journey.start``), to count its missed starts for
        self.journey = self.persona = ""
        #: the test stopped (its missed starts counted) or the user did: none counted after
        self.closed = False

    def wait(self, sleep=gevent.sleep) -> int:
        """Sleep (``sleep(seconds)``) until the next start is due; the whole intervals missed
        (dropped starts)."""
        now = time.monotonic()
        if self.due is None:
            self.due = now + self.offset
        ahead = self.due - now
        passed = self._pass_starts_due(now)
        if passed:  # the last start due is this one, the others were dropped
            return passed - 1
        self.due += self.interval  # the start waited for is this one
        sleep(ahead)
        return 0

    def missed(self) -> int:
        """The starts due by now that the journey in flight ran past (then counted: the next
        ``wait`` does not count them again); 0 once the test stopped."""
        if self.due is None or self.closed:
            return 0
        return self._pass_starts_due(time.monotonic())

    def _pass_starts_due(self, now: float) -> int:
        """Move ``due`` past every start due by ``now`` (a whole interval apart: none caught
        up on later); how many that was, 0 when the next one is not due yet."""
        late = now - self.due
        if late < 0:
            return 0
        count = int(late // self.interval) + 1
        self.due += count * self.interval
        return count

    def drop_missed(self) -> None:
        """Count the starts the journey in flight ran past as dropped (``missed``)."""
        count = self.missed()
        if count and self.journey:
            journey_dropped.fire(
                journey=self.journey, persona=self.persona, count=count
            )


#: This process's paces, to count at the test's stop the starts their journeys ran past.
_paces: weakref.WeakSet[Pace] = weakref.WeakSet()
#: The last test's "start" and "stop" (time.monotonic()), for ``nothing_asked``.
_test_time: dict[str, float] = {}


@events.test_stopping.add_listener
def drop_the_starts_missed_at_the_stop(**_kwargs) -> None:
    """The test stops: each journey still running dropped the starts it ran past until now
    (with ``--stop-timeout`` it may run on, but the test asks for no more)."""
    if "start" in _test_time:
        _test_time.setdefault("stop", time.monotonic())
    for pace in list(_paces):
        pace.drop_missed()
        pace.closed = True
    _paces.clear()


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
    pace = Pace(interval, rng.uniform(0, interval))
    _paces.add(pace)
    return pace
