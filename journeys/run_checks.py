"""Before any traffic: the run's setup checked, so a misconfigured run ends with exit 2 and one
message instead of a run whose every request fails.

The master (or a standalone run) checks at ``init``: the tracing settings, the web UI's port, the
user count, the ``--tags``, the internal token and the target (``journeys.preflight``). The web
UI's start form brings the host and the personas later: the same checks answer in the form. A
worker checks its own token and tracing settings at ``test_start`` and leaves the run when it
cannot take part.
"""

from __future__ import annotations

import logging
import sys
from urllib.parse import urlsplit

from flask import request
from locust import events
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner

from journeys import ctrl_c, leave_run, setup_stop, tracing
from journeys.idle_personas import idle_personas
from journeys.preflight import (
    NO_TARGET,
    pay_endpoint_problem,
    token_problem,
    token_unusable,
    wait_for_host,
    web_port_problem,
)
from journeys.profiles.schedule import ProfileConfigError, build_schedule
from journeys.results import left_out, reconcile_run
from journeys.results.left_out import journeys_of
from journeys.seed_form import settle_the_seed
from journeys.service_http import TOKEN_ENV, internal_token, without_credentials
from journeys.start_form import refusal, set_form_values, start_form_sent
from journeys.tags import (
    no_journey_left,
    quiet_locusts_tag_warnings,
    tag_summary,
    unknown_tags,
)
from journeys.users import ROLES_NEEDING_TOKEN

log = logging.getLogger(__name__)


def _fail(message: str) -> None:
    setup_stop.stop(_this_run[0] if _this_run else None, message)


#: The options of the run being checked (for ``_fail``).
_this_run: list = []


@events.init.add_listener
def prepare_run(environment, **_kwargs) -> None:
    """Before any traffic: seed, tags, token and target checks (master/standalone decide)."""
    options = environment.parsed_options
    if options is None:
        return
    quiet_locusts_tag_warnings()  # workers filter the tasks too, at their first spawn
    if isinstance(environment.runner, WorkerRunner):
        return  # the master checks; a worker gets seed and tags with its first spawn message
    _this_run[:] = [options]
    try:
        _check_run(environment, options)
    except SystemExit:
        setup_stop.clear_reports(options)  # also after an exit not ours (done: a no-op)
        raise
    finally:
        _this_run.clear()


def _login_without_a_check(environment, options) -> bool:
    """``--web-login`` with nothing to check the login: only our locustfile is loaded (a second
    one may register a check in its own ``init`` listener, after this one) and the UI has no
    secret key for its session, which a login check sets."""
    return (
        bool(getattr(options, "web_login", False))
        and len(environment.parsed_locustfiles or []) <= 1
        and not environment.web_ui.app.secret_key
    )


def _check_run(environment, options) -> None:
    tracing_problem = tracing.setup_failure()
    if tracing_problem:
        _fail(tracing_problem)
    if environment.web_ui is not None:
        problem = web_port_problem(options.web_host, options.web_port)
        if problem:
            _fail(problem)
        if _login_without_a_check(environment, options):
            _fail(
                "--web-login (LOCUST_WEB_LOGIN) puts a login page in front of the web UI, but no "
                "login check is registered: Locust has none of its own, so every page would "
                "answer 'Locust auth exception' (and log a traceback). Add one in a second "
                "locustfile (-f locustfile.py,auth.py; see Locust's 'authentication' docs), or "
                "leave --web-login out and keep the UI on 127.0.0.1 or behind a proxy with a "
                "login."
            )
    users = getattr(options, "num_users", None)
    if (users or 0) < 0:
        _fail(f"-u/--users (LOCUST_USERS) must be 0 or more, got {users}.")
    if users == 0 and (options.headless or options.autostart):
        _fail(
            "-u/--users (LOCUST_USERS) is 0: a run without the web UI needs at least 1 user "
            "(0 is only for starting the web UI idle)."
        )
    settle_the_seed(options)
    problem = unknown_tags(
        environment.user_classes,
        options,
        (environment.available_user_classes or {}).values(),
    )
    if problem:
        _fail(problem)
    filtered = list(environment.user_classes)
    every = journeys_of((environment.available_user_classes or {}).values())
    named = journeys_of(filtered)  # before the tags filter their tasks
    environment._filter_tasks_by_tags()
    active = [cls for cls in filtered if cls.tasks]
    if not active:
        _fail(no_journey_left(options))
    environment.user_classes[:] = active
    left_out.record(every, named, journeys_of(active), options)
    summary = tag_summary(options, filtered, active)
    if summary:
        log.info("%s", summary)
    # --class-picker offers every class Locust found, tags or not: a persona left with no
    # journey would be ticked, and its users would raise "No tasks defined" every second
    picker = environment.available_user_classes or {}
    for name, cls in list(picker.items()):
        if cls in filtered and cls not in active:
            del picker[name]
    needing = personas_needing_token(active)
    reconciling = reconcile_run.wanted(options)
    if (
        getattr(options, "class_picker", False)
        and not options.headless
        and not options.autostart
    ):
        needing = []  # the personas are picked in the start form, which asks for the token then
    if needing or reconciling:
        problem = token_setting_problem(needing, reconciling=reconciling)
        if problem:
            _fail(problem)
    # in the web UI the host may still be typed in the start form (checked when it is sent)
    if options.headless or options.autostart:
        _check_target(
            environment.host,
            options.wait_for_host,
            token_needed=bool(needing) or reconciling,
            needing=needing,
        )
        _name_idle_personas(active, options)  # after the errors: a run that starts
        _named_at_init.append(True)


#: The first test's idle personas were named at ``init`` (headless, ``--autostart``).
_named_at_init: list[bool] = []


@events.test_start.add_listener
def name_idle_personas_of_the_form(environment, **_kwargs) -> None:
    """A test the web UI's form starts: its user count (and profile) come from the form, which
    Locust has copied into the options by now; the headless warning, said for that test."""
    if (
        isinstance(environment.runner, WorkerRunner)
        or environment.parsed_options is None
    ):
        return
    if _named_at_init:
        _named_at_init.clear()  # the test --headless or --autostart started
        return
    _name_idle_personas(
        environment.user_classes, environment.parsed_options, "the start form's users"
    )


def _name_idle_personas_of_an_edit(environment) -> None:
    """An edit of a running steady test down to a user count that leaves personas idle says
    so, as its start would have (a load profile refuses the edit on its own)."""
    if environment.shape_class is not None:
        return
    try:
        users = int(request.form.get("user_count", ""))
    except ValueError:
        return  # Locust answers a malformed count
    warning = users > 0 and idle_personas(
        environment.user_classes, users, f"-u {users} (the edit of the running test)"
    )
    if warning:
        log.warning("%s", warning)


def _name_idle_personas(classes, options, source: str | None = None) -> None:
    """Warn about personas the run's user count gives no user (at a load profile's most);
    ``source`` says where that count came from when not from ``-u``. Without ``-u`` (no
    ``locust.conf`` where ``locust`` runs) Locust starts its default of 1."""
    given = getattr(options, "num_users", None)
    users = 1 if given is None else given
    try:
        most = max(phase.users for phase in build_schedule(options).phases)
    except (ProfileConfigError, ValueError, AttributeError, TypeError):
        most = users  # a profile that cannot run is refused on its own
    notes = [source] if source else []
    if most != users:
        notes.append(f"{most} at the profile's most")
    said = f"-u {users}" if given is not None else "No -u: Locust's default of 1 user"
    said += f" ({'; '.join(notes)})" if notes else ""
    warning = users and idle_personas(classes, max(users, most), said)
    if warning:
        log.warning("%s", warning)


def _check_target(
    host: str | None, wait_s: float, *, token_needed: bool, needing: list[str]
) -> None:
    """Set, reachable, with a payment endpoint and (when operators/probers run) taking the
    token: else exit 2 now."""
    try:
        with ctrl_c.sigterm_stops():
            problem = _target_problem(
                host, wait_s, token_needed=token_needed, needing=needing
            )
    except (KeyboardInterrupt, ctrl_c.StoppedBeforeStart) as stop:
        # the wait for the target (--wait-for-host) is long: stop it at once, without a traceback
        name = "Ctrl-C" if isinstance(stop, KeyboardInterrupt) else "SIGTERM"
        sys.stderr.write(
            f"{name} while checking the target: stopped. {setup_stop.NOTHING_SENT}\n"
        )
        sys.exit(1)
    if problem:
        _fail(problem)


def _target_problem(
    host: str | None, wait_s: float, *, token_needed: bool, needing: list[str]
) -> str | None:
    """What stops a run at ``host``: none, unreachable, no payment endpoint, credentials in
    the place of the token ``needing`` personas send, or the token refused."""
    if not host:
        return NO_TARGET
    problem = (
        wait_for_host(host, wait_s)
        or pay_endpoint_problem(host)
        or credentials_problem(host, needing)
    )
    if not problem and token_needed:
        # asked once, here: a wrong token is refused now, not 403s for the whole run
        problem = token_problem(host, internal_token())
    return problem


def personas_needing_token(classes) -> list[str]:
    """Names of the personas among ``classes`` that call the internal report endpoint."""
    return sorted(
        cls.persona.name
        for cls in classes
        if getattr(cls, "persona", None) and cls.persona.role in ROLES_NEEDING_TOKEN
    )


def credentials_problem(host: str | None, needing: list[str]) -> str | None:
    """Why ``host``'s ``user:password@`` cannot be used by this run: Locust's client sends them
    as the Authorization header of every request, in place of the internal token that the
    report requests of ``needing`` carry (each would be refused with 401). Never quotes them."""
    if not needing or not host or "@" not in urlsplit(host).netloc:
        return None
    who = (
        f"persona {needing[0]}"
        if len(needing) == 1
        else f"personas {', '.join(needing)}"
    )
    return (
        f"--host carries a user and password ({without_credentials(host)} with user:password@ "
        f"before its host name): Locust sends them as the Authorization header of every "
        f"request, in place of {TOKEN_ENV}, so each internal report request of {who} would "
        "be refused. Take them out of --host (LOCUST_HOST), or leave "
        f"{'that persona' if len(needing) == 1 else 'those personas'} out "
        "(e.g. --tags customer)."
    )


def token_setting_problem(
    needing: list[str], *, reconciling: bool = False, picked: bool = False
) -> str | None:
    """Why the token, needed by ``needing`` or ``--reconcile-run``, is missing or unusable."""
    if not internal_token():
        return missing_token(needing, reconciling=reconciling, picked=picked)
    return token_unusable()


def missing_token(
    needing: list[str], *, reconciling: bool = False, picked: bool = False
) -> str:
    """Why the token is needed (personas, ``--reconcile-run``) and every way out, in one go
    (``picked``: the personas were picked in the web UI's start form, ``--class-picker``)."""
    why, ways_out = [], []
    if needing:
        who = (
            f"persona {needing[0]} calls"
            if len(needing) == 1
            else f"personas {', '.join(needing)} call"
        )
        why.append(f"{who} the internal report endpoint")
        them = "that persona" if len(needing) == 1 else "those personas"
        how = (
            "untick it in the form" if len(needing) == 1 else "untick them in the form"
        )
        ways_out.append(
            f"leave {them} out ({how if picked else 'e.g. --tags customer'})"
        )
    if reconciling:
        endpoint = "it" if needing else "the internal report endpoint"
        why.append(f"--reconcile-run asks {endpoint} for the run's payments")
        ways_out.append("drop --reconcile-run")
    return (
        f"{TOKEN_ENV} is not set, but {' and '.join(why)}. Set {TOKEN_ENV} to the payment "
        f"service's internal token, or {' and '.join(ways_out)}."
    )


#: The start form's answer on a master whose workers are all busy stopping, or none connected.
NO_WORKER_READY = (
    "No worker is ready to run the test: start one (locust -f locustfile.py --worker "
    "--master-host ...), or, right after a stop, wait until the workers report ready again (up "
    "to --stop-timeout, {stop_timeout:g} s). The test was not started."
)


@events.init.add_listener
def check_target_on_start(environment, web_ui=None, **_kwargs) -> None:
    """The web UI's start form brings the host (and, with ``--class-picker``, the personas): the
    headless preflight's checks, answered in the form instead of a run whose every request fails.

    Not for an edit of a running test (the form posts to ``/swarm`` too: lowering the load of a
    struggling service must not be refused), nor before Locust's ``--web-login`` check.
    """
    if web_ui is None or isinstance(environment.runner, WorkerRunner):
        return

    @web_ui.app.before_request
    def _check_swarm():
        if not start_form_sent(web_ui):
            return None
        if environment.runner is not None and environment.runner.state in (
            STATE_RUNNING,
            STATE_SPAWNING,
        ):
            if environment.available_user_classes and request.form.get("user_classes"):
                # the edit form posts the picker as the page last saw it: after a reload,
                # every persona. Locust would take them all for the run's classes (the running
                # users keep theirs), and the tabs and reports would show personas not running.
                set_form_values(
                    "user_classes", [cls.__name__ for cls in environment.user_classes]
                )
            _name_idle_personas_of_an_edit(environment)
            return None
        runner = environment.runner
        if isinstance(runner, MasterRunner) and not runner.worker_count:
            # Locust would answer success, log "can't start a distributed test" and start nothing
            problem = NO_WORKER_READY.format(stop_timeout=environment.stop_timeout or 0)
            log.error("%s", problem)
            return refusal(environment, problem)
        # Locust sets the host from the form's field, even an empty one
        host = request.form.get("host", environment.host or "").strip()
        classes = environment.user_classes
        picked = request.form.getlist("user_classes")
        if picked and environment.available_user_classes:
            classes = [
                environment.available_user_classes[n]
                for n in picked
                if n in environment.available_user_classes
            ]
        needing = personas_needing_token(classes)
        if not host:
            problem = (
                "No target: type the host (e.g. http://127.0.0.1:8000) in the start form, or "
                "start Locust with --host or LOCUST_HOST."
            )
        else:
            problem = (
                needing and token_setting_problem(needing, picked=bool(picked))
            ) or _target_problem(host, 0, token_needed=bool(needing), needing=needing)
        if problem is None:
            return None
        problem += " The test was not started."
        log.error("%s", problem)
        return refusal(environment, problem)


#: Worker → master: this worker cannot take part (no token for the personas it would run,
#: DD_* values tracing cannot run with).
CANNOT_RUN_MESSAGE = "worker_cannot_run"


@events.init.add_listener
def _hear_workers_that_cannot_run(environment, **_kwargs) -> None:
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(
            CANNOT_RUN_MESSAGE,
            lambda msg, **_kw: _worker_cannot_run(environment, msg.data),
        )


@events.test_start.add_listener
def _check_this_worker(environment, **_kwargs) -> None:
    """Worker: the master checked its own token and ``DD_*`` values, not this process's. A
    worker started without the token (another shell, a late joiner) would fail each of its
    operator journeys with a 403, and one whose ``DD_*`` values tracing cannot run with would
    send no traces: it leaves instead (exit 2, nothing sent), and the master ends the run with
    exit 2, naming it."""
    runner = leave_run.worker_runner(environment)
    if runner is None:
        return
    problem = _token_problem_on_worker(environment) or tracing.setup_failure()
    if problem:
        leave_run.leave_the_run(
            runner,
            CANNOT_RUN_MESSAGE,
            {"worker": runner.client_id, "problem": problem},
            f"On this worker: {problem}",
        )


def _token_problem_on_worker(environment) -> str | None:
    needing = personas_needing_token([c for c in environment.user_classes if c.tasks])
    return token_setting_problem(needing) if needing else None


def _worker_cannot_run(environment, data) -> None:
    """Master: a worker cannot take part; end the run with exit 2."""
    data = data if isinstance(data, dict) else {}
    log.error(
        "Worker %s cannot take part: %s The test stops.",
        data.get("worker", "?"),
        data.get("problem", "its setup differs from the master's."),
    )
    leave_run.stop_for_a_worker(environment, data.get("worker"))
