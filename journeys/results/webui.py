"""Web UI tabs: Journeys, SLO, Funnel and Personas (the persona mix), updated live with Locust's stats.

The tabs are Locust's "extended tabs": ``extended_tabs``/``extended_tables`` in the main page's
template args declare them, and every ``/stats/requests`` answer (polled every 2 s) carries their
rows in ``extended_stats``, taken when Locust computes the answer (it caches it for 2 s). The UI
matches tab, table and rows by key and camel-cases row keys, so column keys here have no
underscores. The tabs appear once a test has started.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from typing import Any

import gevent
from flask import make_response, request
from locust import events
from locust.runners import (
    STATE_CLEANUP,
    STATE_RUNNING,
    STATE_SPAWNING,
    STATE_STOPPED,
    STATE_STOPPING,
    MasterRunner,
    WorkerRunner,
)
from locust.util.date import format_safe_timestamp
from werkzeug.datastructures import ImmutableMultiDict

from journeys.results import csv_report, html_report, ledger
from journeys.results.slo import (
    CHECK_TITLES,
    HTTP_SCOPE,
    NO_REQUESTS_METRIC,
    SLO_OPTIONS,
    SloConfigError,
    SloTargets,
    Verdict,
    verdict_rows,
)
from journeys.results.snapshot import Snapshot, take
from journeys.results.tables import (
    FUNNEL_STAGES,
    JOURNEY_TITLES,
    MIX_TITLES,
    PACE_AT,
    PACE_TITLES,
    display,
    funnel_stages_of_row,
    journey_titles,
    paced,
    pct,
)
from journeys.start_form import refusal, restore_field_names, start_form_sent

FUNNEL_TITLES = (
    ("journey", "Journey"),
    ("persona", "Persona"),
    ("started", "Started"),
    ("declined", "First attempt declined"),
    ("retried", "Retried"),
    ("recovered", "Recovered / reconciled"),
    ("abandoned", "Abandoned / mismatch"),
    ("interrupted", "Interrupted"),
)
# Short titles, the verdict second: Locust's seven tabs already take ~850 px (eight with
# workers), and MUI hides tabs that do not fit behind a scroll arrow (at 1280 px, the SLO tab
# was).
TABS = (
    ("journeys", "Journeys", JOURNEY_TITLES),
    ("slo", "SLO", CHECK_TITLES),
    ("journey-funnel", "Funnel", FUNNEL_TITLES),
    ("persona-mix", "Personas", MIX_TITLES),
)


#: Tabs a little narrower than MUI's (16 px padding each side, at least 90 px wide), added to
#: the main page: with workers Locust adds a Workers tab, and at 1280 px its Statistics tab went
#: behind the scroll arrow. The two classes outrank MUI's one-class rules.
TAB_STYLE = (
    "<style>.MuiTabs-root .MuiTab-root"
    "{padding-left:10px;padding-right:10px;min-width:64px}</style>"
)


#: Locust's header (logo, Host/Status/Users/RPS/Failures, Edit/Stop/Reset, the theme button)
#: is ~1090 px wide, ~1180 with Workers: in a narrower window its last buttons were cut off, out
#: of reach (Reset at 1000 px). Below 1280 px its figures and buttons wrap onto a second line
#: instead, off the window's edge; from 1280 px it is Locust's (one line fits there, Workers
#: included, by shrinking the Host, which wrapping would not do).
HEADER_STYLE = (
    "<style>@media (max-width:1279px){"
    "header .MuiToolbar-root>.MuiBox-root{flex-wrap:wrap;justify-content:flex-end;row-gap:4px}"
    "header .MuiToolbar-root{padding-top:6px;padding-bottom:6px}"
    "}</style>"
)

#: The Journeys table's CSS: wider than a 1000 px window, it scrolls sideways to its alarms
#: and rates, and its Journey and Persona columns stay in view (sticky) so each row still says
#: whose figures they are. CSS cannot name a tab: the table with a header cell per Journeys
#: column is that table (Locust's widest has 13). The cells are opaque (the Paper's colour) so
#: the columns scrolled under them do not show through; the Journey column's width is fixed,
#: as the Persona column is pinned that far from the left.
_JOURNEYS_TABLE = f"table:has(>thead th:nth-child({len(JOURNEY_TITLES)}))"
JOURNEYS_TABLE_STYLE = (
    "<style>"
    f"{_JOURNEYS_TABLE},{_JOURNEYS_TABLE}>*,{_JOURNEYS_TABLE} tr"
    "{background-color:inherit}"
    f"{_JOURNEYS_TABLE} :is(th,td):nth-child(-n+2)"
    "{position:sticky;z-index:1;background-color:inherit}"
    f"{_JOURNEYS_TABLE} :is(th,td):first-child"
    "{left:0;box-sizing:border-box;width:9rem;min-width:9rem}"
    f"{_JOURNEYS_TABLE} :is(th,td):nth-child(2)"
    "{left:9rem;box-shadow:inset -1px 0 0 rgba(128,128,128,.4)}"
    "</style>"
)

#: The Journeys table's Asked and Dropped columns (after Started) hidden while no row has a
#: figure in them: a test without a journey rate (its rows carry no ``asked``; Locust's empty
#: cell has no content), so its table is as wide as before. Shown, they take ~150 px, and at
#: 1280 px they pushed Dup. charges out of view: the cells' padding is then 8 px a side, not
#: MUI's 16, so the alarms (Failed, Mismatch, Dup. charges) stay in view.
_PACE_CELLS = ",".join(
    f":nth-child({PACE_AT + i})" for i in range(1, len(PACE_TITLES) + 1)
)
_PACED = f":has(>tbody td:nth-child({PACE_AT + 1}):not(:empty))"
PACE_STYLE = (
    "<style>"
    f"{_JOURNEYS_TABLE}:not({_PACED}) :is(th,td):is({_PACE_CELLS}){{display:none}}"
    f"{_JOURNEYS_TABLE}{_PACED} :is(th,td){{padding-left:8px;padding-right:8px}}"
    "</style>"
)

#: Beyond ``--stop-timeout``: how long a ``/stats/requests`` answer waits for a stop to end.
STOP_WAIT_S = 10

#: On a master: the workers that ran the test being stopped, and until when they count.
_stopped_workers: dict = {}


@events.test_stopping.add_listener
def _remember_the_workers(environment, **_kwargs) -> None:
    """A master forgets each worker as it reports stopped, and counts it again once it reports
    ready, ``--stop-timeout`` later; Locust's page, polling no more after the stop, kept the
    stop's count, 0, and its next test's Start disabled (reloading the page enabled it)."""
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        grace = 2 * (environment.stop_timeout or 0) + STOP_WAIT_S
        _stopped_workers.update(
            count=runner.worker_count, until=time.monotonic() + grace
        )


def workers_after_stop(count: int) -> int:
    """The worker count a page is told after a stop: the test's workers until they are back
    (a Start clicked before that is refused, saying they soon will be)."""
    if time.monotonic() > _stopped_workers.get("until", 0):
        return count
    return max(count, _stopped_workers["count"])


def download_name(environment, name: str) -> str:
    """A download's file name as Locust names its own (``Locust_<test start>_<locustfile>_<host>
    _requests.csv``), so a test's files sort together and the next test's keep their own names."""
    host = f"_{environment.host}" if environment.host else ""
    start = format_safe_timestamp(environment.stats.start_time)
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"{environment.locustfile}{host}_{name}")
    return f"Locust_{start}_{stem}.csv"


def ui_key(column: str) -> str:
    """The UI camel-cases keys of rows but matches columns as given: keep keys underscore-free."""
    return column.replace("_", "")


def _cells(titles, rows) -> list[dict[str, Any]]:
    return [{ui_key(c): display(c, row.get(c)) for c, _ in titles} for row in rows]


def _funnel_rows(rows) -> list[dict[str, Any]]:
    """One funnel per row; its ends (recovered or reconciled, abandoned or mismatch) share the
    tab's two columns before Interrupted."""

    def stage(count: int, started: int) -> str:
        return f"{count} ({pct(count / started, 0)})" if started else str(count)

    return [
        {
            "journey": r["journey"],
            "persona": r["persona"],
            "started": r["funnel_started"],
            **{
                key: stage(count, r["funnel_started"])
                for key, (_, count) in zip(
                    FUNNEL_STAGES[1:], funnel_stages_of_row(r)[1:]
                )
            },
        }
        for r in rows
    ]


def _in_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The UI sorts rows by ``name`` until a column is clicked: make that our order."""
    return [{"name": f"{i:04d}", **row} for i, row in enumerate(rows)]


def slo_rows(verdict: Verdict, live: bool = False) -> list[dict[str, Any]]:
    """The SLO tab: the verdict, then the failed checks, then the rest.

    The verdict's row names no failure: each has its row right below (the whole list, repeated
    there, made that row five lines high at 1400 px, and a page high on a phone). Until a test
    stops (``live``) without an HTTP request yet (its first seconds, or right after a reset),
    the verdict waits instead of failing: "no HTTP requests were recorded" is said of a run
    that ended so. So does an ``--slo-targets`` row whose request has not come yet (a report
    comes after a batch of payments): "no request named ..." is said at the end.
    """
    pending = [
        c for c in verdict.checks if c.metric == NO_REQUESTS_METRIC and not c.passed
    ]
    waiting = live and bool(pending)
    if waiting:
        checks = [c for c in verdict.checks if c not in pending]
        verdict = Verdict(verdict.targets, checks)
    rows = verdict_rows(verdict, failed_first=True)
    rows[0]["message"] = verdict.result()
    if waiting and verdict.passed:
        first = (
            "the first HTTP request of the test (or of its statistics, after a reset)"
            if any(c.scope == HTTP_SCOPE for c in pending)
            else "the first request of each --slo-targets row: "
            + ", ".join(c.scope for c in pending)
        )
        rows[0].update(
            result="WAIT", actual="waiting", message=f"SLO verdict: waiting for {first}"
        )
    return rows


def extended_stats(snapshot: Snapshot, live: bool = False) -> list[dict[str, Any]]:
    return [
        {
            "key": "journeys",
            "data": _in_order(
                _cells(journey_titles(paced(snapshot.rows)), snapshot.rows)
            ),
        },
        {"key": "journey-funnel", "data": _in_order(_funnel_rows(snapshot.rows))},
        {"key": "persona-mix", "data": _in_order(_cells(MIX_TITLES, snapshot.mix))},
        {
            "key": "slo",
            "data": _in_order(_cells(CHECK_TITLES, slo_rows(snapshot.verdict, live))),
        },
    ]


def _take(environment) -> Snapshot:
    """The run as the tabs, downloads and HTML report show it: with the checks the end of the
    run adds (a test stopped before its run time fails ``run_time``), once they apply."""
    # imported here: cut_short imports this module (its hooks come after ours)
    from journeys import same_personas
    from journeys.results import cut_short, reconcile_run

    def extra():
        return [
            check
            for check in (
                cut_short.check_if_stopped(),
                same_personas.check(),
                reconcile_run.check_if_stopped(environment),
            )
            if check is not None
        ]

    return take(environment, extra)


def _profile_csv() -> str:
    """``PREFIX_profile.csv`` of the current or last profile test, as it stands."""
    # imported here: journeys.profiles imports the results
    from journeys.profiles import report
    from journeys.profiles.phases import book

    return csv_report.as_text(report.write, report.rows(book))


#: Download Data's CSV files of ours: (path, file name, render of a ``Snapshot``).
DOWNLOADS = (
    (
        "/journeys/csv",
        "journeys",
        lambda s: csv_report.as_text(csv_report.write_journeys, s.rows),
    ),
    (
        "/journeys/persona-mix/csv",
        "persona_mix",
        lambda s: csv_report.as_text(csv_report.write_mix, s.mix),
    ),
    (
        "/journeys/slo/csv",
        "slo",
        lambda s: csv_report.as_text(csv_report.write_slo, s.verdict),
    ),
    # the payments the service confirmed, to hold against its own report (master: merged)
    ("/journeys/ledger/csv", "ledger", lambda _s: csv_report.as_text(ledger.write)),
    # --profile spike, soak, step: the phases so far (empty for a steady test)
    ("/journeys/profile/csv", "profile", lambda _s: _profile_csv()),
)

#: What waits for a stop to end: the page's poll, and Download Data's report and CSV files.
FINAL_AFTER_STOP = (
    "/stats/requests",
    "/stats/report",
    "/stats/requests/csv",
    "/stats/requests_full_history/csv",
    "/stats/failures/csv",
    "/exceptions/csv",
    *(path for path, _, _ in DOWNLOADS),
)


@events.init.add_listener
def check_slo_fields(environment, web_ui=None, **_kwargs) -> None:
    """The start form has a field per SLO option (its "Custom parameters"): a bad value is
    refused with the message a bad flag gets, instead of a test judged against it. The targets
    are the test's from its start: an edit of the running test leaves them."""
    if web_ui is None or isinstance(environment.runner, WorkerRunner):
        return

    @web_ui.app.before_request
    def _refuse_bad_targets():
        if not start_form_sent(web_ui) or environment.parsed_options is None:
            return None
        restore_field_names(SLO_OPTIONS)
        if environment.runner.state in (STATE_SPAWNING, STATE_RUNNING):
            # an edit of the running test keeps the targets it started with: after a page
            # reload the edit form holds the command line's, and set the test's back unseen
            keep = [
                (k, v)
                for k, v in request.form.items(multi=True)
                if k not in SLO_OPTIONS
            ]
            request.form = ImmutableMultiDict(keep)
            return None
        options = argparse.Namespace(**vars(environment.parsed_options))
        for attr in SLO_OPTIONS:
            if attr in request.form:
                setattr(options, attr, request.form[attr])
        try:
            SloTargets.from_options(options, name_sources=False)
        except SloConfigError as exc:
            return refusal(environment, str(exc))
        return None


@events.init.add_listener
def add_tabs(environment, web_ui=None, **_kwargs) -> None:
    web_ui = web_ui or getattr(environment, "web_ui", None)
    if web_ui is None or isinstance(environment.runner, WorkerRunner):
        return
    base = (
        environment.parsed_options.web_base_path if environment.parsed_options else ""
    ) or ""
    base = base.rstrip("/")
    # Asked and Dropped always: each test has a journey rate of its own (the start form's
    # field) and the page reads its columns once; PACE_STYLE hides them for a test without
    tables = [
        (key, journey_titles(with_pace=True) if key == "journeys" else table)
        for key, _, table in TABS
    ]
    web_ui.template_args.update(
        extended_tabs=[{"title": title, "key": key} for key, title, _ in TABS],
        extended_tables=[
            {
                "key": key,
                "structure": [{"key": ui_key(k), "title": t} for k, t in table],
            }
            for key, table in tables
        ],
        extended_csv_files=[
            {"href": "./journeys/csv", "title": "Download journeys CSV"},
            {"href": "./journeys/persona-mix/csv", "title": "Download persona mix CSV"},
            {"href": "./journeys/slo/csv", "title": "Download SLO verdict CSV"},
            {"href": "./journeys/ledger/csv", "title": "Download ledger CSV"},
            {"href": "./journeys/profile/csv", "title": "Download load profile CSV"},
        ],
    )

    @web_ui.app.before_request
    def answer_once_stopped():
        """Locust's page polls ``/stats/requests`` only while the answer says "spawning" or
        "running": one that says "cleanup" or "stopping" (users finishing their journeys
        within ``--stop-timeout``, a master waiting for its workers) would be the page's last,
        its tables and verdict short of the journeys still finishing. Answer once stopped; the
        report and CSV files of Download Data too (clicked right after Stop), so they show what
        the tabs show."""
        if environment.runner is None or request.path not in {
            f"{base}{path}" for path in FINAL_AFTER_STOP
        }:
            return
        deadline = time.monotonic() + (environment.stop_timeout or 0) + STOP_WAIT_S
        while (
            environment.runner.state in (STATE_CLEANUP, STATE_STOPPING)
            and time.monotonic() < deadline
        ):
            gevent.sleep(0.1)

    @web_ui.app.after_request
    def add_journey_results(response):
        if response.status_code != 200:
            return response
        if request.path == f"{base}/stats/requests" and response.is_json:
            # Locust memoizes this answer for 2 s and hands out the same response object:
            # add the journey rows once, when it is new, so both show the same moment
            payload = response.get_json()
            if "extended_stats" not in payload:
                # before the test stops (its cached answer may be from just before its start)
                live = environment.runner.state not in (STATE_STOPPING, STATE_STOPPED)
                payload["extended_stats"] = extended_stats(_take(environment), live)
                if "worker_count" in payload and not live:
                    payload["worker_count"] = workers_after_stop(
                        payload["worker_count"]
                    )
                response.set_data(json.dumps(payload))
        elif request.path == f"{base}/" and response.mimetype == "text/html":
            html = response.get_data(as_text=True)
            style = TAB_STYLE + HEADER_STYLE + JOURNEYS_TABLE_STYLE + PACE_STYLE
            response.set_data(html.replace("</head>", f"{style}</head>", 1))
        elif request.path == f"{base}/stats/report":  # the HTML report to download
            html = response.get_data(as_text=True)
            response.set_data(html_report.insert(html, _take(environment)))
        return response

    def csv_download(name: str, render):
        @web_ui.auth_required_if_enabled
        def view():
            response = make_response(render(_take(environment)))
            response.headers["Content-Type"] = "text/csv"
            response.headers["Content-Disposition"] = (
                f"attachment;filename={download_name(environment, name)}"
            )
            return response

        view.__name__ = f"download_{name}"
        return view

    for path, name, render in DOWNLOADS:
        web_ui.app.add_url_rule(f"{base}{path}", view_func=csv_download(name, render))
