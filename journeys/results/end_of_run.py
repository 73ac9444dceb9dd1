"""The end of a run (master or standalone): CSV files, the HTML section, the JUnit XML report,
the summary, the exit code.

Runs in a ``quitting`` listener: at the end of a run time Locust has stopped the users by then,
the master has the workers' final reports, and Locust has written its ``--html`` report (its CSV
files are closed right after). On SIGTERM or Ctrl-C Locust fires ``quitting`` mid-run: we stop
the test first (journeys in flight end as ``interrupted``, their payments go into the ledger as
"unknown"), ``cut_short`` fails the verdict, and we write Locust's report again from the final
stats (none on SIGTERM, an early one on Ctrl-C) before adding the journeys to it.
The SLO verdict sets ``environment.process_exit_code``: 0 when every check passed, 1 otherwise.
The terminal summary is printed on ``quit``, after Locust's own tables and the phase table of a
load profile, so the verdict comes last.
"""

from __future__ import annotations

import atexit
import csv
import logging
from collections.abc import Callable
from pathlib import Path

import gevent
from locust import events
from locust.html import get_html_report, process_html_filename
from locust.runners import WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

from journeys import ctrl_c, same_personas
from journeys.results import (
    csv_report,
    cut_short,
    distributed,
    html_report,
    junit_report,
    ledger,
    reconcile_run,
    summary,
)
from journeys.results.snapshot import take

log = logging.getLogger(__name__)
console = logging.getLogger("locust.stats_logger")  # Locust's own plain console output


_last: dict = {}
#: --html files given the journeys section, with the snapshot it shows
_injected: dict = {}


#: True once the first ``quitting`` has begun (see ``finish_run``).
_finishing: list = []


@events.init.add_listener
def _hear_ctrl_c_again(environment, runner=None, **_kwargs) -> None:
    # a worker too: Ctrl-C reaches a --processes run's workers as well
    if runner is not None:
        ctrl_c.when_stopped_again(lambda: _stop_now(runner))


def _stop_now(runner) -> None:
    """Ctrl-C again while the run stops: wait no longer (for the users, the workers' final
    reports, ``--reconcile-run``'s report); the reports are written as after one Ctrl-C (a
    worker's users stop at once, and its final report goes to the master)."""
    then = "its final report" if isinstance(runner, WorkerRunner) else "the reports"
    log.warning("Ctrl-C again: stopping without waiting any longer; %s next", then)
    distributed.stop_now(runner)
    reconcile_run.stop_waiting("Ctrl-C")


@events.quitting.add_listener
def finish_run(environment, **_kwargs) -> None:
    if environment.runner is None or isinstance(environment.runner, WorkerRunner):
        return
    if _finishing:
        # quitting again (a SIGTERM, or Ctrl-C after one) while the first is still at work:
        # cut its wait for the workers' final reports or the report of --reconcile-run short
        # and let it write everything and end the process. Locust's shutdown must not go on
        # here: it would exit first.
        main = gevent.getcurrent() is gevent.get_hub().parent
        distributed.give_up_waiting()
        reconcile_run.stop_waiting("Ctrl-C" if main else "SIGTERM")
        # meanwhile the first one writes everything and ends the process
        gevent.sleep(120)
        return
    _finishing.append(True)
    # SIGTERM and Ctrl-C make Locust fire ``quitting`` while the users still run (it stops
    # them after): stop them first, or the journeys and payments in flight would be missing
    distributed.stop_the_test(environment.runner)

    def extra():
        return [
            check
            for check in (
                cut_short.check(),
                same_personas.check(),
                reconcile_run.check(environment),
            )
            if check
        ]

    snapshot = take(environment, extra)
    options = environment.parsed_options
    unwritten = []
    if options is not None and getattr(options, "csv_prefix", None):
        try:
            write_csv_files(environment, options.csv_prefix, snapshot)
        except OSError as exc:
            unwritten.append(f"the --csv files at {options.csv_prefix} ({exc})")
    if options is not None and getattr(options, "html_file", None):
        try:
            write_html_report(environment, options, snapshot)
        except OSError as exc:
            unwritten.append(f"the --html report {options.html_file} ({exc})")
    if options is not None and getattr(options, "junit_xml", None):
        try:
            junit_report.write(options.junit_xml, snapshot.verdict)
        except OSError as exc:
            unwritten.append(f"the --junit-xml report {options.junit_xml} ({exc})")
    for what in unwritten:
        # the run and its verdict stand; the job asked for a report it will not find (exit 2)
        log.error("Could not write %s: the verdict is printed below", what)
    _last["snapshot"] = snapshot
    _last["unwritten"] = unwritten
    environment.process_exit_code = max(
        environment.process_exit_code or 0,
        snapshot.verdict.exit_code,
        2 if unwritten else 0,
    )


def write_csv_files(environment, prefix: str, snapshot) -> None:
    """Locust's CSV files from the final stats, then ours (journeys, mix, SLO, ledger)."""
    write_final_locust_csv(environment, prefix)
    paths = csv_report.write_files(
        prefix, snapshot.rows, snapshot.mix, snapshot.verdict
    )
    paths.append(ledger.write_csv(prefix))
    log.info("Journey CSV files: %s", ", ".join(str(p) for p in paths))


def write_html_report(environment, options, snapshot) -> None:
    """Locust's report from the final stats, with the journeys added."""
    write_locust_report(environment, options)
    if html_report.inject(options.html_file, snapshot):
        _injected[options.html_file] = snapshot
    else:
        log.warning("No HTML report at %s to add the journeys to", options.html_file)


def write_final_locust_csv(environment, prefix: str) -> None:
    """Rewrite Locust's ``_stats.csv``, ``_failures.csv`` and ``_exceptions.csv`` from the final stats.

    Locust's CSV writer refreshes them once a second and does not write again at shutdown, so
    requests and journeys of the last second could be missing; our journey CSV is exact, and
    both must agree.
    """
    writer = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for suffix, write in (
        ("stats", writer.requests_csv),
        ("failures", writer.failures_csv),
        ("exceptions", writer.exceptions_csv),
    ):
        with open(f"{prefix}_{suffix}.csv", "w", newline="") as f:
            write(csv.writer(f))


def write_locust_report(environment, options) -> None:
    """Write Locust's ``--html`` report again, from the final stats, so the journeys go into one
    that agrees with them. Locust writes none on SIGTERM (``docker stop``, a CI job's timeout),
    and on Ctrl-C it writes one before the users stop and, on a master, before the workers' final
    reports (a ``--processes`` master's report said 0 requests where its CSV counted 36)."""
    # Locust's {u}/{r}/{t} placeholders; a no-op once done
    process_html_filename(options)
    path = Path(options.html_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        get_html_report(environment, show_download_link=False), encoding="utf-8"
    )


@atexit.register
def _keep_the_journeys_in_the_html_report() -> None:
    """On SIGTERM a master's main loop wakes when its runner quits and Locust writes ``--html``
    once more, after our ``quitting`` listener: put the journeys back into that copy."""
    for path, snapshot in _injected.items():
        file = Path(path)
        if file.is_file() and html_report.SECTION_ID not in file.read_text(
            encoding="utf-8"
        ):
            html_report.inject(file, snapshot)


#: Reports printed between Locust's tables and the summary (the load profile's phase table):
#: each gives its lines, or none. The verdict stays the last thing a CI log shows.
reports_before_summary: list[Callable[[], list[str]]] = []


@events.quit.add_listener
def print_summary(**_kwargs) -> None:
    """Last words, after Locust's own tables and the other reports: the journey summary and
    the verdict."""
    for report in reports_before_summary:
        lines = report()
        if lines:
            console.info("")
            for line in lines:
                console.info(line)
    snapshot = _last.pop("snapshot", None)
    if snapshot is None:
        return
    console.info("")
    for line in summary.lines(snapshot):
        console.info(line)
    # a job reading the log's tail must not see a PASS as the last word of an exit 2
    for what in _last.pop("unwritten", []):
        console.info(f"  NOT WRITTEN: {what}: exit code 2")
    console.info("")
