"""Personas from ``personas.csv``: loaded once with pandas, validated, turned into small immutable objects.

Every problem in the file is collected and reported at once, each naming the file, the line as
the user counts it (blank and ``#`` comment lines included), the column, what is wrong and the fix.
No DataFrame survives loading; the hot path only sees ``Persona`` objects.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pandas as pd
from faker.config import AVAILABLE_LOCALES

from payment_contract import BRANDS, CURRENCIES, DECLINING_TEST_CARDS, MAX_AMOUNT_MINOR

ROLES = ("customer", "operator", "prober")
REQUIRED = (
    "persona",
    "role",
    "weight",
    "card_types",
    "currencies",
    "amount_min",
    "amount_max",
    "decline_rate",
    "max_retries",
    "batch_size",
    "locale",
)
OPTIONAL = ("wait_min", "wait_max", "decline_codes")
DECLINE_CODES = tuple(dict.fromkeys(DECLINING_TEST_CARDS.values()))
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
#: Names locustfile.py already binds: a persona class of that name would replace them there.
RESERVED_CLASS_NAMES = frozenset({"LoadProfile"})
#: Upper bounds where a bigger value would hang or distort a run rather than mean something.
MAX_WEIGHT = 1_000_000  # Locust's user mix breaks down beyond ~1e16
MAX_WAIT_S = 3600
MAX_RETRIES = 100
MAX_BATCH_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class Persona:
    """One row of the personas file: who the simulated user is and how it pays."""

    name: str
    role: str
    weight: float
    card_types: tuple[str, ...]
    currencies: tuple[str, ...]
    amount_min: Decimal
    amount_max: Decimal
    decline_rate: float
    max_retries: int
    batch_size: int | None
    locale: str
    wait_min: float = 1.0
    wait_max: float = 3.0
    decline_codes: tuple[str, ...] = DECLINE_CODES

    @property
    def class_name(self) -> str:
        """The Locust user class name: ``budget_shopper`` → ``BudgetShopper``."""
        return class_name(self.name)


def class_name(persona: str) -> str:
    """``budget_shopper`` → ``BudgetShopper``; not one-to-one (``a_1`` and ``a1`` → ``A1``)."""
    return "".join(part.capitalize() for part in persona.split("_"))


class PersonaFileError(Exception):
    """The personas file cannot be used; ``str()`` is the whole message for the user."""

    def __init__(self, path: str | Path, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines = [
            f"{self.path}: {count}; no traffic was sent. Fix the file and run again:"
        ]
        lines += [f"  {p}" for p in problems]
        super().__init__("\n".join(lines))


def _hint(value: str, choices) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Row:
    """One data row with its file line; collects problems instead of raising."""

    def __init__(
        self, path: str, line: int, cells: dict[str, str], problems: list[str]
    ) -> None:
        self.path, self.line, self.cells, self.problems = path, line, cells, problems

    def problem(self, column: str, message: str) -> None:
        self.problems.append(
            f"{self.path}, line {self.line}, column {column}: {message}"
        )

    def text(self, column: str, required: bool = True) -> str | None:
        value = (self.cells.get(column) or "").strip()
        if not value:
            if required:
                self.problem(
                    column, "is empty. Fill it in (see the README's personas table)"
                )
            return None
        return value

    def number(
        self,
        column: str,
        kind=float,
        *,
        low=None,
        high=None,
        low_open=False,
        required=True,
        fix: str = "",
    ):
        text = self.text(column, required)
        if text is None:
            return None
        noun = "a whole number" if kind is int else "a number"
        try:
            value = kind(text)
        except (ValueError, InvalidOperation):
            self.problem(column, f"'{text}' is not {noun}. {fix or f'Write {noun}'}")
            return None
        # float() and Decimal() accept inf, nan, Infinity, sNaN (float() reads 1e400 as inf):
        # an endless think time, an inf weight or a NaN amount must stop here
        if not (value.is_finite() if kind is Decimal else math.isfinite(value)):
            self.problem(column, f"'{text}' is not a finite number. {fix}".rstrip())
            return None
        if (
            low is not None
            and (value <= low if low_open else value < low)
            or high is not None
            and value > high
        ):
            rng = f"> {low}" if low_open else f">= {low}"
            if high is not None:
                rng = f"{rng} and <= {high}" if low_open else f"from {low} to {high}"
            self.problem(
                column, f"{text} is out of range; it must be {rng}. {fix}".rstrip()
            )
            return None
        return value

    def choices(self, column: str, allowed, noun: str) -> tuple[str, ...] | None:
        text = self.text(column)
        if text is None:
            return None
        items = [item.strip() for item in text.split("|")]
        bad = [item for item in items if item not in allowed]
        for item in bad:
            self.problem(
                column,
                f"unknown {noun} '{item}'{_hint(item, allowed)}. "
                f"Use {', '.join(allowed)}, separated by |",
            )
        return None if bad else tuple(dict.fromkeys(items))


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PersonaFileError(
            path,
            [
                (
                    f"{path}: file not found. Pass --personas PATH (or LOCUST_PERSONAS) "
                    "pointing at a personas CSV, or restore personas.csv"
                )
            ],
        ) from None
    except OSError as exc:
        raise PersonaFileError(
            path,
            [
                f"{path}: cannot be read ({exc.strerror}). Check the path and permissions"
            ],
        ) from None
    if b"\0" in raw:
        raise PersonaFileError(
            path,
            [
                f"{path}: is a binary file, not CSV. Point --personas at the personas CSV"
            ],
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PersonaFileError(
            path, [f"{path}: is not UTF-8 text. Save it as UTF-8 CSV"]
        ) from None


def _records(text: str) -> list[tuple[int, list[str]]]:
    """The header and each data record with its file line (1-based), skipping blanks and comments.

    pandas reports neither line numbers nor fields beyond the header, so both come from here.
    """
    records = []
    reader = csv.reader(io.StringIO(_without_comments(text)), skipinitialspace=True)
    start = 1
    for record in reader:
        end = reader.line_num
        if ",".join(record).strip():
            records.append((start, record))
        start = end + 1
    return records


def _without_comments(text: str) -> str:
    """``text`` with every ``#`` comment cut off the way pandas reads it (``comment="#"``): from
    an unquoted ``#`` to the end of its line. Lines stay lines, so line numbers still count."""
    lines, quoted = [], False
    for line in text.splitlines(keepends=True):
        for i, char in enumerate(line):
            if char == '"':
                quoted = not quoted
            elif char == "#" and not quoted:
                line = line[:i] + ("\n" if line.endswith("\n") else "")
                break
        lines.append(line)
    return "".join(lines)


def _extra_fields(shown: str, line: int, record: list[str], width: int) -> str | None:
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


def load_personas(path: str | Path) -> list[Persona]:
    """Read and validate the personas file; raise ``PersonaFileError`` naming every problem."""
    path = Path(path)
    shown = str(path)
    text = _read_text(path)
    records = _records(text)
    lines = [line for line, _ in records]
    if not lines:
        raise PersonaFileError(
            path,
            [
                (
                    f"{shown}: is empty. Add a header row and at least one persona "
                    "(copy the shipped personas.csv)"
                )
            ],
        )
    header_fields = records[0][1]
    width = len(header_fields)
    while width > 1 and not header_fields[width - 1].strip():
        width -= 1  # a header ending in commas, as spreadsheets export it
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            comment="#",
            skip_blank_lines=True,
            skipinitialspace=True,
            # a trailing comma must not turn the first column into the index; fields past
            # the header are checked in _extra_fields
            index_col=False,
            usecols=range(width),
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise PersonaFileError(
            path,
            [
                (
                    f"{shown}: is not a valid CSV file ({str(exc).strip()[:160]}). "
                    "Check for unbalanced quotes or a wrong number of commas"
                )
            ],
        ) from None
    columns = [str(c).strip() for c in frame.columns]
    frame.columns = columns
    problems: list[str] = []
    header = lines[0]
    known = REQUIRED + OPTIONAL
    for column in columns:
        if column not in known:
            problems.append(
                f"{shown}, line {header}, column {column}: unknown column{_hint(column, known)}. "
                f"Known columns: {', '.join(known)}"
            )
    missing = [c for c in REQUIRED if c not in columns]
    for column in missing:
        problems.append(
            f"{shown}, line {header}, column {column}: required column is missing. Add it to the header"
        )
    if len(columns) != len(set(columns)):
        problems.append(
            f"{shown}, line {header}: a column appears twice. Keep one of each"
        )
    if missing or problems:
        raise PersonaFileError(path, problems)
    if frame.empty:
        raise PersonaFileError(
            path, [f"{shown}: has a header but no personas. Add at least one row"]
        )
    personas: list[Persona] = []
    seen: dict[str, int] = {}
    classes: dict[str, str] = {}  # Locust class name -> persona name
    for index, cells in enumerate(frame.to_dict("records")):
        line, record = (
            records[index + 1] if index + 1 < len(records) else (header + index + 1, [])
        )
        extra = _extra_fields(shown, line, record, width)
        if extra:
            problems.append(extra)  # its cells are shifted: checking them would mislead
            continue
        row = _Row(shown, line, cells, problems)
        persona = _persona(row)
        # names are checked even on a row with other problems, so a clash is reported at once
        name = (cells.get("persona") or "").strip()
        if SNAKE.match(name) and not _unique_name(row, name, seen, classes):
            continue
        if persona is not None:
            personas.append(persona)
    if problems:
        raise PersonaFileError(path, problems)
    return personas


def _unique_name(
    row: _Row, name: str, seen: dict[str, int], classes: dict[str, str]
) -> bool:
    """Record the row's persona name; False (and a problem) when it clashes with an earlier
    row's name or Locust class name."""
    if name in seen:
        row.problem(
            "persona",
            f"'{name}' is already defined on line {seen[name]}. Persona names must be unique",
        )
        return False
    other = classes.get(class_name(name))
    if other is not None:
        row.problem(
            "persona",
            f"'{name}' and '{other}' (line {seen[other]}) both become "
            f"the Locust class {class_name(name)}. Rename one of them",
        )
        return False
    seen[name] = row.line
    classes[class_name(name)] = name
    return True


def _persona(row: _Row) -> Persona | None:
    """A Persona from one row, or None after recording its problems."""
    before = len(row.problems)
    name = row.text("persona")
    if name is not None and not SNAKE.match(name):
        row.problem(
            "persona",
            f"'{name}' is not snake_case. Use lower-case words joined by _, e.g. budget_shopper",
        )
    elif name is not None and class_name(name) in RESERVED_CLASS_NAMES:
        row.problem(
            "persona",
            f"'{name}' becomes the Locust class {class_name(name)}, a name the locustfile "
            f"already uses (reserved: {', '.join(sorted(RESERVED_CLASS_NAMES))}). Rename the persona",
        )
    role = row.text("role")
    if role is not None and role not in ROLES:
        row.problem(
            "role",
            f"unknown role '{role}'{_hint(role, ROLES)}. Use one of {', '.join(ROLES)}",
        )
    weight = row.number(
        "weight",
        low=0,
        low_open=True,
        high=MAX_WEIGHT,
        fix="The weight is a relative share, e.g. 10",
    )
    brands = row.choices("card_types", BRANDS, "card brand")
    currencies = row.choices("currencies", CURRENCIES, "currency")
    amount_min = row.number(
        "amount_min",
        Decimal,
        low=0,
        low_open=True,
        fix="Amounts are major units, e.g. 12.50",
    )
    amount_max = row.number(
        "amount_max",
        Decimal,
        low=0,
        low_open=True,
        fix="Amounts are major units, e.g. 12.50",
    )
    decline_rate = row.number(
        "decline_rate", low=0, high=1, fix="Write a share, e.g. 0.05 for 5%"
    )
    max_retries = row.number(
        "max_retries", int, low=0, high=MAX_RETRIES, fix="Write 0 or more, e.g. 2"
    )
    batch_size = row.number(
        "batch_size",
        int,
        low=1,
        high=MAX_BATCH_SIZE,
        required=role == "operator",
        fix="Operators pay this many payments per batch, e.g. 10",
    )
    if batch_size is not None and role in ROLES and role != "operator":
        row.problem(
            "batch_size",
            f"a {role} pays no batches. Leave batch_size empty (it is for operators)",
        )
    locale = row.text("locale")
    if locale is not None and locale not in AVAILABLE_LOCALES:
        row.problem(
            "locale",
            f"unknown Faker locale '{locale}'{_hint(locale, AVAILABLE_LOCALES)}. "
            "Use one like en_US, de_DE, ja_JP",
        )
    wait_min = row.number(
        "wait_min",
        low=0,
        high=MAX_WAIT_S,
        required=False,
        fix="Seconds of think time (at most an hour), e.g. 1",
    )
    wait_max = row.number(
        "wait_max",
        low=0,
        high=MAX_WAIT_S,
        required=False,
        fix="Seconds of think time (at most an hour), e.g. 3",
    )
    codes = (
        row.choices("decline_codes", DECLINE_CODES, "decline code")
        if row.text("decline_codes", False)
        else None
    )
    wait_min = 1.0 if wait_min is None and "wait_min" not in _given(row) else wait_min
    wait_max = 3.0 if wait_max is None and "wait_max" not in _given(row) else wait_max
    if wait_min is not None and wait_max is not None and wait_min > wait_max:
        row.problem(
            "wait_min",
            f"{wait_min:g} is above wait_max {wait_max:g}. Swap them or lower wait_min",
        )
    if amount_min is not None and amount_max is not None:
        if amount_min > amount_max:
            row.problem(
                "amount_min",
                f"{amount_min} is above amount_max {amount_max}. Swap them or lower amount_min",
            )
        for currency in currencies or ():
            _check_amounts(row, currency, amount_min, amount_max)
    if len(row.problems) > before:
        return None
    return Persona(
        name,
        role,
        float(weight),
        brands,
        currencies,
        amount_min,
        amount_max,
        float(decline_rate),
        max_retries,
        batch_size,
        locale,
        float(wait_min),
        float(wait_max),
        codes or DECLINE_CODES,
    )


def _given(row: _Row) -> set[str]:
    return {k for k, v in row.cells.items() if (v or "").strip()}


def _check_amounts(row: _Row, currency: str, low: Decimal, high: Decimal) -> None:
    """Amounts must be whole minor units of every currency of the persona, and within the contract's max."""
    exponent = CURRENCIES[currency].exponent
    for column, value in (("amount_min", low), ("amount_max", high)):
        minor = value * (10**exponent)
        if minor != minor.to_integral_value():
            unit = "whole numbers" if exponent == 0 else f"at most {exponent} decimals"
            row.problem(
                column,
                f"{value} cannot be paid in {currency}: its amounts are {unit}. "
                f"Round it{' or drop ' + currency + ' from currencies' if exponent == 0 else ''}",
            )
        elif minor > MAX_AMOUNT_MINOR:
            row.problem(
                column,
                f"{value} {currency} is above the contract's maximum of {MAX_AMOUNT_MINOR} minor units. "
                "Lower it",
            )
