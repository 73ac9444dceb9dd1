"""The personas file as CSV: its text, its records and the DataFrame pandas reads from them.

Lines are counted as the user counts them (blank and ``#`` comment lines included, CRLF or a lone
CR ending one), so every problem can name the line to fix. What the columns and values mean is
``journeys.personas``'s job.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from journeys.scrub import scrub, secrets_from_env
from journeys.wording import unreadable


class PersonaFileError(Exception):
    """The personas file cannot be used; ``str()`` is the whole message for the user."""

    def __init__(self, path: str | Path, problems: list[str]) -> None:
        self.path = str(path)
        # a problem quotes the cell: a card number typed where a brand or a weight goes, or
        # the internal token pasted into the wrong file
        secrets = secrets_from_env()
        self.problems = [scrub(p, secrets) for p in problems]
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        # the path too: LOCUST_PERSONAS may hold the token (the problems are scrubbed above)
        header = f"{self.path}: {count}. Fix the file and run again:"
        lines = [scrub(header, secrets)] + [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


#: What to do about a personas file that is missing, or not CSV at all (``read_text``'s defaults).
PERSONAS_MISSING_FIX = "Pass --personas PATH (or LOCUST_PERSONAS) pointing at a personas CSV, or restore personas.csv"
PERSONAS_BINARY_FIX = "Point --personas at the personas CSV"


def did_you_mean(value: str, choices) -> str:
    """`` (did you mean 'X'?)`` for the choice differing only in case (usd → USD), else the
    closest spelling; empty when nothing is close. For the cells and columns of the files
    read here (personas, ``--slo-targets``)."""
    choices = list(choices)
    same = [c for c in choices if c.casefold() == value.casefold()]
    close = same or difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def read_text(
    path: Path,
    missing_fix: str = PERSONAS_MISSING_FIX,
    binary_fix: str = PERSONAS_BINARY_FIX,
) -> str:
    """The file's text with its lines as the user counts them; ``PersonaFileError`` (naming the
    file and, for a missing or binary one, ``missing_fix`` / ``binary_fix``) when it cannot be
    read as UTF-8 text. Other CSV files the user writes (``--slo-targets``) are read here too."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        # run from another folder (locust -f path/to/locustfile.py), a relative path misses
        where = (
            ""
            if path.is_absolute()
            else f" in {Path.cwd()} (the working directory, where a relative path starts)"
        )
        raise PersonaFileError(
            path,
            [f"{path}: file not found{where}. {missing_fix}"],
        ) from None
    except IsADirectoryError:
        # docker run -v (and compose's volumes) mount a folder where the host has no such file
        raise PersonaFileError(
            path,
            [
                (
                    f"{path}: is a folder, not a file. Name the file; mounted with docker run -v, "
                    "check the host's path: a file that is not there is mounted as a new folder"
                )
            ],
        ) from None
    except PermissionError:
        # a file mounted into a container keeps its host mode (0600 under a umask of 077)
        raise PersonaFileError(
            path,
            [f"{path}: {unreadable()}"],
        ) from None
    except OSError as exc:
        raise PersonaFileError(
            path,
            [
                f"{path}: cannot be read ({exc.strerror}). Check the path and permissions"
            ],
        ) from None
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise PersonaFileError(
            path,
            [
                (
                    f'{path}: is UTF-16 text (Excel\'s "Unicode Text"), not UTF-8. '
                    'Save it as "CSV UTF-8" instead'
                )
            ],
        )
    if b"\0" in raw:
        raise PersonaFileError(
            path,
            [f"{path}: is a binary file, not CSV. {binary_fix}"],
        )
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        text = raw[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PersonaFileError(path, [_not_utf8(path, raw, bom + exc.start)]) from None
    # universal newlines: CRLF (Windows) and a lone CR (old Mac) each end one line, as editors show
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _not_utf8(path: Path, raw: bytes, start: int) -> str:
    """The problem for a file whose byte at ``start`` is not UTF-8: its line, as the user counts
    lines (CRLF and a lone CR end one), and the byte."""
    line = raw[:start].replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1
    byte = raw[start : start + 1]
    legacy = byte.decode("cp1252", errors="ignore")  # 0x81, 0x8D, ... are not cp1252
    seen = (
        f", {legacy} in Latin-1/Windows-1252" if legacy.isprintable() and legacy else ""
    )
    return (
        f"{path}, line {line}: is not UTF-8 text (byte 0x{byte.hex().upper()}{seen}). "
        'Save the file as UTF-8 (in a spreadsheet: "CSV UTF-8")'
    )


#: The fix for a file separated by anything but commas.
SAVE_WITH_COMMAS = "Save it as CSV with commas (in a spreadsheet: CSV, comma delimited)"


def other_separator(columns: list[str]) -> str | None:
    """The separator a one-column header holds instead of commas (``';'``, ``tabs``), or None."""
    if len(columns) != 1:
        return None
    found = {"';'": columns[0].count(";"), "tabs": columns[0].count("\t")}
    name = max(found, key=found.__getitem__)
    return name if found[name] else None


class Record(NamedTuple):
    """One CSV record: the file line it starts on, its fields, and its text without comments."""

    line: int
    fields: list[str]
    text: str


def read_records(shown: str, text: str) -> list[Record]:
    """The header and each data record with its file line (1-based), skipping comments, blank lines
    and rows of only commas and spaces (a spreadsheet's empty row).

    pandas reports neither line numbers nor fields beyond the header, so both come from here, and
    pandas reads only the text of these records, so its rows are these records one for one.
    """
    # only \n ends a line (str.splitlines would also split at \f, \x85, ... as neither parser does)
    lines = [line + "\n" for line in _without_comments(shown, text).split("\n")]
    reader = csv.reader(lines, skipinitialspace=True)
    records, start = [], 1
    try:
        for fields in reader:
            end = reader.line_num
            if any(field.strip() for field in fields):
                records.append(Record(start, fields, "".join(lines[start - 1 : end])))
            start = end + 1
    except csv.Error as exc:  # a field over csv's size limit (128 KiB)
        raise PersonaFileError(
            shown,
            [f"{shown}, line {start}: cannot be read as CSV ({exc}). Shorten the row"],
        ) from None
    return records


def _without_comments(shown: str, text: str) -> str:
    """``text`` with every ``#`` comment cut off, from an unquoted ``#`` to the end of its line.

    Quotes follow CSV's rules (one opens a value only at its start, after any spaces; ``""`` inside
    is a quote), so this agrees with the parsers. Lines stay lines, so line numbers still count.
    A quote still open at the end raises ``PersonaFileError`` naming the line it opens on.
    """
    lines, state, opened = [], "start", 0
    for number, line in enumerate(text.split("\n"), 1):
        state = "quoted" if state == "quoted" else "start"
        for i, char in enumerate(line):
            if state == "quoted":
                state = "closed" if char == '"' else state
            elif char == "#":
                line = line[:i]
                break
            elif char == ",":
                state = "start"
            elif char == '"' and state == "start":
                state, opened = "quoted", number
            elif char == '"' and state == "closed":
                state = "quoted"  # "" inside a quoted value is one quote
            elif char != " " or state != "start":
                state = "field"
        lines.append(line)
    if state == "quoted":
        raise PersonaFileError(shown, [_unclosed_quote(shown, opened)])
    return "\n".join(lines)


def _unclosed_quote(shown: str, line: int) -> str:
    """The problem for a quote opened on ``line`` and never closed (pandas named its own row)."""
    return (
        f'{shown}, line {line}: a quote (") opens a value here but is never closed. '
        "Close it, or remove it (quotes are only needed around a value containing a comma)"
    )


def extra_fields(shown: str, line: int, record: list[str], width: int) -> str | None:
    """A problem if the record has values beyond the header's columns.

    Trailing empty fields (``...,1,3,`` as spreadsheets write them) are ignored; a value there
    would be silently dropped, so it is reported.
    """
    if not any(field.strip() for field in record[width:]):
        return None
    return (
        f"{shown}, line {line}: has {len(record)} fields, the header has {width}. "
        'Remove the extra values (a value containing a comma must be quoted: "a,b")'
    )


def read_frame(shown: str, records: list[Record], width: int) -> pd.DataFrame:
    """The records read by pandas as text, one row per data record, ``width`` columns."""
    try:
        return pd.read_csv(
            io.StringIO("".join(record.text for record in records)),
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            # a trailing comma must not turn the first column into the index; fields past
            # the header are checked in extra_fields
            index_col=False,
            usecols=range(width),
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise PersonaFileError(
            shown,
            [
                (
                    f"{shown}: is not a valid CSV file ({str(exc).strip()[:160]}). "
                    "Check for unbalanced quotes or a wrong number of commas"
                )
            ],
        ) from None
