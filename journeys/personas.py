"""Personas from ``personas.csv``: loaded once with pandas, validated, turned into small immutable objects.

Every problem in the file is collected and reported at once, each naming the file, the line as
the user counts it (blank and ``#`` comment lines included), the column, what is wrong and the fix.
No DataFrame survives loading; the hot path only sees ``Persona`` objects. Reading the file as
CSV (encodings, comments, quotes, the lines as the user counts them) is ``journeys.persona_csv``'s;
this module says what the columns and their values must be.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from faker.config import AVAILABLE_LOCALES
from faker.providers.currency import Provider as FakerCurrencies

from journeys.persona_csv import (
    SAVE_WITH_COMMAS,
    PersonaFileError,
    Record,
    did_you_mean,
    extra_fields,
    other_separator,
    read_frame,
    read_records,
    read_text,
)
from journeys.scrub import scrub
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
KNOWN = REQUIRED + OPTIONAL
DECLINE_CODES = tuple(dict.fromkeys(DECLINING_TEST_CARDS.values()))
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
#: A whole number written as a decimal (8.0, 8.00), as pandas writes an int column with gaps.
WHOLE_DECIMAL = re.compile(r"([+-]?[0-9]+)\.0*")
#: ISO 4217 codes and names (Faker's list), to tell a currency the contract lacks from a typo.
ISO_CURRENCIES = dict(FakerCurrencies.currencies)
#: A number with a comma where the point goes (9,99), as spreadsheets in many locales write it.
DECIMAL_COMMA = re.compile(r"([+-]?[0-9]+),([0-9]+)")
#: Signs written between a cell's values where | belongs: visa amex, visa;amex, USD/EUR.
OTHER_SEPARATORS = re.compile(r"[;/]|\s")
#: Names locustfile.py already binds: a persona class of that name would replace them there.
RESERVED_CLASS_NAMES = frozenset({"LoadProfile"})
#: Tags the journeys carry (roles included). A persona's name is a tag too, so a persona of one
#: of these names would join that tag's journeys under ``--tags`` (``--tags edge`` ran its checkout).
JOURNEY_TAGS = frozenset(
    {"checkout", "batch_report", "probes", "edge", "errors"} | set(ROLES)
)
#: The tags every journey of a role carries: a persona of that role may be named one of them
#: (``--tags prober`` picks the same journeys whether it means the role or that persona).
TAGS_OF_EVERY_JOURNEY = {
    "customer": frozenset({"customer", "checkout"}),
    "operator": frozenset({"operator", "batch_report"}),
    "prober": frozenset({"prober", "probes"}),
}
#: Locales Faker still takes but warns about (a UserWarning in the run's log): their successors.
DEPRECATED_LOCALES = {"fr_QC": "fr_CA"}
#: Upper bounds where a bigger value would hang or distort a run rather than mean something.
MAX_WEIGHT = 1_000_000  # Locust's user mix breaks down beyond ~1e16
MAX_WAIT_S = 3600
MAX_RETRIES = 100
MAX_BATCH_SIZE = 10_000
#: Think time in seconds when wait_min / wait_max is empty or not a column.
WAIT_DEFAULTS = {"wait_min": 1.0, "wait_max": 3.0}


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
        if not text.isascii():
            # float() and Decimal() read a full-width １ or an Arabic-Indic ١ as 1
            self.problem(
                column, f"'{text}' is not {noun}. Write it with the digits 0-9"
            )
            return None
        comma = DECIMAL_COMMA.fullmatch(text)
        if comma:
            self.problem(column, _comma_in_number(text, comma))
            return None
        try:
            # int(), float() and Decimal() read 2_4 as 24 (Python's digit grouping); here a typo
            if "_" in text:
                raise ValueError(text)
            whole = WHOLE_DECIMAL.fullmatch(text) if kind is int else None
            value = int(whole[1]) if whole else kind(text)
        except (ValueError, InvalidOperation):
            self.problem(column, f"'{text}' is not {noun}. {fix or f'Write {noun}'}")
            return None
        # float() and Decimal() accept inf, nan, Infinity, sNaN (float() reads 1e400 as inf):
        # an endless think time, an inf weight or a NaN amount must stop here
        if not (value.is_finite() if kind is Decimal else math.isfinite(value)):
            self.problem(column, f"'{text}' is not a finite number. {fix}".rstrip())
            return None
        if value == 0:
            # -0 would show as a decline rate of "-0%" and a -0.0 in the CSVs
            value = abs(value)
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

    def choices(
        self, column: str, allowed, noun: str, elsewhere: dict[str, str] | None = None
    ) -> tuple[str, ...] | None:
        """The cell's |-separated values, each one of ``allowed``; ``elsewhere`` names real
        values that are not allowed (a currency the contract lacks), which get no "did you
        mean": KWD is no typo of KRW."""
        text = self.text(column)
        if text is None:
            return None
        if "," in text:
            joined = "|".join(v.strip() for v in re.split("[,|]", text) if v.strip())
            self.problem(
                column,
                f"'{text}' has a comma. Several values are separated with |, e.g. {joined}",
            )
            return None
        items = [item.strip() for item in text.split("|")]
        inside = next(filter(None, map(OTHER_SEPARATORS.search, items)), None)
        if inside:
            sign = "spaces" if inside[0].isspace() else inside[0]
            parts = list(filter(None, re.split(r"[|;/\s]+", text)))
            # only known values: a card number's groups (4242 4242 ...) joined by | would
            # escape the scrubbing of card numbers
            known = all(part in allowed for part in parts)
            joined = "|".join(parts if known else list(allowed)[:2])
            self.problem(
                column,
                f"'{text}' separates its values with {sign}. "
                f"Several values are separated with |, e.g. {joined}",
            )
            return None
        empty = "" in items
        items = [item for item in items if item]
        if empty:
            fix = "|".join(items) or next(iter(allowed))
            self.problem(
                column, f"'{text}' has an empty entry (a stray |). Write {fix}"
            )
        bad = [item for item in items if item not in allowed]
        for item in bad:
            real = item.upper() not in allowed and (elsewhere or {}).get(item.upper())
            self.problem(
                column,
                (
                    f"'{item}' ({real}) is not a {noun} the contract supports"
                    if real
                    else f"unknown {noun} '{item}'{did_you_mean(item, allowed)}"
                )
                + f". Use {', '.join(allowed)}, separated by |",
            )
        twice = [item for item in dict.fromkeys(items) if items.count(item) > 1]
        for item in twice:
            self.problem(
                column,
                f"'{text}' lists {item} twice; each value gets an equal share, so listing "
                f"one again does not weight it. Write {'|'.join(dict.fromkeys(items))}",
            )
        return None if bad or empty or twice else tuple(items)


def load_personas(path: str | Path) -> list[Persona]:
    """Read and validate the personas file; raise ``PersonaFileError`` naming every problem."""
    path = Path(path)
    shown = str(path)
    records = read_records(shown, read_text(path))
    sign = _separator_hint(records[0]) if records else None
    if sign == ",":  # what the file is: nothing to do but skip it
        records = records[1:]
    elif sign:
        raise PersonaFileError(
            path,
            [
                (
                    f"{shown}, line {records[0].line}: sep= says the columns are separated by "
                    f"{'tabs' if sign == chr(9) else repr(sign)}, but the file must be "
                    f"comma-separated. {SAVE_WITH_COMMAS}"
                )
            ],
        )
    if not records:
        raise PersonaFileError(
            path,
            [
                (
                    f"{shown}: is empty. Add a header row and at least one persona "
                    "(copy the shipped personas.csv)"
                )
            ],
        )
    columns = _columns(records[0].fields)
    problems = _header_problems(shown, records[0].line, columns)
    if problems:
        raise PersonaFileError(path, problems)
    frame = read_frame(shown, records, len(columns))
    if frame.empty:
        raise PersonaFileError(
            path, [f"{shown}: has a header but no personas. Add at least one row"]
        )
    # as written: pandas renames a nameless column (Unnamed: 1) and a repeated one (weight.1)
    frame.columns = columns
    return _personas(shown, records, frame.to_dict("records"), len(columns))


def _columns(fields: list[str]) -> list[str]:
    """The header's column names, without the empty ones a spreadsheet adds at its end; a known
    name in another case or with spaces around it (`` Weight``) becomes the known one."""
    names = [field.strip() for field in fields]
    names = [name.lower() if name.lower() in KNOWN else name for name in names]
    while len(names) > 1 and not names[-1]:
        names.pop()
    return names


def _header_problems(shown: str, line: int, columns: list[str]) -> list[str]:
    """Every problem of the header: a wrong separator, or nameless, repeated, unknown or missing
    columns."""
    where = f"{shown}, line {line}"
    separator = other_separator(columns)
    if separator:
        return [
            (
                f"{where}: the columns are separated by {separator}, but the file must be "
                f"comma-separated. {SAVE_WITH_COMMAS}"
            )
        ]
    if not set(columns) & set(KNOWN):
        return [
            (
                f"{where}: there is no header: this line names none of the columns (it looks "
                "like a persona). Add the header as the first line: "
                + ",".join(REQUIRED)
            )
        ]
    problems = [
        f"{where}, column {number}: has no name in the header. Name it "
        "(see the README's personas table) or remove the column"
        for number, column in enumerate(columns, 1)
        if not column
    ]
    for column in filter(None, dict.fromkeys(columns)):
        count = columns.count(column)
        if count > 1:
            times = "twice" if count == 2 else f"{count} times"
            problems.append(
                f"{where}, column {column}: appears {times} in the header. Keep one"
            )
        if column not in KNOWN:
            problems.append(
                f"{where}, column {column}: unknown column{did_you_mean(column, KNOWN)}. "
                f"Known columns: {', '.join(KNOWN)}"
            )
    problems += [
        f"{where}, column {column}: required column is missing. Add it to the header"
        for column in REQUIRED
        if column not in columns
    ]
    return problems


def _separator_hint(record: Record) -> str | None:
    """The sign of the ``sep=,`` line a file made for Excel may start with, or None."""
    text = record.text.strip("\n ")  # not a tab: sep=<tab> is one
    return text[4:] if len(text) == 5 and text[:4].lower() == "sep=" else None


def _personas(
    shown: str, records: list[Record], rows: list[dict], width: int
) -> list[Persona]:
    """A Persona per data row, each row with its record's file line; raise on any problem."""
    if len(rows) != len(records) - 1:  # both read the same text; never seen to disagree
        raise PersonaFileError(
            shown,
            [
                (
                    f"{shown}: pandas read {len(rows)} rows where the file has "
                    f"{len(records) - 1}. Check its quotes, or report this file as a bug"
                ),
            ],
        )
    problems: list[str] = []
    personas: list[Persona] = []
    seen: dict[str, int] = {}
    classes: dict[str, str] = {}  # Locust class name -> persona name
    for record, cells in zip(records[1:], rows):
        # its cells are column names: one problem for the line, not one per column
        if _repeats_header(record.fields):
            problems.append(
                f"{shown}, line {record.line}: repeats the header (line {records[0].line}). "
                "Remove it"
            )
            continue
        extra = extra_fields(shown, record.line, record.fields, width)
        if extra:
            problems.append(extra)  # its cells are shifted: checking them would mislead
            continue
        row = _Row(shown, record.line, cells, problems)
        before = len(problems)
        persona = _persona(row)
        if len(problems) > before and len(record.fields) < width:
            problems.insert(before, _missing_fields(row, len(record.fields), width))
        # names are checked even on a row with other problems, so a clash is reported at once
        name = (cells.get("persona") or "").strip()
        if SNAKE.match(name) and not _unique_name(row, name, seen, classes):
            continue
        if persona is not None:
            personas.append(persona)
    if problems:
        raise PersonaFileError(shown, problems)
    return personas


def _repeats_header(fields: list[str]) -> bool:
    """True for a header pasted again as a data row: most of its values are column names."""
    names = [name for name in _columns(fields) if name]
    return len(names) >= 2 and 2 * sum(name in KNOWN for name in names) > len(names)


def _missing_fields(row: _Row, count: int, width: int) -> str:
    """The problem that explains shifted values on a row with fewer fields than the header."""
    return (
        f"{row.path}, line {row.line}: has {count} fields, the header has {width}; if a value "
        "is missing in the middle, the following ones shift into the wrong columns. Add the "
        "missing value, or leave it empty with two commas (,,)"
    )


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


def _check_name(row: _Row, name: str, role: str | None) -> None:
    """Record what is wrong with a persona name: invisible characters, not snake_case, or a
    class name the locustfile already uses."""
    hidden = [char for char in name if not char.isprintable()]
    if hidden:
        visible = "".join(char for char in name if char.isprintable())
        row.problem(
            "persona",
            f"'{_escaped(name)}' is not snake_case: it has an invisible character "
            f"({', '.join(dict.fromkeys(map(_escaped, hidden)))}). Delete it"
            + (f": {visible}" if SNAKE.match(visible) else ""),
        )
    elif not SNAKE.match(name):
        row.problem(
            "persona",
            f"'{name}' is not snake_case. Use lower-case words joined by _, e.g. budget_shopper",
        )
    elif scrub(name) != name:
        row.problem(
            "persona",
            f"'{scrub(name)}' holds a card number, which the name would carry into every "
            "table, CSV, report and trace of the run. Rename the persona",
        )
    elif name in JOURNEY_TAGS and name not in TAGS_OF_EVERY_JOURNEY.get(role, ()):
        row.problem(
            "persona",
            f"'{name}' is also a journey tag that not all of this {role or 'persona'}'s "
            f"journeys carry, so --tags {name} would pick both those journeys and all of "
            f"this persona's (tags: {', '.join(sorted(JOURNEY_TAGS))}). Rename the persona, "
            f"e.g. {name}_persona",
        )
    elif class_name(name) in RESERVED_CLASS_NAMES:
        row.problem(
            "persona",
            f"'{name}' becomes the Locust class {class_name(name)}, a name the locustfile "
            f"already uses (reserved: {', '.join(sorted(RESERVED_CLASS_NAMES))}). Rename the persona",
        )


def _persona(row: _Row) -> Persona | None:
    """A Persona from one row, or None after recording its problems."""
    before = len(row.problems)
    name = row.text("persona")
    role = row.text("role")
    if name is not None:
        _check_name(row, name, role)
    if role is not None and role not in ROLES:
        row.problem(
            "role",
            f"unknown role '{role}'{did_you_mean(role, ROLES)}. Use one of {', '.join(ROLES)}",
        )
    weight = row.number(
        "weight",
        low=0,
        low_open=True,
        high=MAX_WEIGHT,
        # weight 0 is how users try to turn a persona off
        fix="The weight is a relative share, e.g. 10; to leave the persona out of the run, "
        "put # before its row",
    )
    brands = row.choices("card_types", BRANDS, "card brand")
    currencies = row.choices("currencies", CURRENCIES, "currency", ISO_CURRENCIES)
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
    if decline_rate and role == "prober":
        row.problem(
            "decline_rate",
            "the prober role sends no declining cards (its probes pick their own). Write 0",
        )
    max_retries = row.number(
        "max_retries", int, low=0, high=MAX_RETRIES, fix="Write 0 or more, e.g. 2"
    )
    if max_retries and role in ROLES and role != "customer":
        row.problem(
            "max_retries",
            f"the {role} role does not retry declines (only customers do). Write 0",
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
    if locale in DEPRECATED_LOCALES:
        row.problem(
            "locale",
            f"Faker's locale '{locale}' is deprecated. Use {DEPRECATED_LOCALES[locale]}",
        )
    elif locale is not None and locale not in AVAILABLE_LOCALES:
        row.problem(
            "locale",
            f"unknown Faker locale '{locale}'{_locale_hint(locale)}. "
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
    if codes and role == "prober":
        row.problem(
            "decline_codes",
            "the prober role sends no declining cards (its probes pick their own). "
            "Leave decline_codes empty",
        )
    wait_min = _default_wait(row, "wait_min", wait_min)
    wait_max = _default_wait(row, "wait_max", wait_max)
    if wait_min is not None and wait_max is not None and wait_min > wait_max:
        row.problem(
            "wait_min",
            f"{wait_min:g} is above wait_max {wait_max:g}{_defaults_note(row)}. "
            "Swap them or lower wait_min",
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


def _comma_in_number(text: str, comma: re.Match) -> str:
    """The problem of a number written with a comma: a decimal comma (9,99), or with three
    digits after it, maybe a thousands separator (1,500)."""
    point = f"{comma[1]}.{comma[2]}"
    if len(comma[2]) == 3:
        return (
            f"'{text}' has a comma. Write {comma[1]}{comma[2]} (no thousands separator), "
            f"or {point} if the comma is a decimal one"
        )
    return f"'{text}' has a decimal comma. Write it with a point: {point}"


def _locale_hint(locale: str) -> str:
    """``_hint`` for a locale, or the locales of a language written alone (ja → ja_JP)."""
    if locale.casefold() == "en_uk":  # the closest spelling, en_US, is another country
        return " (did you mean 'en_GB'?)"
    hint = did_you_mean(locale, AVAILABLE_LOCALES)
    if hint:
        return hint
    language = [
        name
        for name in AVAILABLE_LOCALES
        if name.split("_")[0] == locale.lower() and name not in DEPRECATED_LOCALES
    ]
    if len(language) == 1:
        return f" (did you mean '{language[0]}'?)"
    return f" (did you mean one of {', '.join(language)}?)" if language else ""


def _escaped(text: str) -> str:
    """``text`` with invisible and non-printable characters escaped: ``\\ufeffa_b``."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def _given(row: _Row) -> set[str]:
    return {k for k, v in row.cells.items() if (v or "").strip()}


def _default_wait(row: _Row, column: str, value: float | None) -> float | None:
    """``value``, or the column's default when the row leaves it empty (None when it was bad)."""
    return (
        WAIT_DEFAULTS[column] if value is None and column not in _given(row) else value
    )


def _defaults_note(row: _Row) -> str:
    """`` (wait_max is empty, so its default 3 applies)`` for each default in play: the user
    should not look for a number that is not in the file."""
    notes = [
        f"{column} is {'empty' if column in row.cells else 'not a column'}, "
        f"so its default {default:g} applies"
        for column, default in WAIT_DEFAULTS.items()
        if column not in _given(row)
    ]
    return f" ({'; '.join(notes)})" if notes else ""


def _check_amounts(row: _Row, currency: str, low: Decimal, high: Decimal) -> None:
    """Amounts must be whole minor units of every currency of the persona, and within the contract's max."""
    exponent = CURRENCIES[currency].exponent
    # compared exactly: arithmetic in Decimal's 28-digit context overflows on 9e999999 and rounds
    # 1e-1000030 to 0 or 5.0000000000000000000000000000001 to 5
    highest = Decimal(MAX_AMOUNT_MINOR).scaleb(-exponent)
    for column, value in (("amount_min", low), ("amount_max", high)):
        if _decimals(value) > exponent:
            unit = "whole numbers" if exponent == 0 else f"at most {exponent} decimals"
            row.problem(
                column,
                f"{value} cannot be paid in {currency}: its amounts are {unit}. "
                f"Round it{' or drop ' + currency + ' from currencies' if exponent == 0 else ''}",
            )
        elif value > highest:
            row.problem(
                column,
                f"{value} {currency} is above the contract's maximum of {highest} {currency} "
                f"({MAX_AMOUNT_MINOR} minor units). Lower it",
            )


def _decimals(value: Decimal) -> int:
    """How many decimals ``value`` needs (``12.50`` → 1, ``1E+3`` → 0), exactly."""
    _, digits, exponent = value.as_tuple()
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + zeros))
