"""One Locust user class per persona, built from ``personas.csv`` at import time.

Each class is named after its persona (``budget_shopper`` → ``BudgetShopper``) and weighted as the
CSV says, so Locust's class picker, ``locust ... BudgetShopper`` and the spawn mix all speak
personas. Its journeys follow the persona's role.
"""

from __future__ import annotations

import argparse
import difflib
import itertools
import logging
import os
import sys
import time
import types

import gevent
from locust import FastHttpUser, constant, events
from locust.runners import MasterRunner, WorkerRunner
from locust.user.task import LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING, DefaultTaskSet

from journeys import (
    content_coding,
    cookies,
    interim_answers,
    journey_rate,
    same_personas,
    stale_connections,
)
from journeys.client import PaymentApi
from journeys.customer import CheckoutJourney
from journeys.data import PaymentData, build_pools
from journeys.operator import BatchReportJourney
from journeys.option_sources import file_set_by
from journeys.option_typos import did_you_mean
from journeys.options import locust_options_early, personas_source
from journeys.personas import Persona, PersonaFileError, class_name, load_personas
from journeys.probes import EdgeProbesJourney, ErrorProbesJourney
from journeys.service_http import internal_token
from journeys.setup_stop import stop
from journeys.wording import counted

log = logging.getLogger(__name__)
# a 103 Early Hints or an unasked 100 Continue before an answer (see journeys/interim_answers.py)
interim_answers.install()
# x-gzip read as gzip, a body that does not decode named, not raised (journeys/content_coding.py)
content_coding.install()
# a request that crossed the service's close of an idle connection goes again (stale_connections.py)
stale_connections.install()

JOURNEYS_BY_ROLE = {
    "customer": [CheckoutJourney],
    "operator": [BatchReportJourney],
    "prober": [EdgeProbesJourney, ErrorProbesJourney],
}
#: Roles that call the internal report endpoint and so need PAYMENT_INTERNAL_TOKEN.
ROLES_NEEDING_TOKEN = frozenset({"operator", "prober"})


class PersonaUser(FastHttpUser):
    """A simulated user of one persona: its own data stream and API client."""

    abstract = True
    persona: Persona
    # journeys take their own think time (it is not part of their duration)
    wait_time = constant(0)
    network_timeout = 10.0
    connection_timeout = 5.0
    _indices: itertools.count

    def __init__(self, environment) -> None:
        # "http://svc:8000/" + "/pay" would be "//pay", an invalid request target
        if self.host:
            self.host = self.host.rstrip("/")
        super().__init__(environment)
        cookies.install(self.client)
        self.index = next(type(self)._indices)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        worker = (
            getattr(self.environment.runner, "worker_index", 0)
            if isinstance(self.environment.runner, WorkerRunner)
            else 0
        )
        self.data = PaymentData(self.persona, options.seed, self.index, worker)
        # --request-timeout bounds each attempt as a whole too, not only each socket read
        self.api = PaymentApi(
            self.client,
            self.data.jitter_rng,
            internal_token(),
            deadline_s=self.network_timeout,
        )
        self.operator_id = f"{self.persona.name}-{worker}-{self.index}"
        # --journey-rate: when to start each journey (None: the persona's think time)
        self.pace = journey_rate.pace_for(self.environment, self.data.rng)
        # Locust picks each pass's journey with the process's unseeded ``random``: a prober's
        # mix of edge and error probes, and so its data, changed from run to run of one --seed
        self._taskset_instance.get_next_task = self._next_journey

    def stop(self, force: bool = False) -> bool:
        """Locust's stop, without its race: a waiting user (thinking between journeys) is
        killed at once, but the kill lands only when the loop next runs its callbacks, and a
        user whose wait ended just before woke first, started a journey and was killed mid-
        request (its payment's fate unknown, despite --stop-timeout). Marked stopping first, such
        a user stops in Locust's ``wait`` (``StopUser``) before any request."""
        if not force and self._state == LOCUST_STATE_WAITING:
            self._state = LOCUST_STATE_STOPPING
            force = True
        return super().stop(force)

    def on_stop(self) -> None:
        """Close this user's connections. A stopped user (a spike's end, a lower user count
        from the web UI) is in reference cycles, as every Locust user is, so it lives on until
        Python's next full garbage collection, and its sockets with it: a long run kept the
        connections of every user it had stopped open. Its pace, if any, asks for no more
        starts: the test's stop counted a stopped user's as missed since."""
        self.client.client.close()
        pace = getattr(self, "pace", None)  # none if on_start failed before it
        if pace is not None:
            pace.closed = True

    def _next_journey(self):
        """The journey of the next pass, drawn from the user's seeded stream."""
        tasks = self.tasks
        if len(tasks) < 2:  # nothing to draw (none: Locust's own error)
            return DefaultTaskSet.get_next_task(self._taskset_instance)
        return tasks[int(self.data.rng.random() * len(tasks))]


def _tagged_task(task, tag: str):
    """A copy of a journey's task function that also carries ``tag`` (the original is shared).

    A real copy (same code, globals, defaults and closure), not a wrapper calling ``task``:
    that was one Python call more per journey."""
    run = types.FunctionType(
        task.__code__,
        task.__globals__,
        task.__name__,
        task.__defaults__,
        task.__closure__,
    )
    run.__kwdefaults__ = task.__kwdefaults__
    run.__qualname__, run.__doc__, run.__module__ = (
        task.__qualname__,
        task.__doc__,
        task.__module__,
    )
    run.locust_tag_set = set(getattr(task, "locust_tag_set", ())) | {tag}
    return run


def persona_journey(journey: type, persona: Persona) -> type:
    """The journey for one persona: its tasks also carry the persona's name as a Locust tag,
    so ``--tags budget_shopper`` runs that persona only (``--tags customer`` still runs all
    customers)."""
    tagged = [_tagged_task(t, persona.name) for t in journey.tasks]
    cls = type(journey.__name__, (journey,), {"__module__": journey.__module__})
    # set after creation: Locust's metaclass would add the base class's untagged tasks too,
    # and those would still run under --exclude-tags <persona>
    cls.tasks = tagged
    return cls


def persona_user_class(persona: Persona) -> type[PersonaUser]:
    return type(
        persona.class_name,
        (PersonaUser,),
        {
            "persona": persona,
            "weight": persona.weight,
            "tasks": [
                persona_journey(j, persona) for j in JOURNEYS_BY_ROLE[persona.role]
            ],
            "_indices": itertools.count(),
            "__module__": __name__,
            "__doc__": f"Persona {persona.name} ({persona.role}).",
        },
    )


def persona_user_classes(path) -> dict[str, type[PersonaUser]]:
    """Load the personas file and build its user classes; a bad file ends the process (exit 2)."""
    try:
        personas = load_personas(path)
    except PersonaFileError as exc:
        # read before Locust opens its --csv files: an earlier run's are still whole
        stop(locust_options_early(), file_set_by(str(exc), personas_source()))
    same_personas.remember(personas, path)
    _class_names[:] = [p.class_name for p in personas]
    return {p.class_name: persona_user_class(p) for p in personas}


#: The persona classes the locustfile defines, for checking the class names on the command line.
_class_names: list[str] = []


#: Where Locust reads the user classes a run names when the command line names none.
USER_CLASSES_ENV = "LOCUST_USER_CLASSES"


@events.init_command_line_parser.add_listener
def check_persona_class_names(parser) -> None:
    """Check the classes a run names (``locust BetaShopper``) as they are parsed, wherever they
    are named: on the command line, in ``LOCUST_USER_CLASSES`` or in a config file. Locust's own
    check only says "Unknown User(s): beta_shopper" and exits 1, and a config file's
    ``user-classes`` line, which Locust does not read, ends in "unrecognized arguments"."""
    for action in parser._actions:
        if action.dest == "user_classes":
            # Locust puts LOCUST_USER_CLASSES in the default, which argparse hands on unchecked
            action.__class__ = _PersonaClasses
    # Locust has no such option: this only turns a config file's line into a clear refusal
    parser.add_argument(
        "--user-classes", nargs="*", action=_NoConfigUserClasses, help=argparse.SUPPRESS
    )


class _PersonaClasses(argparse.Action):
    """The classes named on the command line, or else in ``LOCUST_USER_CLASSES``: each must be
    a persona class, else an argparse error (exit 2) naming them."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        problem = unknown_class_problem(values)
        stray = (
            problem
            and values is not self.default
            and stray_option_value(parser, values)
        )
        if stray:
            raise argparse.ArgumentError(None, stray)
        if problem and values is self.default:
            problem += (
                f" (set by {USER_CLASSES_ENV}={os.environ.get(USER_CLASSES_ENV)!r}: "
                "fix the value or remove it)"
            )
        if problem:
            raise argparse.ArgumentError(self, problem)
        setattr(namespace, self.dest, values)


class _NoConfigUserClasses(argparse.Action):
    """``user-classes = ...`` in a config file: refused, with where to name the classes."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        problem = unknown_class_problem(values)
        meant = " ".join(_closest_class(n) or n for n in values)
        refusal = (
            "a config file cannot name user classes: Locust reads them from the command line "
            f"(locust {meant}) or {USER_CLASSES_ENV}"
        )
        raise argparse.ArgumentError(
            self, f"{problem}; {refusal}" if problem else refusal
        )


def unknown_class_problem(names: list[str]) -> str | None:
    """What is wrong with the first of ``names`` that is no persona class, with the class it
    likely means and all of them; None when every name is one (or no personas are loaded)."""
    for text in names:
        if not _class_names or text in _class_names:
            continue
        close = _closest_class(text)
        hint = f" (did you mean {close}?)" if close else ""
        if "," in text:  # AlphaShopper,BetaShopper: a list as most tools take one
            names = [n.strip() for n in text.split(",") if n.strip()]
            meant = " ".join(_closest_class(n) or n for n in names)
            hint = f" (several classes are separate words: {meant})"
        return (
            f"unknown persona class '{text}'{hint}. Persona classes: {', '.join(_class_names)}, "
            "each the CamelCase form of a persona's name (--tags takes the name itself)"
        )
    return None


def stray_option_value(parser, values: list[str]) -> str | None:
    """``--junitxml reports/junit.xml``: argparse sets an option it does not know aside and
    hands the word after it to the user classes. Then the problem is that option, not a
    persona class: its name, the option it likely means, the fix; None when no unknown
    class follows an unknown option on the command line."""
    known = [name for name in parser._option_string_actions if name.startswith("--")]
    args = sys.argv[1:]
    for option, value in itertools.pairwise(args):
        if (
            value not in values
            or value in _class_names
            or not option.startswith("--")
            or "=" in option
            or any(name.startswith(option) for name in known)  # argparse takes a prefix
        ):
            continue
        hint = did_you_mean(option, known)
        return (
            f"unknown option {option}{hint}: its value '{value}' was read as a persona class. "
            "Fix the option's name: Locust's options are in locust --help, this tool's in the "
            "README's tables"
        )
    return None


def _closest_class(text: str) -> str | None:
    """The persona class ``text`` names or likely means: itself, its CamelCase form (the
    persona's name, budget_shopper), else the closest spelling; None when none is close."""
    for candidate in (text, class_name(text)):
        if candidate in _class_names:
            return candidate
    close = difflib.get_close_matches(text, _class_names, n=1, cutoff=0.6)
    return close[0] if close else None


#: Seconds a worker's pool build may hold the gevent loop before it lets the loop run.
POOL_BUILD_SLICE_S = 0.05


@events.test_start.add_listener
def build_data_pools(environment, **_kwargs) -> None:
    """Build every persona's data pools before the first user starts (workers know the seed by now).

    Building one (a locale's Faker, ~20 ms; its customers are made as they are drawn, a
    fraction of a millisecond each; the card pools) blocks the whole process: done by the
    first user of a persona, mid-test, it would add that to the time of every request in
    flight. Built in one go, many locales held a worker's loop for seconds, and its master,
    hearing no heartbeat for 3 s, took it for missing and stopped the test. So a worker lets
    its loop run between personas once a slice of building is over (``gevent.sleep(0)`` would
    not poll sockets). A standalone run does not: the web UI starts a test in a greenlet that
    the next start form (an edit of the test) kills, which would cut ``test_start`` short.
    """
    options = environment.parsed_options
    if options is None or isinstance(environment.runner, MasterRunner):
        return
    personas = [
        cls.persona for cls in environment.user_classes if hasattr(cls, "persona")
    ]
    let_the_loop_run = isinstance(environment.runner, WorkerRunner)
    started = slice_began = time.perf_counter()
    for persona in personas:
        build_pools(persona, options.seed)
        if let_the_loop_run and time.perf_counter() - slice_began > POOL_BUILD_SLICE_S:
            gevent.sleep(0.001)
            slice_began = time.perf_counter()
    log.info(
        "data pools ready for %s (%s) in %.2f s",
        counted(len(personas), "persona"),
        counted(len({p.locale for p in personas}), "locale"),
        time.perf_counter() - started,
    )


@events.test_start.add_listener
def count_users_afresh(environment, **_kwargs) -> None:
    """Number each test's users from 0 again: a user's data stream is drawn from the seed and
    its number, so a second test of one web UI with the first's seed sends the first's data
    (counting on, it sent other data)."""
    classes = environment.available_user_classes or {}
    for cls in {*classes.values(), *environment.user_classes}:
        if hasattr(cls, "persona"):
            cls._indices = itertools.count()


@events.test_start.add_listener
def apply_request_timeout(environment, **_kwargs) -> None:
    """``--request-timeout`` for every user, at test start: a worker knows the master's value
    only from then on (at init it has its own command line's)."""
    options = environment.parsed_options
    if options is None:
        return
    for cls in environment.user_classes:
        cls.network_timeout = options.request_timeout
