"""The two places where any code's text leaves this process, scrubbed of card numbers and the
internal token whoever wrote it: every log record (Locust's console and web UI "Logs" tab,
ddtrace, geventhttpclient, a traceback's text, our own modules) and Locust's Exceptions table
(its web UI tab, ``_exceptions.csv``, the HTML report). The messages we write scrub at their
source (``journeys.scrub``); these sinks stand behind them, for what nobody thought of.

Records are wrapped through Python's log record factory (the logging cookbook's hook for
changing every record), so the scrubbing holds from the locustfile's import on, before Locust
sets up its handlers, in master, workers and ``--processes`` children alike. Records and
exceptions are few (nothing is logged per request), so scrubbing each costs nothing that shows.
"""

from __future__ import annotations

import logging

from locust import events

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


@events.init.add_listener
def scrub_the_exceptions_table(environment, runner=None, **_) -> None:
    """Every row Locust's runner adds to its Exceptions table (a user's exception here, or a
    worker's on the master) goes in scrubbed: its message and its traceback."""
    runner = runner or environment.runner
    if runner is None:
        return
    log_exception = runner.log_exception

    def log_scrubbed_exception(node_id: str, msg: str, formatted_tb: str) -> None:
        secrets = secrets_from_env()
        log_exception(node_id, scrub(msg, secrets), scrub(formatted_tb, secrets))

    runner.log_exception = log_scrubbed_exception


scrub_every_log_record()  # on import, as the locustfile imports it
