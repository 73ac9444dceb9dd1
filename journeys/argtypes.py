"""Types for our command-line options, shared by every option group.

argparse calls them with the raw text (from the flag, its ``LOCUST_*`` variable or a config file)
and prints an ``ArgumentTypeError``'s message after the flag's name, so each message says what is
wrong with the value. Plain ``float`` would let ``nan`` and ``inf`` through and name itself in the
error ("invalid _positive_float value").
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

from locust.util.timespan import parse_timespan

from journeys.wording import unreadable


def run_time(text: str) -> int:
    """Locust's ``-t/--run-time`` (``20s``, ``3m``, ``1h30m``) in seconds, above 0: Locust reads
    ``0`` as no run time, so a headless run (a CI job) given ``-t 0`` never ended."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "it is empty: give a run time such as 20s, 3m or 1h30m"
        )
    try:
        seconds = parse_timespan(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(
            f"{text} is no run time: Locust would run without a limit, and a headless run "
            "would never end. Give one above 0 (e.g. -t 60s), or leave -t out and stop the "
            "run yourself"
        )
    return seconds


def finite_number(text: str) -> float:
    """A finite number (``nan``, ``inf`` and words refused)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_float(text: str) -> float:
    value = finite_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = finite_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _seconds(text: str, number) -> float:
    """``number(text)``, or for a time span with a unit (``5s``, ``2m``), what to write."""
    try:
        return number(text)
    except argparse.ArgumentTypeError as not_a_number:
        try:
            seconds = parse_timespan(text.strip())
        except ValueError:
            raise not_a_number from None  # not a time span either
        unit = f"{text!r} is not a number: the option takes seconds without a unit"
        try:
            number(str(seconds))
        except argparse.ArgumentTypeError as out_of_range:  # 0s: 0 is refused too
            raise argparse.ArgumentTypeError(f"{unit}, and {out_of_range}") from None
        raise argparse.ArgumentTypeError(f"{unit}, so write {seconds}") from None


def positive_seconds(text: str) -> float:
    """Seconds above 0 (``--request-timeout``); ``5s`` is refused, naming ``5``."""
    return _seconds(text, positive_float)


def non_negative_seconds(text: str) -> float:
    """Seconds, 0 or more (``--wait-for-host``); ``2m`` is refused, naming ``120``."""
    return _seconds(text, non_negative_float)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def growth(text: str) -> float:
    """A growth as a fraction, 0 or more (``--baseline-tolerance``: 0.25 is +25%); ``25%`` is
    refused, naming ``0.25`` (as a plain number it would be read as +2500%)."""
    written = text.strip()
    if written.endswith("%"):
        try:
            fix = f"write {finite_number(written.removesuffix('%')) / 100:g} for {written}"
        except argparse.ArgumentTypeError:
            fix = "write a fraction"
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number: {fix} (0.25 allows +25%)"
        )
    return non_negative_float(text)


def share(text: str) -> float:
    """A share from 0 to 1 (``--trace-sample-rate``)."""
    try:
        value = finite_number(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number; use a share from 0 to 1, e.g. 0.1"
        ) from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(
            f"{text} is outside 0..1; use a share, e.g. 0.1 to trace 1 journey in 10"
        )
    return value


def writable_file(text: str) -> str:
    """A file path whose folder exists or can be made, and can be written (``--csv``,
    ``--html``): found now, not as a traceback before the first request or, for ``--html``,
    after the whole run, when the report is lost."""
    folder = Path(os.path.dirname(text) or ".")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(
            f"cannot write {text}: {existing} is a file, not a folder"
        )
    if not _can_write_in(existing) or (
        os.path.isfile(text) and not os.access(text, os.W_OK)
    ):
        raise argparse.ArgumentTypeError(
            f"cannot write {text}: this user (uid {os.getuid()}) may not write "
            f"{text if os.path.isfile(text) else f'in {existing.absolute()}'}; "
            "pick another path or make the folder writable (in Docker: a mounted folder "
            "must be writable by the container's user)"
        )
    return text


def report_file(text: str, example: str = "report.html") -> str:
    """``--html``: a writable file path, not a folder (``--html reports/`` would run the whole
    test and then fail to write the report, losing the run's results with it)."""
    if text.endswith(("/", os.sep)) or os.path.isdir(text):
        name = os.path.join(text.rstrip("/" + os.sep) or text, example)
        raise argparse.ArgumentTypeError(
            f"cannot write {text}: it is a folder; name the report's file, e.g. {name}"
        )
    return writable_file(text)


def junit_file(text: str) -> str:
    """``--junit-xml``: as ``--html`` (``report_file``), a folder named with ``junit.xml``."""
    return report_file(text, "junit.xml")


def readable_file(text: str) -> str:
    """A file this user can read (``--tls-cert``, ``--tls-key``): found now, not as a web UI
    that starts, says https, and then fails every connection with a traceback (a private key
    mounted into a container keeps its 0600 and its owner, so the container's user can't read
    it). Empty is Locust's default: no TLS."""
    if not text:
        return text
    try:
        with open(text, "rb"):
            return text
    except FileNotFoundError:
        problem = "no such file"
    except IsADirectoryError:
        problem = "it is a folder, not a file"
    except PermissionError:
        problem = unreadable()
    except OSError as exc:
        problem = exc.strerror or str(exc)
    raise argparse.ArgumentTypeError(f"cannot read {text}: {problem}")


def url_path(text: str) -> str:
    """``--web-base-path``: a path starting with ``/``. Locust refused ``locust`` only after
    start-up, with exit 1, the code of a failed SLO verdict."""
    if text and not text.startswith("/"):
        raise argparse.ArgumentTypeError(
            f"{text!r} must start with a slash: write /{text}"
        )
    return text


def _can_write_in(folder: Path) -> bool:
    """Whether a file can be made in ``folder``, tried for real: ``os.access`` says yes to root
    everywhere, also where no file can be made (``/proc``, a read-only mount)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False
