"""personas.csv: the default file, every kind of bad file, and a bad file stopping a real Locust run."""

from __future__ import annotations

import ast
import codecs
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeys.options import PROJECT_DIR, personas_path
from journeys.personas import (
    JOURNEY_TAGS,
    RESERVED_CLASS_NAMES,
    TAGS_OF_EVERY_JOURNEY,
    PersonaFileError,
    load_personas,
)
from tests.conftest import PERSONA_HEADER, ROOT, write_personas

GOOD = "budget_shopper,customer,10,visa|mastercard,USD|EUR,5,60,0.1,2,,en_US,1,3"
OPERATOR = "back_office,operator,1,visa,USD,20,900,0.05,0,8,en_US,2,5"


def problems(tmp_path, *rows, header=PERSONA_HEADER) -> list[str]:
    path = write_personas(tmp_path, *rows, header=header)
    with pytest.raises(PersonaFileError) as caught:
        load_personas(path)
    assert str(caught.value).startswith(f"{path}: {len(caught.value.problems)} problem")
    return caught.value.problems


def test_default_file_tells_a_story():
    personas = load_personas(ROOT / "personas.csv")
    roles = [p.role for p in personas]
    assert (
        roles.count("customer") >= 3
        and 1 <= roles.count("operator") <= 2
        and roles.count("prober") >= 1
    )
    assert len({p.name for p in personas}) == len(personas)
    assert {c for p in personas for c in p.currencies} >= {"USD", "EUR", "JPY", "KRW"}
    probers = sum(p.weight for p in personas if p.role == "prober")
    assert probers / sum(p.weight for p in personas) < 0.05
    assert all(p.batch_size for p in personas if p.role == "operator")


def test_a_zero_weight_says_how_to_leave_the_persona_out(tmp_path):
    """Weight 0 is how users try to turn a persona off: the refusal named the range and a
    share "e.g. 10", never how to leave the persona out."""
    [problem] = problems(tmp_path, GOOD.replace(",10,", ",0,"), OPERATOR)
    assert problem == (
        f"{tmp_path / 'personas.csv'}, line 2, column weight: 0 is out of range; it must be "
        "> 0 and <= 1000000. The weight is a relative share, e.g. 10; to leave the persona "
        "out of the run, put # before its row"
    )


def test_good_rows_become_immutable_personas(tmp_path):
    [persona, operator] = load_personas(write_personas(tmp_path, GOOD, OPERATOR))
    assert persona.class_name == "BudgetShopper" and operator.class_name == "BackOffice"
    assert persona.card_types == ("visa", "mastercard") and persona.currencies == (
        "USD",
        "EUR",
    )
    assert (
        persona.amount_min == Decimal(5)
        and persona.batch_size is None
        and operator.batch_size == 8
    )
    assert (persona.wait_min, persona.wait_max) == (1.0, 3.0)
    with pytest.raises(AttributeError):
        persona.weight = 3


def test_decline_codes_of_a_prober_are_refused(tmp_path):
    """A prober sends no declining card, so its decline_codes were ignored without a word
    (as a batch_size is not, for a customer)."""
    row = "probe,prober,1,visa,USD,1,5,0,0,,en_US,1,3,lost_card"
    [problem] = problems(tmp_path, row, header=PERSONA_HEADER + ",decline_codes")
    assert (
        ", line 2, column decline_codes: the prober role sends no declining " in problem
    )
    assert problem.endswith("Leave decline_codes empty"), problem


def test_minus_zero_is_zero(tmp_path):
    """A -0 decline rate or think time is 0: it was kept as -0.0, which the journeys table
    showed as a configured decline rate of "-0%" and the CSVs as -0.0."""
    row = "careful,customer,1,visa,USD,5,60,-0,2,,en_US,-0.0,-0"
    [persona] = load_personas(write_personas(tmp_path, row))
    rates = (persona.decline_rate, persona.wait_min, persona.wait_max)
    assert [f"{rate:.0%}" for rate in rates] == ["0%", "0%", "0%"], rates


def test_optional_columns_default(tmp_path):
    header = "persona,role,weight,card_types,currencies,amount_min,amount_max,decline_rate,max_retries,batch_size,locale"
    [persona] = load_personas(
        write_personas(tmp_path, "a,customer,1,visa,USD,1,2,0,0,,en_US", header=header)
    )
    assert (persona.wait_min, persona.wait_max) == (
        1.0,
        3.0,
    ) and "lost_card" in persona.decline_codes


@pytest.mark.parametrize(
    "row,column,needle",
    [
        (
            "Budget Shopper,customer,10,visa,USD,5,60,0.1,2,,en_US,1,3",
            "persona",
            "snake_case",
        ),
        (
            "a,custmer,10,visa,USD,5,60,0.1,2,,en_US,1,3",
            "role",
            "did you mean 'customer'",
        ),
        ("a,customer,0,visa,USD,5,60,0.1,2,,en_US,1,3", "weight", "out of range"),
        ("a,customer,many,visa,USD,5,60,0.1,2,,en_US,1,3", "weight", "not a number"),
        (
            "a,customer,1,visa|mastercad,USD,5,60,0.1,2,,en_US,1,3",
            "card_types",
            "did you mean 'mastercard'",
        ),
        (
            "a,customer,1,visa,USD|EUX,5,60,0.1,2,,en_US,1,3",
            "currencies",
            "unknown currency 'EUX'",
        ),
        (
            "a,customer,1,visa,USD,60,5,0.1,2,,en_US,1,3",
            "amount_min",
            "above amount_max",
        ),
        (
            "a,customer,1,visa,USD,0.001,5,0.1,2,,en_US,1,3",
            "amount_min",
            "cannot be paid in USD",
        ),
        (
            "a,customer,1,visa,JPY,100.5,500,0.1,2,,ja_JP,1,3",
            "amount_min",
            "cannot be paid in JPY",
        ),
        ("a,customer,1,visa,USD,-1,5,0.1,2,,en_US,1,3", "amount_min", "out of range"),
        ("a,customer,1,visa,USD,1,5,1.5,2,,en_US,1,3", "decline_rate", "from 0 to 1"),
        (
            "a,customer,1,visa,USD,1,5,0.1,two,,en_US,1,3",
            "max_retries",
            "not a whole number",
        ),
        ("a,operator,1,visa,USD,1,5,0.1,0,,en_US,1,3", "batch_size", "is empty"),
        (
            "a,operator,1,visa,USD,1,5,0.1,2,4,en_US,1,3",
            "max_retries",
            "the operator role does not retry declines",
        ),
        ("a,operator,1,visa,USD,1,5,0.1,0,0,en_US,1,3", "batch_size", "out of range"),
        (
            "a,customer,1,visa,USD,1,5,0.1,0,7,en_US,1,3",
            "batch_size",
            "pays no batches",
        ),
        (
            "a,customer,1,visa,USD,1,5,0.1,2,,en_XX,1,3",
            "locale",
            "unknown Faker locale",
        ),
        ("a,customer,1,visa,USD,1,5,0.1,2,,en_US,5,1", "wait_min", "above wait_max"),
        ("a,customer,1,visa,USD,1,5,0.1,2,,,1,3", "locale", "is empty"),
        (
            "a,customer,2000000,visa,USD,1,5,0.1,2,,en_US,1,3",
            "weight",
            "it must be > 0 and <= 1000000",
        ),
        (
            "a,customer,1e400,visa,USD,1,5,0.1,2,,en_US,1,3",
            "weight",
            "'1e400' is not a finite number",
        ),
        (
            "a,customer,1,visa,USD,1,5,0.1,2,,en_US,1,7200",
            "wait_max",
            "from 0 to 3600",
        ),
        (
            "a,customer,1,visa,USD,1,5,0.1,1000,,en_US,1,3",
            "max_retries",
            "from 0 to 100",
        ),
        (
            "a,operator,1,visa,USD,1,5,0.1,0,1000000,en_US,1,3",
            "batch_size",
            "from 1 to 10000",
        ),
        (
            "a,prober,1,visa,USD,1,5,0.5,0,,en_US,1,3",
            "decline_rate",
            "the prober role sends no declining cards (its probes pick their own). Write 0",
        ),
        ("a,operator,1,visa,USD,1,5,0.1,0,8.5,en_US,1,3", "batch_size", "not a whole"),
    ],
)
def test_each_bad_cell_names_line_column_and_fix(tmp_path, row, column, needle):
    [problem] = problems(tmp_path, row)
    assert f", line 2, column {column}:" in problem and needle in problem


NUMERIC = {
    "weight": 2,
    "amount_min": 5,
    "amount_max": 6,
    "decline_rate": 7,
    "max_retries": 8,
    "batch_size": 9,
    "wait_min": 11,
    "wait_max": 12,
}


@pytest.mark.parametrize("column", NUMERIC)
@pytest.mark.parametrize(
    "spelling", ["inf", "-inf", "Infinity", "+INF", "nan", "NaN", "-nan", "sNaN"]
)
def test_numbers_must_be_finite(tmp_path, column, spelling):
    """inf think times hung the run, an inf weight broke the mix, NaN amounts crashed the loader."""
    cells = OPERATOR.split(",")
    cells[NUMERIC[column]] = spelling
    [problem] = problems(tmp_path, ",".join(cells))
    assert f", line 2, column {column}: '{spelling}' is not a" in problem


def test_persona_names_with_the_same_class_name(tmp_path):
    """``a_1`` and ``a1`` both become class A1: one would silently replace the other."""
    [problem] = problems(
        tmp_path,
        GOOD.replace("budget_shopper", "a_1"),
        GOOD.replace("budget_shopper", "a1"),
    )
    assert problem == (
        f"{tmp_path / 'personas.csv'}, line 3, column persona: 'a1' and 'a_1' (line 2) "
        "both become the Locust class A1. Rename one of them"
    )


def test_a_name_clash_is_reported_even_when_a_row_has_other_problems(tmp_path):
    """Both problems at once: the user should not fix the weight only to meet the clash."""
    bad_weight = GOOD.split(",")
    bad_weight[NUMERIC["weight"]] = "-1"
    found = problems(tmp_path, ",".join(bad_weight), GOOD)
    assert len(found) == 2, found
    assert "line 2, column weight" in found[0]
    assert (
        "line 3, column persona: 'budget_shopper' is already defined on line 2"
        in found[1]
    )


def test_reserved_class_names(tmp_path):
    [problem] = problems(tmp_path, GOOD.replace("budget_shopper", "load_profile"))
    assert (
        ", line 2, column persona: 'load_profile' becomes the Locust class LoadProfile"
        in problem
    )
    assert "Rename the persona" in problem


def test_reserved_class_names_cover_the_locustfile():
    """Every CamelCase name locustfile.py binds would be overwritten by a persona class of that name."""
    bound = set()
    for node in ast.parse((ROOT / "locustfile.py").read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.Assign):
            bound |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    assert "LoadProfile" in bound
    assert {n for n in bound if n[:1].isupper()} <= RESERVED_CLASS_NAMES


@pytest.mark.parametrize("name", ["edge", "batch_report", "operator", "probes"])
def test_a_persona_named_like_a_journey_tag_is_refused(tmp_path, name):
    """Persona names are Locust tags: a customer named edge made ``--tags edge`` run its
    checkout journeys beside the edge probes."""
    [problem] = problems(tmp_path, GOOD.replace("budget_shopper", name))
    assert f", line 2, column persona: '{name}' is also a journey tag" in problem
    assert "Rename the persona" in problem


def test_a_persona_may_be_named_like_a_tag_all_its_journeys_carry(tmp_path):
    """A prober named prober, a customer named checkout: ``--tags prober`` picks the same
    journeys whether it means the role or the persona, so the name is fine."""
    prober = "prober,prober,1,visa,USD,1,100,0,0,,en_US,0,1"
    loaded = load_personas(
        write_personas(tmp_path, GOOD.replace("budget_shopper", "checkout"), prober)
    )
    assert [p.name for p in loaded] == ["checkout", "prober"]


def test_journey_tags_cover_every_journey_and_role():
    """JOURNEY_TAGS holds every tag a journey class carries, and TAGS_OF_EVERY_JOURNEY those
    every journey of a role carries (the names a persona of that role may take)."""
    from journeys.users import JOURNEYS_BY_ROLE

    carried = {
        tag
        for journeys in JOURNEYS_BY_ROLE.values()
        for journey in journeys
        for task in journey.tasks
        for tag in getattr(task, "locust_tag_set", ())
    }
    assert carried == set(JOURNEY_TAGS)
    for role, journeys in JOURNEYS_BY_ROLE.items():
        every = set.intersection(
            *(
                set(getattr(task, "locust_tag_set", ()))
                for journey in journeys
                for task in journey.tasks
            )
        )
        assert every == TAGS_OF_EVERY_JOURNEY[role], role


@pytest.mark.parametrize("extra", [",", ", ", ",,"])
def test_trailing_empty_fields_are_ignored(tmp_path, extra):
    """Spreadsheets often end rows with a comma; pandas then shifted every cell by one."""
    first, second = load_personas(
        write_personas(tmp_path, GOOD + extra, OPERATOR + extra)
    )
    assert (first.name, first.role, first.locale, first.wait_max) == (
        "budget_shopper",
        "customer",
        "en_US",
        3.0,
    )
    assert (second.name, second.batch_size, second.wait_max) == ("back_office", 8, 5.0)


def test_a_spreadsheet_export_with_a_comma_after_every_line_loads(tmp_path):
    personas = load_personas(
        write_personas(
            tmp_path, GOOD + ",", OPERATOR + ",", header=PERSONA_HEADER + ","
        )
    )
    assert [p.name for p in personas] == ["budget_shopper", "back_office"]


def test_comments_end_a_line_as_pandas_reads_them(tmp_path):
    """A comment after a row may hold commas; a # inside quotes is data, not a comment."""
    [persona] = load_personas(
        write_personas(tmp_path, GOOD + "  # main persona, cheap, common")
    )
    assert (persona.name, persona.wait_max) == ("budget_shopper", 3.0)
    [problem] = problems(tmp_path, GOOD.replace("budget_shopper", '"budget#shopper"'))
    assert "line 2, column persona: 'budget#shopper' is not snake_case" in problem


@pytest.mark.parametrize(
    "rows,line,fields",
    [((GOOD + ",7",), 2, 14), ((GOOD, OPERATOR + ",x,"), 3, 15)],
)
def test_extra_values_are_reported_not_dropped(tmp_path, rows, line, fields):
    """pandas silently drops values past the header (or fails without a line): report them."""
    [problem] = problems(tmp_path, *rows)
    assert problem == (
        f"{tmp_path / 'personas.csv'}, line {line}: has {fields} fields, the header has 13. "
        'Remove the extra values (a value containing a comma must be quoted: "a,b")'
    )


def test_all_problems_at_once_with_lines_as_the_user_counts_them(tmp_path):
    path = tmp_path / "personas.csv"
    path.write_text(
        "# a comment line\n\n"
        + PERSONA_HEADER
        + "\n"
        + GOOD
        + "\n"
        + "\n# another comment\n"
        + "a,custmer,0,visa,USD,5,60,0.1,2,,en_US,1,3\n"
        + GOOD
        + "\n"
    )
    with pytest.raises(PersonaFileError) as caught:
        load_personas(path)
    found = caught.value.problems
    assert any("line 7, column role" in p for p in found)
    assert any("line 7, column weight" in p for p in found)
    assert any(
        "line 8, column persona" in p and "already defined on line 4" in p
        for p in found
    )
    assert len(found) == 3


def test_unknown_and_missing_columns(tmp_path):
    header = PERSONA_HEADER.replace("decline_rate", "decline_rat").replace(
        ",locale", ""
    )
    found = problems(tmp_path, "a,customer,1,visa,USD,1,5,0.1,2,,1,3", header=header)
    assert any(
        "column decline_rat: unknown column (did you mean 'decline_rate'?)" in p
        for p in found
    )
    assert any("column decline_rate: required column is missing" in p for p in found)
    assert any("column locale: required column is missing" in p for p in found)


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"", "is empty"),
        (b"# only a comment\n\n", "is empty"),
        (PERSONA_HEADER.encode() + b"\n", "no personas"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
        (b'persona,role\n"a,customer\n', 'line 2: a quote (") opens a value here'),
    ],
)
def test_files_that_are_not_persona_csvs(tmp_path, content, needle):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(PersonaFileError) as caught:
        load_personas(path)
    assert needle in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(PersonaFileError, match="file not found"):
        load_personas(tmp_path / "nope.csv")


def test_a_relative_path_not_found_names_the_working_directory(tmp_path, monkeypatch):
    """``locust -f path/to/locustfile.py --personas my.csv`` run from another folder: the
    message said only "my.csv: file not found", not where it was looked for."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PersonaFileError) as caught:
        load_personas(Path("my.csv"))
    assert (
        f"my.csv: file not found in {tmp_path} (the working directory, where a relative "
        "path starts)" in str(caught.value)
    ), str(caught.value)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.sampled_from(
            list('ab,|#\n\r\t;"0123456789.-_ e')
            + ["USD", "visa", "customer", ",,", "999999"]
        ),
        max_size=80,
    )
)
def test_loader_only_ever_raises_persona_file_error(tmp_path, pieces):
    text = "".join(pieces)
    path = tmp_path / "fuzz.csv"
    path.write_text(PERSONA_HEADER + "\n" + text)
    try:
        load_personas(path)
    except PersonaFileError as exc:
        assert exc.problems


def test_old_mac_line_endings_load_like_any_other(tmp_path):
    """A CR-only file (old Mac, some exporters) crashed the loader with a csv traceback."""
    shipped = (ROOT / "personas.csv").read_text()
    path = tmp_path / "cr.csv"
    path.write_bytes(shipped.replace("\n", "\r").encode())
    assert load_personas(path) == load_personas(ROOT / "personas.csv")
    path.write_bytes(
        "\r".join(
            ["# c", "", PERSONA_HEADER, GOOD, "", OPERATOR.replace(",1,", ",x,")]
        ).encode()
    )
    [problem] = problems_in(path)
    assert f"{path}, line 6, column weight: 'x' is not a number" in problem


def problems_in(path: Path) -> list[str]:
    """The problems load_personas reports for a file written by the test itself."""
    with pytest.raises(PersonaFileError) as caught:
        load_personas(path)
    return caught.value.problems


@pytest.mark.parametrize(
    "content",
    [
        "\r".join([PERSONA_HEADER, GOOD, '"a\rb"' + GOOD[14:], ""]),
        f"{PERSONA_HEADER}\r\n{GOOD}\r{GOOD}\n",
        PERSONA_HEADER + "\n" + GOOD.replace("budget_shopper", "a" * 200_000),
        PERSONA_HEADER + "\n" + GOOD.replace(",5,60,", ",9e999999,9e999999,"),
        PERSONA_HEADER + "\n" + GOOD.replace(",5,60,", ",1,9e999998,"),
        PERSONA_HEADER + "\n" + GOOD + "\0\n",
        PERSONA_HEADER + '\n"\n',
        PERSONA_HEADER + "\n" + "\t;\r\x0c\x85\u2028,\v" * 20,
    ],
)
def test_odd_files_only_ever_raise_persona_file_error(tmp_path, content):
    """CR line ends, a huge field, a huge amount: each escaped as a traceback (exit code 1)."""
    path = tmp_path / "odd.csv"
    path.write_bytes(content.encode())
    try:
        load_personas(path)
    except PersonaFileError as exc:
        assert exc.problems


@pytest.mark.parametrize(
    "amounts,column,needle",
    [
        ("5,9e999999", "amount_max", "above the contract's maximum"),
        ("1e-1000030,5", "amount_min", "cannot be paid in USD"),
        ("5.0000000000000000000000000000001,6", "amount_min", "cannot be paid in USD"),
    ],
)
def test_amounts_are_checked_exactly(tmp_path, amounts, column, needle):
    """Decimal's 28-digit context overflowed on 9e999999 and rounded tiny or long amounts away."""
    row = GOOD.replace("USD|EUR", "USD").replace(",5,60,", f",{amounts},")
    [problem] = problems(tmp_path, row)
    assert f", line 2, column {column}: " in problem and needle in problem


def test_a_repeated_column_is_named_once(tmp_path):
    """pandas renamed the second weight to weight.1, reported as an unknown column."""
    [problem] = problems(tmp_path, GOOD + ",5", header=PERSONA_HEADER + ",weight")
    assert problem == (
        f"{tmp_path / 'personas.csv'}, line 1, column weight: appears twice in the header. Keep one"
    )


def test_a_column_without_a_name(tmp_path):
    """pandas called it 'Unnamed: 1', a name the user never wrote."""
    header = PERSONA_HEADER.replace(",role,", ",,")
    found = problems(tmp_path, GOOD, header=header)
    assert f"{tmp_path / 'personas.csv'}, line 1, column 2: has no name" in found[0]
    assert "Unnamed" not in "".join(found)


@pytest.mark.parametrize("blank", [",,,,,,,,,,,,", " , ,  ,,,,,,,,,,", ",,", '"",'])
def test_a_row_of_only_commas_is_a_blank_line(tmp_path, blank):
    """Spreadsheets export empty rows as commas; each gave ten 'is empty' problems."""
    [persona] = load_personas(write_personas(tmp_path, blank, GOOD, blank))
    assert persona.name == "budget_shopper"
    [problem] = problems(tmp_path, blank, GOOD.replace(",10,", ",x,"))
    assert ", line 3, column weight: 'x' is not a number" in problem


@pytest.mark.parametrize("separator,named", [(";", "';'"), ("\t", "tabs")])
def test_a_file_not_separated_by_commas(tmp_path, separator, named):
    """A ;- or tab-separated export gave one giant unknown column and 11 missing ones."""
    [problem] = problems(
        tmp_path,
        GOOD.replace(",", separator),
        header=PERSONA_HEADER.replace(",", separator),
    )
    assert problem.startswith(f"{tmp_path / 'personas.csv'}, line 1: ")
    assert f"separated by {named}" in problem and "comma-separated" in problem


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_excels_separator_hint_line(tmp_path, newline):
    """A file made for Excel may start with "sep=,": it was "there is no header ... (it looks
    like a persona)". "sep=," is what the file is, so it is skipped; another sign is refused."""
    path = tmp_path / "personas.csv"
    path.write_text(newline.join(["sep=,", PERSONA_HEADER, GOOD, ""]))
    [persona] = load_personas(path)
    assert persona.name == "budget_shopper"
    for sign, named in ((";", "';'"), ("\t", "tabs")):
        header, row = PERSONA_HEADER.replace(",", sign), GOOD.replace(",", sign)
        path.write_text(newline.join([f"sep={sign}", header, row]))
        with pytest.raises(PersonaFileError) as caught:
            load_personas(path)
        [problem] = caught.value.problems
        assert problem == (
            f"{path}, line 1: sep= says the columns are separated by {named}, but the file "
            "must be comma-separated. Save it as CSV with commas (in a spreadsheet: CSV, "
            "comma delimited)"
        )


@pytest.mark.parametrize(
    "before,after,column,fix",
    [
        ("visa|mastercard", '"visa,mastercard"', "card_types", "visa|mastercard"),
        ("USD|EUR", '"USD, EUR|GBP"', "currencies", "USD|EUR|GBP"),
    ],
)
def test_values_separated_by_a_comma(tmp_path, before, after, column, fix):
    """'visa,mastercard' got 'did you mean mastercard?', which does not say to use |."""
    [problem] = problems(tmp_path, GOOD.replace(before, after))
    assert f", line 2, column {column}: " in problem
    assert f"separated with |, e.g. {fix}" in problem and "did you mean" not in problem


@pytest.mark.parametrize(
    "before,after,column,written,fix",
    [
        (
            "visa|mastercard",
            "visa mastercard",
            "card_types",
            "spaces",
            "visa|mastercard",
        ),
        ("visa|mastercard", "visa; amex", "card_types", ";", "visa|amex"),
        ("USD|EUR", "USD/EUR|GBP", "currencies", "/", "USD|EUR|GBP"),
    ],
)
def test_values_separated_by_spaces_or_another_sign(
    tmp_path, before, after, column, written, fix
):
    """'visa amex' got "unknown card brand 'visa amex' (did you mean 'visa'?)": a fix that
    drops amex and does not say to use |."""
    [problem] = problems(tmp_path, GOOD.replace(before, after))
    assert problem == (
        f"{tmp_path / 'personas.csv'}, line 2, column {column}: '{after}' separates its "
        f"values with {written}. Several values are separated with |, e.g. {fix}"
    )


def test_a_card_number_with_spaces_in_a_list_is_not_quoted_in_pieces(tmp_path):
    [problem] = problems(
        tmp_path, GOOD.replace("visa|mastercard", "4242 4242 4242 4242")
    )
    assert "4242" not in problem, problem
    assert "separated with |, e.g. visa|mastercard" in problem


def test_the_token_pasted_into_a_cell_is_not_quoted(tmp_path, monkeypatch):
    """A cell's problem quotes the cell: the internal token pasted there (the wrong file for
    it) went to stderr and a CI job's log whole, though card numbers were scrubbed."""
    token = "ops-token-9f2c41d7e5"
    monkeypatch.setenv("PAYMENT_INTERNAL_TOKEN", token)
    [problem] = problems(tmp_path, GOOD.replace("en_US", token))
    assert token not in problem, problem
    assert "unknown Faker locale '[token redacted]'" in problem, problem


@pytest.mark.parametrize(
    "code,name",
    [("KWD", "Kuwaiti dinar"), ("SGD", "Singapore dollar"), ("BHD", "Bahraini dinar")],
)
def test_a_currency_the_contract_lacks_is_not_taken_for_a_typo(tmp_path, code, name):
    """KWD got "did you mean 'KRW'?", SGD "did you mean 'USD'?": another country's money."""
    [problem] = problems(tmp_path, GOOD.replace("USD|EUR", f"USD|{code}"))
    assert problem.endswith(
        f"column currencies: '{code}' ({name}) is not a currency the contract supports. "
        "Use USD, EUR, GBP, CAD, AUD, CHF, SEK, JPY, KRW, separated by |"
    ), problem


@pytest.mark.parametrize("column", ["amount_min", "amount_max", "decline_rate"])
def test_a_decimal_comma_says_to_write_a_point(tmp_path, column):
    """A spreadsheet in a German or French locale writes 9,99: "is not a number" left the
    user to guess why."""
    cells = GOOD.split(",")
    cells[NUMERIC[column]] = '"0,25"'
    [problem] = problems(tmp_path, ",".join(cells))
    assert problem == (
        f"{tmp_path / 'personas.csv'}, line 2, column {column}: '0,25' has a decimal comma. "
        "Write it with a point: 0.25"
    )


def test_a_thousands_separator_is_not_taken_for_a_decimal_comma(tmp_path):
    cells = GOOD.split(",")
    cells[NUMERIC["amount_max"]] = '"1,500"'
    [problem] = problems(tmp_path, ",".join(cells))
    assert problem.endswith(
        "column amount_max: '1,500' has a comma. Write 1500 (no thousands separator), or "
        "1.500 if the comma is a decimal one"
    ), problem


@pytest.mark.parametrize(
    "locale,hint",
    [
        ("ja", " (did you mean 'ja_JP'?)"),
        ("en_UK", " (did you mean 'en_GB'?)"),
        ("FR", " (did you mean one of fr_BE, fr_CA, fr_CH, fr_DZ, fr_FR?)"),
    ],
)
def test_a_language_alone_as_locale_gets_its_locales(tmp_path, locale, hint):
    """'ja' got no hint at all (difflib finds ja_JP too far from it), en_UK got 'en_US' (another
    country); the deprecated fr_QC is not offered."""
    [problem] = problems(tmp_path, GOOD.replace("en_US", locale))
    assert f"column locale: unknown Faker locale '{locale}'{hint}" in problem


@pytest.mark.parametrize(
    "before,after,hint",
    [
        ("USD|EUR", "usd|EUR", "unknown currency 'usd' (did you mean 'USD'?)"),
        ("visa|mastercard", "VISA", "unknown card brand 'VISA' (did you mean 'visa'?)"),
        ("customer", "Customer", "unknown role 'Customer' (did you mean 'customer'?)"),
    ],
)
def test_a_value_in_the_wrong_case_gets_a_hint(tmp_path, before, after, hint):
    [problem] = problems(tmp_path, GOOD.replace(before, after, 1))
    assert hint in problem


@pytest.mark.parametrize(
    "start,first",
    [("", GOOD), ("# c\n\n", GOOD), ("", GOOD.replace("budget_shopper", '"a\nb"'))],
)
def test_an_unclosed_quote_names_the_line_it_opens_on(tmp_path, start, first):
    """pandas said 'EOF inside string starting at row 14', counting its rows, not the file's lines."""
    path = tmp_path / "personas.csv"
    rows = [first, GOOD.replace("en_US", '"en_US'), GOOD, "", GOOD]
    path.write_text(start + PERSONA_HEADER + "\n" + "\n".join(rows) + "\n")
    line = start.count("\n") + first.count("\n") + 3
    [problem] = problems_in(path)
    assert problem == (
        f'{path}, line {line}: a quote (") opens a value here but is never closed. '
        "Close it, or remove it (quotes are only needed around a value containing a comma)"
    )


def test_a_quote_inside_a_value_is_no_quote(tmp_path):
    """As in CSV, only a quote at the start of a value quotes it: line numbers stay right."""
    path = tmp_path / "personas.csv"
    rows = [GOOD.replace("budget_shopper", 'ab"c'), '# x"', GOOD.replace(",10,", ",x,")]
    path.write_text(PERSONA_HEADER + "\n" + "\n".join(rows) + "\n")
    found = problems_in(path)
    assert any("line 2, column persona: 'ab\"c'" in p for p in found)
    assert any("line 4, column weight: 'x' is not a number" in p for p in found)


@pytest.mark.parametrize(
    "waits,note",
    [
        ("5,", "5 is above wait_max 3 (wait_max is empty, so its default 3 applies)"),
        (
            ",0.5",
            "1 is above wait_max 0.5 (wait_min is empty, so its default 1 applies)",
        ),
    ],
)
def test_a_default_wait_is_named_when_it_clashes(tmp_path, waits, note):
    """'5 is above wait_max 3' left the user looking for a 3 that is not in the file."""
    [problem] = problems(tmp_path, GOOD[: -len("1,3")] + waits)
    assert ", line 2, column wait_min: " + note in problem


@pytest.mark.parametrize("column", NUMERIC)
def test_numbers_with_underscores_are_refused(tmp_path, column):
    """float('2_4') is 24 in Python; in a CSV it is a typo."""
    cells = OPERATOR.split(",")
    cells[NUMERIC[column]] = "0_" + cells[NUMERIC[column]]
    [problem] = problems(tmp_path, ",".join(cells))
    assert f", line 2, column {column}: '{cells[NUMERIC[column]]}' is not a" in problem


@pytest.mark.parametrize("digit", ["\uff11", "\u0661", "\u00b9"])
@pytest.mark.parametrize("column", NUMERIC)
def test_numbers_with_other_digits_than_0_to_9_are_refused(tmp_path, column, digit):
    """float() and Decimal() read a full-width \uff11 or Arabic-Indic \u0661 as 1: the file
    loaded with a number no one can see is one; the contract's digits are ASCII."""
    cells = OPERATOR.split(",")
    cells[NUMERIC[column]] = digit
    [problem] = problems(tmp_path, ",".join(cells))
    assert f", line 2, column {column}: '{digit}' is not a" in problem
    assert "digits 0-9" in problem


def test_a_deprecated_faker_locale_names_its_successor(tmp_path):
    """Faker still takes fr_QC but prints a UserWarning with its source path into the run's
    log, and will drop it: the file names fr_CA instead."""
    [problem] = problems(tmp_path, GOOD.replace("en_US", "fr_QC"))
    assert problem.endswith(
        ", line 2, column locale: Faker's locale 'fr_QC' is deprecated. Use fr_CA"
    )


@pytest.mark.parametrize("how", ["--personas", "--config"])
def test_locust_stops_before_any_traffic_on_a_bad_file(tmp_path, how):
    """A real Locust run with a bad file: exit 2, the problems, no traceback, no request sent."""
    path = write_personas(
        tmp_path,
        "a,custmer,1,visa,USD,1,5,0.1,2,,en_US,1,3",
        "b,customer,1,visa,USD,1,5,7,2,,en_US,1,3",
    )
    if how == "--config":
        (tmp_path / "run.conf").write_text(f"personas = {path}\n")
        chosen = [how, str(tmp_path / "run.conf")]
    else:
        chosen = [how, str(path)]
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            "locustfile.py",
            "--headless",
            "-u",
            "1",
            "-t",
            "2s",
            *chosen,
            "--host",
            f"http://127.0.0.1:{port}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "PAYMENT_INTERNAL_TOKEN": "x",
            "DD_TRACE_ENABLED": "false",
        },
    )
    with pytest.raises(TimeoutError):
        listener.accept()
    listener.close()
    assert proc.returncode == 2, proc.stderr
    assert "2 problems. Fix the file and run again:" in proc.stderr
    assert (
        "line 2, column role" in proc.stderr
        and "line 3, column decline_rate" in proc.stderr
    )
    assert f"{path}: 2 problems" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def no_config(tmp_path, monkeypatch):
    """An empty working directory and home, and no LOCUST_PERSONAS: only what a test writes counts."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("LOCUST_PERSONAS", raising=False)
    return tmp_path


def test_personas_path_defaults_to_the_shipped_file(no_config):
    assert personas_path([]) == PROJECT_DIR / "personas.csv"
    (no_config / "personas.csv").write_text("")
    assert personas_path([]) == Path("personas.csv")


@pytest.mark.parametrize(
    "name,text",
    [
        ("locust.conf", "personas = from_conf.csv\n"),
        (".locust.conf", "personas = from_conf.csv\n"),
        ("pyproject.toml", '[tool.locust]\npersonas = "from_conf.csv"\n'),
        ("elsewhere/run.conf", "users = 3\npersonas = from_conf.csv\n"),
    ],
)
def test_personas_path_reads_locust_config_files(no_config, name, text):
    """Locust reads these files too; --personas in them was silently ignored."""
    config = no_config / name
    config.parent.mkdir(exist_ok=True)
    config.write_text(text)
    args = ["--config", str(config)] if name.startswith("elsewhere") else []
    assert personas_path([*args, "--headless"]) == Path("from_conf.csv")


def test_personas_path_precedence(no_config, monkeypatch):
    """Locust's order: command line > LOCUST_PERSONAS > config file > default."""
    (no_config / "locust.conf").write_text("personas = conf.csv\n")
    assert personas_path([]) == Path("conf.csv")
    monkeypatch.setenv("LOCUST_PERSONAS", "env.csv")
    assert personas_path([]) == Path("env.csv")
    assert personas_path(["-u", "2", "--personas", "cli.csv"]) == Path("cli.csv")
    assert personas_path(["--personas=cli.csv"]) == Path("cli.csv")


def test_a_file_without_its_header_says_so(tmp_path):
    """Rows pasted without the header gave 24 problems ('column budget_shopper: unknown column',
    'column 24: ...'), none of which said the header was missing."""
    path = tmp_path / "personas.csv"
    path.write_text(f"{GOOD}\n{GOOD.replace('budget_shopper', 'other')}\n")
    [problem] = problems_in(path)
    assert problem.startswith(f"{path}, line 1: there is no header")
    assert "Add the header as the first line: persona,role,weight," in problem


def test_a_file_written_by_pandas_loads(tmp_path):
    """pandas writes an int column with gaps (batch_size) as 8.0: "'8.0' is not a whole number"."""
    path = tmp_path / "personas.csv"
    pd.read_csv(ROOT / "personas.csv", comment="#").to_csv(path, index=False)
    assert ",8.0," in path.read_text()
    assert load_personas(path) == load_personas(ROOT / "personas.csv")
    customer, operator = load_personas(
        write_personas(
            tmp_path,
            GOOD.replace(",2,,", ",2.0,,"),
            OPERATOR.replace(",1,", ",3.0,").replace(",0,8,", ",0.0,8.00,"),
        )
    )
    assert (customer.max_retries, operator.max_retries) == (2, 0)
    assert (operator.weight, operator.batch_size) == (3.0, 8)


@pytest.mark.parametrize(
    "encoded",
    [
        (PERSONA_HEADER + "\n" + GOOD + "\n").encode("utf-16"),
        codecs.BOM_UTF16_LE + (PERSONA_HEADER + "\r\n").encode("utf-16-le"),
        codecs.BOM_UTF16_BE + (PERSONA_HEADER + "\r\n").encode("utf-16-be"),
    ],
)
def test_a_utf16_file_says_so(tmp_path, encoded):
    """Excel's "Unicode Text" export was called a binary file."""
    path = tmp_path / "personas.csv"
    path.write_bytes(encoded)
    [problem] = problems_in(path)
    assert problem == (
        f'{path}: is UTF-16 text (Excel\'s "Unicode Text"), not UTF-8. '
        'Save it as "CSV UTF-8" instead'
    )


@pytest.mark.parametrize(
    "bom,newline", [(b"", b"\n"), (codecs.BOM_UTF8, b"\r\n"), (b"", b"\r")]
)
def test_a_latin1_file_names_the_line_and_the_byte(tmp_path, bom, newline):
    """'is not UTF-8 text' left the user searching the whole file for the character."""
    lines = ["# prices, caf\xe9 first", "", PERSONA_HEADER, GOOD]
    lines.append(GOOD.replace("budget_shopper", "caf\xe9"))
    path = tmp_path / "personas.csv"
    path.write_bytes(bom + newline.join(line.encode("latin-1") for line in lines[2:]))
    [problem] = problems_in(path)
    assert problem == (
        f"{path}, line 3: is not UTF-8 text (byte 0xE9, \xe9 in Latin-1/Windows-1252). "
        'Save the file as UTF-8 (in a spreadsheet: "CSV UTF-8")'
    )
    path.write_bytes(newline.join(line.encode("latin-1") for line in lines))
    assert ", line 1: is not UTF-8 text (byte 0xE9," in problems_in(path)[0]


def test_column_names_in_another_case_or_with_spaces_load(tmp_path):
    """'Persona,Role,Weight,...' was taken for a persona: 'there is no header'."""
    header = PERSONA_HEADER.title().replace(",Weight,", ", WEIGHT ,")
    [persona] = load_personas(write_personas(tmp_path, GOOD, header=header))
    assert (persona.name, persona.weight, persona.wait_max) == (
        "budget_shopper",
        10.0,
        3.0,
    )
    found = problems(
        tmp_path, GOOD, header=header.replace("Decline_Rate", "Decline_Rat")
    )
    assert any(
        "column Decline_Rat: unknown column (did you mean 'decline_rate'?)" in p
        for p in found
    )


@pytest.mark.parametrize("header", [PERSONA_HEADER, PERSONA_HEADER.upper() + ","])
def test_the_header_repeated_as_a_row_is_one_problem(tmp_path, header):
    """A header pasted again gave a problem for each of its 12 columns."""
    [problem] = problems(tmp_path, GOOD, header, OPERATOR)
    assert (
        problem
        == f"{tmp_path / 'personas.csv'}, line 3: repeats the header (line 1). Remove it"
    )


def test_a_row_missing_a_value_says_so(tmp_path):
    """One value missing in the middle shifted the rest: 'batch_size: 'en_US' is not a whole number'."""
    found = problems(tmp_path, GOOD, OPERATOR.replace(",1,visa,", ",visa,"))
    assert found[0] == (
        f"{tmp_path / 'personas.csv'}, line 3: has 12 fields, the header has 13; if a value is "
        "missing in the middle, the following ones shift into the wrong columns. Add the "
        "missing value, or leave it empty with two commas (,,)"
    )
    assert all(", line 3, column " in p for p in found[1:]) and len(found) > 1
    short = OPERATOR.rsplit(",", 2)[
        0
    ]  # without wait_min, wait_max: their defaults apply
    assert [
        p.wait_max for p in load_personas(write_personas(tmp_path, GOOD, short))
    ] == [3.0, 3.0]


@pytest.mark.parametrize(
    "before,after,column,fix",
    [
        ("visa|mastercard", "visa|", "card_types", "Write visa"),
        ("USD|EUR", "USD||EUR", "currencies", "Write USD|EUR"),
        ("USD|EUR", "|", "currencies", "Write USD"),
        (",1,3,", ",1,3,lost_card| ", "decline_codes", "Write lost_card"),
    ],
)
def test_an_empty_entry_in_a_list(tmp_path, before, after, column, fix):
    """'visa|' gave "unknown card brand ''"."""
    row = (GOOD + ",").replace(before, after)
    [problem] = problems(tmp_path, row, header=PERSONA_HEADER + ",decline_codes")
    assert problem.endswith(
        f", line 2, column {column}: '{after.split(',')[-1].strip()}' has an empty entry "
        f"(a stray |). {fix}"
    )


@pytest.mark.parametrize(
    "before,after,column,fix",
    [
        ("visa|mastercard", "visa|mastercard|visa", "card_types", "visa|mastercard"),
        ("USD|EUR", "USD|USD|EUR", "currencies", "USD|EUR"),
        (",1,3,", ",1,3,lost_card|lost_card", "decline_codes", "lost_card"),
    ],
)
def test_a_value_listed_twice_in_a_list(tmp_path, before, after, column, fix):
    """Each value is picked with an equal share: USD|USD|EUR sent half USD, not two thirds,
    and the second USD was dropped without a word."""
    row = (GOOD + ",").replace(before, after)
    [problem] = problems(tmp_path, row, header=PERSONA_HEADER + ",decline_codes")
    value = after.split(",")[-1]
    assert problem.endswith(
        f", line 2, column {column}: '{value}' lists {fix.split('|')[0]} twice; each value "
        f"gets an equal share, so listing one again does not weight it. Write {fix}"
    )


@pytest.mark.parametrize("hidden", ["\ufeff", "\u200b"])
def test_an_invisible_character_in_a_name_is_shown(tmp_path, hidden):
    """ "'\ufeffa_b' is not snake_case" showed the name as if it were fine."""
    [problem] = problems(tmp_path, GOOD.replace("budget_shopper", f"a{hidden}_b"))
    code = hidden.encode("unicode_escape").decode()
    assert problem.endswith(
        f", line 2, column persona: 'a{code}_b' is not snake_case: it has an invisible "
        f"character ({code}). Delete it: a_b"
    )


@pytest.mark.parametrize(
    "currency,amounts,maximum",
    [
        ("USD", "1,99999999", "999999.99 USD"),
        ("JPY", "1,100000000", "99999999 JPY"),
    ],
)
def test_the_amount_maximum_is_in_the_amounts_units(
    tmp_path, currency, amounts, maximum
):
    """'99999999 USD is above the contract's maximum of 99999999 minor units' mixed units."""
    row = GOOD.replace("USD|EUR", currency).replace(",5,60,", f",{amounts},")
    [problem] = problems(tmp_path, row)
    assert problem.endswith(
        f", line 2, column amount_max: {amounts.split(',')[1]} {currency} is above the "
        f"contract's maximum of {maximum} (99999999 minor units). Lower it"
    )
