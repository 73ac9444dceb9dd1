"""The places where any code's text leaves this process, scrubbed of card numbers and the
internal token whoever wrote it: every log record (Locust's console and web UI "Logs" tab,
ddtrace, geventhttpclient, a traceback's text, our own modules), Locust's Exceptions table and
its Failures table (their web UI tabs, ``_exceptions.csv`` / ``_failures.csv``, the HTML
report; a worker's rows reach the master scrubbed or are scrubbed there). The messages we write
scrub at their source (``journeys.scrub``); these sinks stand behind them, for what nobody
thought of.

Records are wrapped through Python's log record factory (the logging cookbook's hook for
changing every record), so the scrubbing holds from the locustfile's import on, before Locust
sets up its handlers, in master, workers and ``--processes`` children alike. Records, exceptions
and failures are few (nothing is logged per request, a failure is scrubbed in ~3 µs), so
scrubbing each costs nothing that shows.
"""

from __future__ import annotations

import logging

from locust import events
from locust.stats import StatsError

from journeys.scrub import scrub, secrets_from_env


def _scrubbed(make_record):
    def make_scrubbed_record(*args, **kwargs) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        secrets = secrets_from_env()
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  (a bad format: logging reports it at emit time)
            return record
        clean = scrub(message, secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[0] is not None:
            trace = logging.Formatter().formatException(record.exc_info)
            record.exc_text = scrub(
                trace, secrets
            )  # formatters print exc_text when set
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, secrets)
        return record

    make_scrubbed_record.scrubs = True
    return make_scrubbed_record


def scrub_every_log_record() -> None:
    """Install the scrubbing record factory (once per process)."""
    make_record = logging.getLogRecordFactory()
    if not getattr(make_record, "scrubs", False):
        logging.setLogRecordFactory(_scrubbed(make_record))


def scrubbed_error(error):
    """A failure as Locust's Failures table shows it, scrubbed; ``error`` itself when clean."""
    text = StatsError.parse_error(error)
    clean = scrub(text, secrets_from_env())
    return error if clean == text else clean


@events.init.add_listener
def scrub_the_failures_and_exceptions_tables(environment, runner=None, **_) -> None:
    """Every failure Locust logs (a request's, here or on a worker) and every row its runner
    adds to the Exceptions table (a user's exception here, or a worker's on the master) goes in
    scrubbed: the failure's message; the exception's message and traceback. (Journey failures
    are logged by ``results.collector`` through ``scrubbed_error``.)"""
    log_error = environment.stats.log_error

    def log_scrubbed_error(method: str, name: str, error) -> None:
        log_error(method, name, scrubbed_error(error))

    environment.stats.log_error = log_scrubbed_error
    runner = runner or environment.runner
    if runner is None:
        return
    log_exception = runner.log_exception

    def log_scrubbed_exception(node_id: str, msg: str, formatted_tb: str) -> None:
        secrets = secrets_from_env()
        log_exception(node_id, scrub(msg, secrets), scrub(formatted_tb, secrets))

    runner.log_exception = log_scrubbed_exception


scrub_every_log_record()  # on import, as the locustfile imports it
