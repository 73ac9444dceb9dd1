"""The end of a run (master or standalone): CSV files, the HTML section, the summary, the exit code.

Runs in a ``quitting`` listener: by then Locust has stopped the users, the master has the workers'
final reports, and Locust has written its ``--html`` report (its CSV files are closed right after).
The SLO verdict sets ``environment.process_exit_code``: 0 when every check passed, 1 otherwise.
The terminal summary is printed on ``quit``, after Locust's own tables, so the verdict comes last.
"""

from __future__ import annotations

import csv
import logging

from locust import events
from locust.runners import WorkerRunner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

from journeys.results import csv_report, html_report, ledger, summary
from journeys.results.snapshot import take

log = logging.getLogger(__name__)
console = logging.getLogger("locust.stats_logger")  # Locust's own plain console output


_last: dict = {}


@events.quitting.add_listener
def finish_run(environment, **_kwargs) -> None:
    if environment.runner is None or isinstance(environment.runner, WorkerRunner):
        return
    snapshot = take(environment)
    options = environment.parsed_options
    if options is not None and getattr(options, "csv_prefix", None):
        write_final_locust_csv(environment, options.csv_prefix)
        paths = csv_report.write_files(
            options.csv_prefix, snapshot.rows, snapshot.mix, snapshot.verdict
        )
        paths.append(ledger.write_csv(options.csv_prefix))
        log.info("Journey CSV files: %s", ", ".join(str(p) for p in paths))
    html_file = getattr(options, "html_file", None) if options is not None else None
    if html_file and not html_report.inject(html_file, snapshot):
        log.warning("No HTML report at %s to add the journeys to", options.html_file)
    _last["snapshot"] = snapshot
    environment.process_exit_code = max(
        environment.process_exit_code or 0, snapshot.verdict.exit_code
    )


def write_final_locust_csv(environment, prefix: str) -> None:
    """Rewrite Locust's ``_stats.csv`` and ``_failures.csv`` from the final stats.

    Locust's CSV writer refreshes them once a second and does not write again at shutdown, so
    requests and journeys of the last second could be missing; our journey CSV is exact, and
    both must agree.
    """
    writer = StatsCSV(environment, PERCENTILES_TO_REPORT)
    for suffix, write in (
        ("stats", writer.requests_csv),
        ("failures", writer.failures_csv),
    ):
        with open(f"{prefix}_{suffix}.csv", "w", newline="") as f:
            write(csv.writer(f))


@events.quit.add_listener
def print_summary(**_kwargs) -> None:
    """Last words, after Locust's own tables: the journey summary and the verdict."""
    snapshot = _last.pop("snapshot", None)
    if snapshot is None:
        return
    console.info("")
    for line in summary.lines(snapshot):
        console.info(line)
    console.info("")
