"""The figures every output shows, computed in one place: journey rows, funnels, persona mix.

The web UI tab, the CSV files, the HTML report and the terminal summary all render these rows,
so they can never disagree. Rows are plain dicts keyed by the CSV column names.
"""

from __future__ import annotations

from typing import Any

from journeys.results.stats import OUTCOMES, JourneyBook, JourneyCounters
from journeys.results.user_counts import peaks, users_now

ALL = "All"

_DURATIONS = (
    ("p50_ms", "p50 ms"),
    ("p95_ms", "p95 ms"),
    ("p99_ms", "p99 ms"),
    ("max_ms", "Max ms"),
)
_PAYMENTS = (
    ("attempts_per_payment", "Attempts / pay"),
    ("decline_rate_configured", "Declines configured"),
    ("decline_rate_observed", "Declines observed"),
    ("duplicate_charges", "Dup. charges"),
)
_OUTCOMES = tuple((outcome, outcome.capitalize()) for outcome in OUTCOMES)
_NAMES = (("journey", "Journey"), ("persona", "Persona"), ("started", "Started"))
_TITLE = dict((*_OUTCOMES, *_PAYMENTS))
#: Columns people read (web UI tab, HTML report), with their titles. The table is wider than
#: most windows (the web UI's at 1280 px shows ~14 columns), so what must not be missed comes
#: first: durations after Started, the outcomes that paid, then the alarms (failed, mismatch,
#: duplicate charges), then the rest.
JOURNEY_TITLES = (
    *_NAMES,
    *_DURATIONS,
    *(
        (column, _TITLE[column])
        for column in (
            "succeeded",
            "recovered",
            "reconciled",
            "failed",
            "mismatch",
            "duplicate_charges",
            "abandoned",
            "interrupted",
            "attempts_per_payment",
            "decline_rate_configured",
            "decline_rate_observed",
        )
    ),
)
#: The funnel: started → declined → retried → recovered | abandoned (operators: reconciled |
#: mismatch), and the journeys cut off before their outcome (``interrupted``), which the stages
#: between leave out.
FUNNEL_STAGES = (
    "started",
    "declined",
    "retried",
    "recovered",
    "abandoned",
    "interrupted",
)
#: The funnel's ends: customers recover or abandon, operators reconcile or mismatch.
CUSTOMER_FUNNEL_ENDS = ("recovered", "abandoned")
OPERATOR_FUNNEL_ENDS = ("reconciled", "mismatch")
#: Every column of ``PREFIX_journeys.csv``. A row fills the funnel ends of its kind of journey
#: and leaves the other kind's blank; columns added later come last, so older columns keep their
#: place and meaning.
JOURNEY_COLUMNS = (
    *(column for column, _ in (*_NAMES, *_OUTCOMES)),
    "payments",
    "attempts",
    *(column for column, _ in (*_PAYMENTS, *_DURATIONS)),
    *(f"funnel_{stage}" for stage in FUNNEL_STAGES if stage != "interrupted"),
    *(f"funnel_{stage}" for stage in OPERATOR_FUNNEL_ENDS),
    "funnel_interrupted",
)
#: ``--journey-rate`` only: the starts its pace asked for and those dropped (a journey that
#: ended a whole interval or more after its user's next start was due), after Started in the
#: tables people read, last in the CSV.
PACE_TITLES = (("asked", "Asked"), ("dropped", "Dropped"))
PACE_COLUMNS = tuple(column for column, _ in PACE_TITLES)
#: How many columns come before the pace's in the tables people read (Journey, Persona, Started).
PACE_AT = len(_NAMES)


def paced(rows: list[dict[str, Any]]) -> bool:
    """Whether ``rows`` are of a ``--journey-rate`` run (they carry the pace's columns)."""
    return any("asked" in row for row in rows)


def journey_titles(with_pace: bool) -> tuple[tuple[str, str], ...]:
    """``JOURNEY_TITLES``, with the pace's columns after Started for a ``--journey-rate`` run."""
    if not with_pace:
        return JOURNEY_TITLES
    return (*JOURNEY_TITLES[:PACE_AT], *PACE_TITLES, *JOURNEY_TITLES[PACE_AT:])


def journey_columns(with_pace: bool) -> tuple[str, ...]:
    """``JOURNEY_COLUMNS``, with the pace's at the end for a ``--journey-rate`` run."""
    return (*JOURNEY_COLUMNS, *PACE_COLUMNS) if with_pace else JOURNEY_COLUMNS


MIX_TITLES = (
    ("persona", "Persona"),
    ("user_class", "User class"),
    ("role", "Role"),
    ("weight", "Weight"),
    ("share_configured", "Configured share"),
    ("users", "Users"),
    ("share_users", "User share"),
    ("peak_users", "Peak users"),
    ("journeys_started", "Journeys started"),
    ("share_journeys", "Journey share"),
)
MIX_COLUMNS = tuple(column for column, _ in MIX_TITLES)
#: Columns holding a fraction, shown to people as a percentage.
RATE_COLUMNS = frozenset(
    {
        "decline_rate_configured",
        "decline_rate_observed",
        "share_configured",
        "share_users",
        "share_journeys",
    }
)
#: Journeys that pay with good cards only (the persona's decline rate does not apply).
GOOD_CARD_JOURNEYS = frozenset({"edge_probes", "error_probes"})


def personas_of(environment) -> dict[str, Any]:
    """Persona objects of the run's user classes, by persona name."""
    found = {}
    for cls in getattr(environment, "user_classes", None) or []:
        persona = getattr(cls, "persona", None)
        if persona is not None:
            found[persona.name] = persona
    return found


def configured_decline_rate(
    book: JourneyBook, personas: dict, journey: str, persona: str
) -> float | None:
    """The persona's configured decline rate; for ``All``, the payment-weighted mean of its personas.

    None for probes: they pay with good cards only, so no decline rate applies to them.
    """
    if journey in GOOD_CARD_JOURNEYS:
        return None
    if persona != ALL:
        p = personas.get(persona)
        return (
            float(p.decline_rate)
            if p is not None and p.decline_rate is not None
            else None
        )
    rates = [
        (
            configured_decline_rate(book, personas, journey, name),
            book.get(journey, name).payments,
        )
        for name in book.personas(journey)
    ]
    rates = [(r, n) for r, n in rates if r is not None]
    if not rates:
        return None
    weight = sum(n for _, n in rates)
    if not weight:
        return sum(r for r, _ in rates) / len(rates)
    return sum(r * n for r, n in rates) / weight


def _funnel_ends(journey: str, outcomes) -> tuple[str, str]:
    """Which outcomes end this journey's funnel: an operator's, or a customer's."""
    if journey == "batch_report" or any(outcomes.get(o) for o in OPERATOR_FUNNEL_ENDS):
        return OPERATOR_FUNNEL_ENDS
    return CUSTOMER_FUNNEL_ENDS


def _funnel_end_columns(journey: str, outcomes) -> dict[str, int | None]:
    """The four ``funnel_`` end columns: this journey's kind counted, the other kind blank."""
    ends = _funnel_ends(journey, outcomes)
    return {
        f"funnel_{stage}": outcomes[stage] if stage in ends else None
        for stage in (*CUSTOMER_FUNNEL_ENDS, *OPERATOR_FUNNEL_ENDS)
    }


def funnel_stages_of_row(row: dict[str, Any]) -> list[tuple[str, int]]:
    """The funnel of a journey row, with its stages named for people."""
    ends = _funnel_ends(row["journey"], row)
    return [
        ("started", row["funnel_started"]),
        ("1st declined", row["funnel_declined"]),
        ("retried", row["funnel_retried"]),
        *((stage, row[f"funnel_{stage}"]) for stage in ends),
        ("interrupted", row["funnel_interrupted"]),
    ]


def journey_row(
    journey: str,
    persona: str,
    counters: JourneyCounters,
    configured: float | None,
    with_pace: bool = False,
) -> dict[str, Any]:
    d = counters.durations
    pace = {"asked": counters.asked, "dropped": counters.dropped} if with_pace else {}
    return {
        "journey": journey,
        "persona": persona,
        "started": counters.started,
        **{outcome: counters.outcomes[outcome] for outcome in OUTCOMES},
        "payments": counters.payments,
        "attempts": counters.attempts,
        "attempts_per_payment": _round(counters.attempts_per_payment, 3),
        "decline_rate_configured": _round(configured, 4),
        "decline_rate_observed": _round(counters.decline_rate, 4),
        "duplicate_charges": counters.duplicate_charges,
        "p50_ms": d.percentile(0.5),
        "p95_ms": d.percentile(0.95),
        "p99_ms": d.percentile(0.99),
        "max_ms": round(d.max) if d.count else None,
        # funnel: started → first attempt declined → retried → recovered | abandoned
        # (operators: reconciled | mismatch); interrupted: cut off before an outcome
        "funnel_started": counters.started,
        "funnel_declined": counters.declined_journeys,
        "funnel_retried": counters.retried_journeys,
        **_funnel_end_columns(journey, counters.outcomes),
        "funnel_interrupted": counters.outcomes["interrupted"],
        **pace,
    }


def journey_rows(
    book: JourneyBook, personas: dict, with_pace: bool = False
) -> list[dict[str, Any]]:
    """One row per journey × persona, then an ``All`` row per journey (``with_pace``: a
    ``--journey-rate`` run's, with the starts asked and dropped)."""
    rows = []
    for journey in book.journeys():
        for persona in book.personas(journey):
            configured = configured_decline_rate(book, personas, journey, persona)
            counters = book.get(journey, persona)
            rows.append(journey_row(journey, persona, counters, configured, with_pace))
        configured = configured_decline_rate(book, personas, journey, ALL)
        total = book.total(journey)
        rows.append(journey_row(journey, ALL, total, configured, with_pace))
    return rows


def mix_rows(environment, book: JourneyBook) -> list[dict[str, Any]]:
    """Configured share (weight / total weight) vs actual users and actual journeys started."""
    classes = [
        cls
        for cls in environment.user_classes
        if getattr(cls, "persona", None) is not None
    ]
    users = users_now(environment)
    peak = peaks(users)
    total_weight = sum(cls.weight for cls in classes) or 1
    total_users = sum(users.get(cls.__name__, 0) for cls in classes)
    started = {
        cls.persona.name: book.total(persona=cls.persona.name).started
        for cls in classes
    }
    total_started = sum(started.values())
    return [
        {
            "persona": cls.persona.name,
            "user_class": cls.__name__,
            "role": cls.persona.role,
            # 24, as the web UI and the HTML report show it (the CSV said 24.0)
            "weight": int(cls.weight) if float(cls.weight).is_integer() else cls.weight,
            "share_configured": _round(cls.weight / total_weight, 4),
            "users": users.get(cls.__name__, 0),
            "share_users": _round(users.get(cls.__name__, 0) / total_users, 4)
            if total_users
            else None,
            "peak_users": peak.get(cls.__name__, 0),
            "journeys_started": started[cls.persona.name],
            "share_journeys": _round(started[cls.persona.name] / total_started, 4)
            if total_started
            else None,
        }
        for cls in classes
    ]


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def fmt(value: Any) -> str:
    """A cell for humans: blanks for missing values, no trailing zeros."""
    if value is None:
        return ""
    if isinstance(value, float):
        return (
            f"{value:.4f}".rstrip("0").rstrip(".")
            if value != int(value)
            else str(int(value))
        )
    return str(value)


def pct(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value * 100:.{digits}f}%"


def display(column: str, value: Any) -> Any:
    """A cell for people: rates as percentages, blanks for missing values, counts stay numbers."""
    if column in RATE_COLUMNS:
        return pct(value)
    return value if isinstance(value, int) else fmt(value)
