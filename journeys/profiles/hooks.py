"""Where load profiles meet Locust's events: options, start-up checks, counting, reporting.

* ``init_command_line_parser``  ``--profile`` and its knobs (``schedule.add_options``)
* ``init``                      steady → no shape (plain Locust); other profiles are checked before
                                any traffic; workers learn the phase from the master's messages;
                                the web UI's start form is checked and picks the shape
* ``test_start``                a steady test forgets an earlier profile test's phases
* ``request``                   HTTP requests (not ``journey`` entries) counted into the phase,
                                listened to only while a phase is counted (``book.on_counting``)
* ``report_to_master`` / ``worker_report``  workers ship their phase counters, the master adds them
* ``test_start`` / ``spawning_complete``  points in Locust's chart history (the HTML report's
                                charts): the start, and where a phase's users have arrived
* ``test_stopping``             when the run stopped, to cut the last phase's window
* ``quitting`` / ``quit``       ``PREFIX_profile.csv``, then the report after Locust's own tables
"""

from __future__ import annotations

import argparse
import logging

from flask import request
from locust import events
from locust.runners import STATE_RUNNING, STATE_SPAWNING, WorkerRunner
from locust.util.timespan import parse_timespan

from journeys.profiles import chart, report, verdict
from journeys.profiles.phases import PHASE_MESSAGE, REPORT_KEY, book
from journeys.profiles.schedule import (
    DEFAULT_PROFILE,
    ProfileConfigError,
    add_options,
    build_schedule,
    profile_name,
    profile_of,
    spike_multiplier,
)
from journeys.profiles.shape import LoadProfile
from journeys.results import end_of_run, slo
from journeys.results.distributed import left_workers, lost_workers
from journeys.setup_stop import stop
from journeys.start_form import refusal, set_form_values

log = logging.getLogger(__name__)

_last_report: list[str] = []

events.init_command_line_parser.add_listener(add_options)


def _our_shape(environment) -> LoadProfile | None:
    shapes = environment.available_shape_classes or {}
    return next((s for s in shapes.values() if isinstance(s, LoadProfile)), None)


def _use_profile(environment, profile: str) -> None:
    """Steady: no shape, plain Locust. Others: our shape drives the run."""
    shape = _our_shape(environment)
    if profile == DEFAULT_PROFILE:
        if isinstance(environment.shape_class, LoadProfile):
            # steady is plain Locust, unless another locustfile brings a shape of its own
            others = [
                s
                for s in (environment.available_shape_classes or {}).values()
                if not isinstance(s, LoadProfile)
            ]
            environment.shape_class = others[0] if others else None
            if environment.shape_class is not None:
                environment.shape_class.runner = environment.runner
    else:
        shape.runner = environment.runner
        environment.shape_class = shape


@events.init.add_listener
def set_up(environment, runner=None, web_ui=None, **_kwargs) -> None:
    if isinstance(runner, WorkerRunner):
        runner.register_message(PHASE_MESSAGE, _on_phase)
        return
    options = environment.parsed_options
    profile = profile_of(options)
    if profile != DEFAULT_PROFILE and _our_shape(environment) is None:
        stop(
            options,
            f"--profile {profile} needs the LoadProfile shape in the locustfile: add "
            "`from journeys.profiles import LoadProfile  # noqa: F401`.",
        )
    if _our_shape(environment) is None:
        return
    _use_profile(environment, profile)
    if options is not None and (options.headless or options.autostart):
        try:
            build_schedule(options)
        except ProfileConfigError as exc:
            stop(options, str(exc))
    if web_ui is not None:
        web_ui.app.before_request(lambda: _check_start_form(environment))
    environment.events.test_start.add_listener(
        lambda **_kwargs: _chart_point(environment, chart.mark)
    )
    environment.events.spawning_complete.add_listener(
        lambda **_kwargs: _chart_point(environment, chart.mark_reached)
    )


def _chart_point(environment, mark) -> None:
    """A point in Locust's chart history as a profile test starts (0 users: the test's start
    clears the history) and where a phase's users have all arrived or left (the point where
    a phase starts is the shape's)."""
    if _profile_run(environment):
        mark(environment.runner)


def _on_phase(environment, msg, **_kwargs) -> None:
    book.enter(msg.data)


def _form_value(field: str, parse):
    """The start form's ``field`` parsed as its option's type; a bad one names the field."""
    try:
        return parse(request.form[field])
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{field}: {exc}") from None


def _check_start_form(environment):
    """Web UI "Start": the form's Profile field picks the profile; a bad one is refused."""
    if request.method != "POST" or request.endpoint != "locust.swarm":
        return None
    runner = environment.runner
    if runner is not None and runner.state in (STATE_RUNNING, STATE_SPAWNING):
        shape = environment.shape_class
        if isinstance(shape, LoadProfile) and shape.schedule is not None:
            # Locust ignores the edit of a shape test, and with --class-picker its form
            # (no Shape Class field) dropped the shape: the test stopped at its next tick
            message = (
                f"The {shape.schedule.profile} profile sets the user count itself: stop the "
                "test to change the users, the ramp up or the profile. The test goes on."
            )
            # Locust's edit dialog shows no answer: the Logs tab does
            log.warning("%s", message)
            return refusal(environment, message)
        return None  # editing a running test: the profile stays what it is
    options = argparse.Namespace(
        **vars(environment.parsed_options or argparse.Namespace())
    )
    try:
        options.profile = profile_name(request.form.get("profile") or DEFAULT_PROFILE)
        options.num_users = int(request.form.get("user_count") or 1)
        options.spawn_rate = float(request.form.get("spawn_rate") or 1)
        run_time = request.form.get("run_time")
        options.run_time = parse_timespan(run_time) if run_time else None
        multiplier = request.form.get("spike_multiplier")  # under Custom parameters
        if multiplier:
            options.spike_multiplier = _form_value("spike_multiplier", spike_multiplier)
        build_schedule(options)
    except (argparse.ArgumentTypeError, ProfileConfigError) as exc:
        message = str(exc)
        # a profile that parsed (not a mistyped one) and no run time: point at the form's field
        if isinstance(exc, ProfileConfigError) and not options.run_time:
            message = f"The {options.profile} profile needs a run time: fill in Advanced options → Run time."
        return refusal(environment, message)
    except ValueError:
        return None  # Locust's own checks answer malformed numbers
    _use_profile(environment, options.profile)
    picked = request.form.get("shape_class")
    if picked:
        # --class-picker: Locust sets the shape from the form's Shape Class ("Default": none);
        # the Profile field decides ours, else "Default" would run a spike as steady load, and
        # "LoadProfile" with no profile a steady test its edits are refused
        name = next(
            n
            for n, s in environment.available_shape_classes.items()
            if isinstance(s, LoadProfile)
        )
        if options.profile != DEFAULT_PROFILE:
            set_form_values("shape_class", [name])
        elif picked == name:
            set_form_values("shape_class", ["Default"])
    return None


def count_request(response_time, exception=None, **_kwargs) -> None:
    """A ``request`` listener while a phase is counted (HTTP only: journeys are not request
    events); a steady run never has it, so it costs those nothing per request."""
    book.record(response_time, exception is not None)


def _listen_to_requests(counting: bool) -> None:
    if counting:
        events.request.add_listener(count_request)
    else:
        events.request.remove_listener(count_request)


book.on_counting = _listen_to_requests


@events.test_start.add_listener
def forget_an_earlier_profile(environment, **_kwargs) -> None:
    """A test without the profile shape (steady) has no phases: the web UI's load profile CSV
    offered an earlier spike test's phases as if they were this test's."""
    if not isinstance(environment.runner, WorkerRunner) and not isinstance(
        environment.shape_class, LoadProfile
    ):
        book.start(None)


@events.test_stop.add_listener
def forget_phase(environment, **_kwargs) -> None:
    if isinstance(environment.runner, WorkerRunner):
        book.enter(None)  # a following plain run must not count into an old phase


@events.report_to_master.add_listener
def send_phase_counters(client_id, data, **_kwargs) -> None:
    if book.phases:
        data[REPORT_KEY] = book.serialize()
        book.reset()


@events.worker_report.add_listener
def merge_phase_counters(client_id, data, **_kwargs) -> None:
    if data.get(REPORT_KEY):
        book.merge(data[REPORT_KEY])


@events.test_stopping.add_listener
def note_stop(environment, **_kwargs) -> None:
    shape = environment.shape_class
    if isinstance(shape, LoadProfile) and book.schedule is not None:
        book.stopped_at_s = shape.get_run_time()


def _profile_run(environment) -> bool:
    return (
        not isinstance(environment.runner, WorkerRunner)
        and isinstance(environment.shape_class, LoadProfile)
        and book.schedule is not None
    )


def phase_report(environment) -> report.PhaseReport | None:
    """The phase report of this process's profile test as it stands (None: no profile test),
    for the HTML report; the console's and the log's are its lines."""
    if not _profile_run(environment):
        return None
    table = report.rows(book)
    notes = report.notes(
        book, table, lost_workers(environment), left_workers(environment)
    )
    return report.PhaseReport(report.title(book), table, notes)


@events.test_stop.add_listener
def log_report_in_web_ui(environment, **_kwargs) -> None:
    """Web UI runs can be many per process: log each one's report when it stops."""
    options = environment.parsed_options
    if _profile_run(environment) and options is not None and not options.headless:
        table = report.rows(book)
        for line in report.lines(
            book, table, lost_workers(environment), left_workers(environment)
        ):
            log.info("%s", line)


@events.quitting.add_listener
def write_report(environment, **_kwargs) -> None:
    _last_report.clear()
    if not _profile_run(environment):
        return
    table = report.rows(book)
    prefix = getattr(environment.parsed_options, "csv_prefix", None)
    if prefix:
        try:
            log.info("Load profile CSV: %s", report.write_csv(prefix, table))
        except (
            OSError
        ) as exc:  # as for the other CSV files (results.end_of_run): exit 2
            log.error("Could not write the load profile CSV at %s (%s)", prefix, exc)
            environment.process_exit_code = max(environment.process_exit_code or 0, 2)
    _last_report.extend(
        report.lines(book, table, lost_workers(environment), left_workers(environment))
    )


def _printed_report() -> list[str]:
    """The phase table for the end of a headless run, printed just before the verdict."""
    return list(_last_report)


end_of_run.reports_before_summary.append(_printed_report)
slo.more_checks.append(lambda targets: verdict.phase_checks(book, targets))
