"""A run stopped before any traffic (exit 2): its message, and no report that looks like its own.

Locust creates its ``--csv`` files before the setup checks run, so a run they stop leaves them
empty; and an earlier run's reports at the same ``--csv`` prefix, ``--html`` and
``--junit-xml`` paths (a CI workspace kept between builds) would be archived as this run's,
their ``PASS`` in ``_slo.csv`` beside this run's exit 2. Every setup check that ends a run
(``run_checks``, the load profile's, the SLO targets', the personas file's and the master
port's) goes through here, which ends each message with ``NOTHING_SENT``; so does argparse's
refusal of an option (``journeys.option_sources``)::

    stop(environment.parsed_options, "The spike window ... or lengthen --run-time.")
"""

from __future__ import annotations

import os
import sys
import time
from typing import NoReturn

from journeys.scrub import scrub, secrets_from_env

#: The ``--csv`` files Locust opens before our checks run (``<prefix>_stats.csv`` etc.).
CSV_SUFFIXES = ("_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv")
#: The ``--csv`` files the tool writes at the end of a run.
OUR_CSV_SUFFIXES = (
    "_journeys.csv",
    "_persona_mix.csv",
    "_slo.csv",
    "_ledger.csv",
    "_profile.csv",
)
#: A live Locust rewrites its open ``--csv`` files every second and flushes them every 5 s
#: (``CSV_STATS_FLUSH_INTERVAL_SEC``): one of them changed this recently is a run's still going.
LIVE_WINDOW_S = 15

#: The closing sentence of every stop before any traffic, said in one place (``closed``): a CI
#: job greps its log for it.
NOTHING_SENT = "No traffic was sent."


def closed(message: str) -> str:
    """``message`` ending with ``NOTHING_SENT``, once: after a sentence of its own, or on a line
    of its own below a list of problems (the personas and ``--slo-targets`` files')."""
    message = message.rstrip()
    if message.endswith(NOTHING_SENT):
        return message
    if "\n" in message:
        return f"{message}\n{NOTHING_SENT}"
    if not message.endswith((".", "!", "?")):
        message += "."
    return f"{message} {NOTHING_SENT}"


def stop(options, message: str) -> NoReturn:
    """End the run with ``message`` (and ``NOTHING_SENT``) and exit code 2, its places cleared
    (``clear_reports``)."""
    clear_reports(options)  # said first: the reason stays the last line
    # a message may quote a value (a --tags value): the token mapped to the wrong variable
    sys.stderr.write(f"{scrub(closed(message), secrets_from_env())}\n")
    sys.exit(2)


def clear_reports(options) -> None:
    """Remove Locust's empty ``--csv`` files and an earlier run's reports at this run's
    ``--csv`` prefix, ``--html`` and ``--junit-xml`` paths (naming those); safe to call
    again. A run stopped while the locustfile loads (the personas file) finds Locust's files
    still whole: they are an earlier run's too, unless a run still going writes them
    (``_being_written``): those stay. A worker writes none: its master clears them."""
    if options is None or getattr(options, "worker", False):
        return
    prefix = getattr(options, "csv_prefix", None)
    locusts = [f"{prefix}{suffix}" for suffix in CSV_SUFFIXES] if prefix else []
    for path in locusts:
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            os.remove(path)  # this run's, as Locust opened them
    paths = locusts + (
        [f"{prefix}{suffix}" for suffix in OUR_CSV_SUFFIXES] if prefix else []
    )
    paths += [
        path
        for path in (
            getattr(options, name, None) for name in ("html_file", "junit_xml")
        )
        if path
    ]
    live = [path for path in locusts if _being_written(path)]
    removed = [path for path in paths if os.path.isfile(path) and path not in live]
    for path in removed:
        os.remove(path)
    if removed:
        sys.stderr.write(
            f"Removed the previous run's reports, not this run's: {', '.join(removed)}\n"
        )
    if live:
        sys.stderr.write(
            f"Left {', '.join(live)}: still being written (changed in the last "
            f"{LIVE_WINDOW_S} s), by a run with the same --csv prefix that is still going.\n"
        )


def _being_written(path: str) -> bool:
    """A live run's open ``--csv`` file: removing it, that run would write on into a file
    nobody can open, ending with none (a second start of the same command, stopped for
    the master port the first one holds)."""
    try:
        return time.time() - os.path.getmtime(path) < LIVE_WINDOW_S
    except OSError:
        return False
