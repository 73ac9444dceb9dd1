"""personas.csv: the default file, every kind of bad file, and a bad file stopping a real Locust run."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeys.personas import PersonaFileError, load_personas
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
        ("a,operator,1,visa,USD,1,5,0.1,0,0,en_US,1,3", "batch_size", "out of range"),
        (
            "a,customer,1,visa,USD,1,5,0.1,2,,en_XX,1,3",
            "locale",
            "unknown Faker locale",
        ),
        ("a,customer,1,visa,USD,1,5,0.1,2,,en_US,5,1", "wait_min", "above wait_max"),
        ("a,customer,1,visa,USD,1,5,0.1,2,,,1,3", "locale", "is empty"),
    ],
)
def test_each_bad_cell_names_line_column_and_fix(tmp_path, row, column, needle):
    [problem] = problems(tmp_path, row)
    assert f", line 2, column {column}:" in problem and needle in problem


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
        (b'persona,role\n"a,customer\n', "not a valid CSV"),
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


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.sampled_from(
            list('ab,|#\n"0123456789.-_ ') + ["USD", "visa", "customer", ",,"]
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


def test_locust_stops_before_any_traffic_on_a_bad_file(tmp_path):
    """A real Locust run with a bad file: exit 2, the problems, no traceback, no request sent."""
    path = write_personas(
        tmp_path,
        "a,custmer,1,visa,USD,1,5,0.1,2,,en_US,1,3",
        "b,customer,1,visa,USD,1,5,7,2,,en_US,1,3",
    )
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
            "--personas",
            str(path),
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
    assert "2 problems; no traffic was sent" in proc.stderr
    assert (
        "line 2, column role" in proc.stderr
        and "line 3, column decline_rate" in proc.stderr
    )
    assert "Traceback" not in proc.stderr
