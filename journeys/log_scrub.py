"""Every log record leaves this process without card numbers or the internal token, whoever
logs it: Locust (an unhandled exception's traceback, its console and web UI "Logs" tab),
ddtrace, geventhttpclient and our own modules. The messages we write scrub at their source
(``journeys.scrub``); this is the one sink behind them, for what nobody thought of.

It wraps Python's log record factory (the logging cookbook's hook for changing every
record), so it holds from the locustfile's import on, before Locust has set up its handlers,
and in master, workers and ``--processes`` children alike. Records are few (nothing is
logged per request), so scrubbing each one costs nothing that shows.
"""

from __future__ import annotations

import logging

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


scrub_every_log_record()  # on import, as the locustfile imports it
