"""Load profiles (``--profile``): real Locust with the real locustfile against the reference service.

Each run reads Locust's own ``PREFIX_stats_history.csv`` ("User Count" once a second) for the user
curve, and ``PREFIX_profile.csv`` for the phase report. Short knobs keep the file under a minute.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import (
    ROOT,
    LocustRun,
    end_process,
    get_text,
    locust_command,
    locust_env,
    post_form,
    start_web_ui,
    stop_process,
    write_personas,
)
from tests.conftest import run_locust as _run_locust

#: Busy customers (little think time), so even a 1-user, 2-second phase has requests in it.
BUSY = "busy_shopper,customer,1,visa|mastercard,USD|EUR,5,60,0.05,2,,en_US,0.05,0.2"


def run_locust(tmp_path, host, *args, **kw) -> LocustRun:
    return _run_locust(
        tmp_path, host, *args, personas=write_personas(tmp_path, BUSY), **kw
    )


PHASE_COLUMNS = [
    "phase",
    "start_s",
    "end_s",
    "target_users",
    "requests",
    "failures",
    "error_rate",
    "p50_ms",
    "p95_ms",
]


def user_curve(run: LocustRun, run_time_s: int) -> list[int]:
    """User counts once a second over the run time, without the zeros before the start.

    When the run time is up, users finish their current journey (``--stop-timeout``) and leave one
    by one; the rows after the run time are that stop, not the profile.
    """
    counts = [int(r["User Count"]) for r in run.csv_rows("stats_history")]
    while counts and counts[0] == 0:
        counts.pop(0)
    while counts and counts[-1] == 0:
        counts.pop()
    return counts[:run_time_s]


def plateaus(counts: list[int]) -> list[int]:
    """The curve with repeats collapsed: [2, 2, 6, 6, 2] -> [2, 6, 2]."""
    return [c for i, c in enumerate(counts) if i == 0 or counts[i - 1] != c]


def html_user_points(run: LocustRun) -> list[tuple[datetime, int]]:
    """The HTML report's *Number of Users* chart: its points (time, users) in time order."""
    html = run.html_path.read_text()
    start = html.index("window.templateArgs = ") + len("window.templateArgs = ")
    args, _ = json.JSONDecoder().raw_decode(html[start:])
    return [
        (datetime.fromisoformat(at), users)
        for at, users in (point["user_count"] for point in args["history"])
    ]


def html_user_curve(run: LocustRun) -> list[int]:
    return [users for _, users in html_user_points(run)]


def phase_rows(run: LocustRun) -> list[dict]:
    path = Path(f"{run.csv_prefix}_profile.csv")
    assert path.exists(), run.output[-3000:]
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == PHASE_COLUMNS
        return list(reader)


def http_requests(run: LocustRun) -> int:
    """HTTP requests in Locust's stats (journey timings are entries of type "journey"); none
    when there is no ``_stats.csv`` (a run stopped before any traffic leaves none)."""
    if not Path(f"{run.csv_prefix}_stats.csv").exists():
        return 0
    return sum(
        int(r["Request Count"])
        for (kind, name), r in run.stats().items()
        if name != "Aggregated" and kind != "journey"
    )


def check_phases(run: LocustRun, expected: list[tuple[str, int]]) -> list[dict]:
    """Phases and their target users as expected, each with traffic and sane figures."""
    rows = phase_rows(run)
    assert [(r["phase"], int(r["target_users"])) for r in rows] == expected, rows
    for r in rows:
        assert float(r["start_s"]) < float(r["end_s"]), r
        assert int(r["requests"]) > 0, r
        assert 0 <= int(r["failures"]) <= int(r["requests"]), r
        assert 0.0 <= float(r["error_rate"]) <= 1.0, r
        assert 0 <= float(r["p50_ms"]) <= float(r["p95_ms"]), r
    assert [float(r["start_s"]) for r in rows[1:]] == [
        float(r["end_s"]) for r in rows[:-1]
    ]
    # every HTTP request lands in exactly one phase, and journey timings in none
    assert sum(int(r["requests"]) for r in rows) == http_requests(run)
    return rows


def assert_ran_cleanly(run: LocustRun) -> None:
    assert "Traceback" not in run.output, run.output[-3000:]
    assert "Uncaught exception" not in run.output, run.output[-3000:]


def test_steady_is_plain_locust(tmp_path, service):
    run = run_locust(tmp_path, service.url, users=3, run_time="3s")
    assert_ran_cleanly(run)
    assert set(user_curve(run, 3)) == {3}
    assert "Shape test" not in run.output  # no shape class drove the run
    assert not Path(f"{run.csv_prefix}_profile.csv").exists()


def test_spike_jumps_to_the_peak_and_recovers(tmp_path, service):
    run = run_locust(
        tmp_path,
        service.url,
        "--profile",
        "spike",
        "--spike-multiplier",
        "3",
        "--spike-at",
        "2s",
        "--spike-duration",
        "3s",
        users=2,
        run_time="7s",
    )
    assert_ran_cleanly(run)
    curve = user_curve(run, 7)
    assert max(curve) == 6, curve
    first, last = curve.index(6), len(curve) - 1 - curve[::-1].index(6)
    assert set(curve[:first]) == {2} and curve[-1] == 2, curve
    assert len(curve[first : last + 1]) >= 2, curve  # held, not a blip
    check_phases(run, [("baseline", 2), ("peak", 6), ("recovery", 2)])
    # the HTML report's user chart draws the same shape (Locust samples it every 5 s: it
    # began in the peak and never showed the baseline), ending at 0 once the users stopped
    chart = html_user_curve(run)
    assert plateaus(chart)[:4] == [0, 2, 6, 2], chart
    assert "Load profile spike: 2 → 6 → 2 users" in run.output
    # each phase is logged as it starts (the console, the web UI's Logs tab)
    for line in (
        "baseline: 2 users, 0-2 s",
        "peak: 6 users, 2-5 s",
        "recovery: 2 users, 5-7 s",
    ):
        assert f"Load profile spike, phase {line}" in run.output, run.output[-3000:]
    assert "peak vs baseline: p95" in run.output
    assert "recovery vs baseline: p95" in run.output
    assert "stopped at" not in run.output  # the end of its run time is no early stop
    # the verdict comes last, after the phase table: a CI log's tail shows it at a glance
    tail = run.output.rstrip().splitlines()[-3:]
    assert run.output.index("HTTP requests per phase") < run.output.index(
        "SLO verdict: PASS"
    ), run.output[-3000:]
    assert any(line.startswith("SLO verdict: PASS") for line in tail), tail
    # the SLO verdict judges the peak and the recovery too (a healthy service: they pass)
    judged = {(r["scope"], r["metric"]): r["passed"] for r in run.csv_rows("slo")}
    assert judged[("spike peak", "error_rate")] == "true", judged
    assert judged[("spike recovery", "error_rate")] == "true", judged
    # the persona mix: the users at the end (the base) and the most at once (the peak)
    mix = run.csv_rows("persona_mix")
    assert sum(int(r["users"]) for r in mix) == 2, mix
    assert sum(int(r["peak_users"]) for r in mix) == 6, mix


def test_soak_fails_its_verdict_on_a_bad_last_window(tmp_path, start_service):
    """The verdict judged the whole run only: a soak whose last window broke the targets (a
    live slowdown and 4.5 % errors in its last 3 s) passed with exit 0, as the other 12 s
    kept the run's error rate at 0.8 %. The last window is judged on its own now, and its
    check counts the requests of the phase table's last row."""
    service = start_service("--error-rate", "0.3", "--error-phase", "before")
    run = run_locust(
        tmp_path, service.url, "--profile", "soak", "--soak-window", "2s",
        users=4, run_time="6s",
    )  # fmt: skip
    assert run.returncode == 1, run.output[-3000:]
    last = phase_rows(run)[-1]
    check = next(
        r
        for r in run.csv_rows("slo")
        if (r["scope"], r["metric"]) == ("soak last window", "error_rate")
    )
    assert check["passed"] == "false", check
    assert f"of {last['requests']} requests" in check["message"], (check, last)
    # where to look: the window of the run it judged (the charts', the phase table's)
    window = f"{float(last['start_s']):g}-{float(last['end_s']):g}"
    assert f"(soak last window, {window} s, " in check["message"], (check, last)
    assert f"(soak last window, {window} s, " in run.output
    # the HTML report has the phase table and the drift, as the console does
    html = run.html_path.read_text()
    section = html[html.index('<div id="load-profile">') :]
    assert "Load profile soak: 4 users over 6s (3 phases)" in section
    cells = [f"<td>{v}</td>" for v in (window, last["requests"], last["failures"])]
    row = section[section.index('<td class="l">last</td>') :].split("</tr>")[0]
    assert all(c in row for c in cells), (row, last)
    assert "drift, last vs first window: p95" in section


def test_the_web_ui_report_shows_the_phases_of_the_running_test(tmp_path, service):
    """The web UI's HTML report mid-spike: the phases so far, and the recovery to come is
    not one that "never ran" (the wording of a run stopped early)."""
    proc, ui = start_web_ui(
        tmp_path, service.url, personas=write_personas(tmp_path, BUSY)
    )
    try:
        started = post_form(
            ui + "/swarm", user_count=2, spawn_rate=50, host=service.url,
            profile="spike", run_time="20s",
        )  # fmt: skip
        assert started and started["success"], started
        service.wait_for_payments(timeout=15)
        html = get_text(ui + "/stats/report")
    finally:
        post_form(ui + "/stop")
        end_process(proc)
    part = html[html.index('<div id="load-profile">') :]
    assert '<td class="l">baseline</td>' in part, part[:3000]
    assert "the recovery has not started yet" in part, part[:3000]
    assert "never ran" not in part, part[:3000]


def test_step_climbs_in_stairs(tmp_path, service):
    run = run_locust(
        tmp_path,
        service.url,
        "--profile",
        "step",
        "--step-users",
        "1",
        "--step-duration",
        "2",
        users=3,
        run_time="6s",
    )
    assert_ran_cleanly(run)
    assert plateaus(user_curve(run, 6)) == [1, 2, 3]
    check_phases(run, [("step 1", 1), ("step 2", 2), ("step 3", 3)])
    assert re.search(r"knee: (not reached up to 3 users|step [23] )", run.output), (
        run.output[-2000:]
    )


def test_soak_holds_and_reports_drift_on_a_distributed_run(tmp_path, service):
    """Master + 2 workers: the workers' phase counters reach the master's report."""
    run = run_locust(
        tmp_path,
        service.url,
        "--profile",
        "soak",
        "--soak-window",
        "2s",
        users=4,
        run_time="6s",
        workers=2,
        # Locust's master fires spawning_complete once its workers report their users, or
        # after this wait (1 s unless set): 0 is a busy machine's start, before any report
        env={"LOCUST_WAIT_FOR_WORKERS_REPORT_AFTER_RAMP_UP": "0"},
    )
    assert_ran_cleanly(run)
    for out in run.worker_outputs:
        assert "Traceback" not in out, out[-3000:]
    # the HTML report's user chart: from 0 at the start to the 4 users once the workers say
    # so (its point as the ramp ended had said 0, so the chart drew a ramp over 5 s)
    points = html_user_points(run)
    assert points[0][1] == 0, points
    reached = next(at for at, users in points if users == 4)
    assert (reached - points[0][0]).total_seconds() <= 2, points
    chart = html_user_curve(run)
    assert 0 not in chart[1 : chart.index(4)], points
    curve = user_curve(
        run, 6
    )  # the master's count follows the workers' reports: may lag a beat
    assert max(curve) == 4 and set(curve[curve.index(4) :]) == {4}, curve
    rows = check_phases(run, [("first", 4), ("middle", 4), ("last", 4)])
    assert [(r["start_s"], r["end_s"]) for r in rows] == [
        ("0.0", "2.0"),
        ("2.0", "4.0"),
        ("4.0", "6.0"),
    ]
    assert "drift, last vs first window: p95" in run.output
    assert "stopped at" not in run.output and "never ran" not in run.output
    # each phase logged once as it starts (a master's start restarts the shape's clock)
    for phase in ("first", "middle", "last"):
        assert run.output.count(f"Load profile soak, phase {phase}:") == 1, phase


def test_unknown_profile_stops_before_any_traffic(tmp_path, service):
    run = run_locust(tmp_path, service.url, env={"LOCUST_PROFILE": "spiky"})
    assert run.returncode != 0
    assert "unknown load profile 'spiky'" in run.output
    assert "Choose one of steady, spike, soak, step" in run.output
    assert "All users spawned" not in run.output
    assert not Path(f"{run.csv_prefix}_stats.csv").exists()


def test_profiles_need_a_run_time(tmp_path, service):
    # no -t at all (-t 0 is refused on its own, before the profile is looked at)
    run = run_locust(tmp_path, service.url, "--profile", "soak", run_time=None)
    assert run.returncode != 0
    assert "The soak profile needs a run time" in run.output
    assert "All users spawned" not in run.output
    assert http_requests(run) == 0


@pytest.mark.parametrize("profile", ["spike", "step"])
def test_reset_stats_is_refused_where_the_user_count_changes(
    tmp_path, service, profile
):
    """Locust resets at every spawn completion: the verdict would judge the last phase only."""
    run = run_locust(
        tmp_path, service.url, "--profile", profile, "--reset-stats", run_time="6s"
    )
    assert run.returncode == 2, run.output[-2000:]
    assert (
        f"--reset-stats resets Locust's statistics each time a {profile} phase"
        in run.output
    )
    assert http_requests(run) == 0


def test_the_knee_is_judged_against_the_first_step_with_enough_requests():
    from journeys.profiles.report import _step

    def step(n, requests, p95):
        return {"phase": f"step {n}", "target_users": 5 * n, "requests": requests,
                "p95_ms": p95, "error_rate": 0.0 if requests else None}  # fmt: skip

    # step 1's 5 requests (p95 1 ms: one fast outlier) would make step 2 look like the knee
    table = [step(1, 5, 1), step(2, 40, 10), step(3, 80, 15)]
    assert _step({}, table) == [
        "knee: not reached up to 15 users (p95 under 2× or +10 ms of step 2, error rate under 1.0%)",
        "p95 not compared for step 1: fewer than 20 requests (the baseline is step 2)",
    ]
    assert _step({}, table + [step(4, 90, 25)])[0].startswith("knee: step 4 (20 users)")
    # a fast service's 2 → 5 ms more than doubles, but is not a knee anyone would act on
    fast = [step(1, 40, 2), step(2, 80, 5), step(3, 90, 11)]
    assert _step({}, fast)[0].startswith("knee: not reached up to 15 users")
    assert (
        _step({}, fast + [step(4, 90, 12)])[0]
        == "knee: step 4 (20 users): p95 2 → 12 ms"
    )


def test_windows_with_too_few_requests_are_not_compared():
    """A soak's 3-request first window once gave "×9.5" from one outlier: below 20 requests a
    window's p95 is not compared."""
    from journeys.profiles.report import _versus

    def window(requests, p95):
        return {"requests": requests, "p95_ms": p95, "error_rate": 0.0}

    assert _versus("drift", window(3, 10), window(400, 95)) == (
        "drift: not enough requests to compare (3 and 400; needs 20 in each)"
    )
    assert _versus("drift", window(20, 10), window(400, 95)).startswith(
        "drift: p95 10 → 95 ms (×9.50)"
    )


def test_a_collapsing_step_is_the_knee_however_few_requests_it_had():
    """A service failing under load answers few requests (each waits out the timeout): its error
    rate still marks the knee, though its p95 is not compared."""
    from journeys.profiles.report import _step

    def step(n, requests, p95, errors):
        return {"phase": f"step {n}", "target_users": 5 * n, "requests": requests,
                "p95_ms": p95, "error_rate": errors}  # fmt: skip

    table = [step(1, 400, 10, 0.0), step(2, 800, 12, 0.0), step(3, 12, 10000, 1.0)]
    assert _step({}, table) == [
        "knee: step 3 (15 users): error rate 100.0%",
        "p95 not compared for step 3: fewer than 20 requests (the baseline is step 1)",
    ]


@pytest.mark.parametrize(
    ("users", "run_time", "step_duration", "bounds"),
    [
        (
            4,
            15,
            None,
            [(0, 4), (4, 8), (8, 11), (11, 15)],
        ),  # split evenly, whole seconds
        (5, 10, None, [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]),
        (
            3,
            20,
            "5s",
            [(0, 5), (5, 10), (10, 20)],
        ),  # given stairs: the top holds to the end
    ],
)
def test_step_phases_split_the_run_time_evenly(users, run_time, step_duration, bounds):
    """docs/profiles.md: without --step-duration, the run time is split evenly over the steps
    (it used to give the remainder to the top step: 3, 3, 3 and 6 s of a 15 s run)."""
    from argparse import Namespace

    from journeys.profiles.schedule import build_schedule

    options = Namespace(
        profile="step", num_users=users, spawn_rate=10, run_time=run_time,
        step_users=1, step_duration=step_duration, reset_stats=False,
    )  # fmt: skip
    schedule = build_schedule(options)
    assert [(p.start_s, p.end_s) for p in schedule.phases] == bounds
    assert [p.users for p in schedule.phases] == list(range(1, users + 1))


@pytest.mark.parametrize(
    ("users", "rate", "step_users", "needle"),
    [
        (4, 10, 10, "--step-users 10 reaches all 4 users (-u) in one step"),
        (
            6,
            0.5,
            3,
            "Each step adds 3 users at 0.5/s (--spawn-rate), which takes 6s, but a step lasts 6s",
        ),
    ],
    ids=["one-step", "ramping-all-the-time"],
)
def test_step_shapes_that_cannot_find_a_knee_are_refused(
    tmp_path, service, users, rate, step_users, needle
):
    """One step has nothing to compare; steps whose users are still arriving when the next
    begins never hold their load (the stats history showed users ramping the whole run)."""
    run = run_locust(
        tmp_path, service.url, "--profile", "step", "--step-users", str(step_users),
        users=users, spawn_rate=rate, run_time="12s",
    )  # fmt: skip
    assert run.returncode == 2, run.output[-2000:]
    assert needle in run.output and "No traffic was sent." in run.output
    assert http_requests(run) == 0


def test_a_spike_whose_users_cannot_arrive_in_time_is_refused(tmp_path, service):
    """--spike-spawn-rate 1 for a jump of 8 users in a 3 s peak: the users peaked at 5 of 10
    and the report showed a peak of 10 users, compared with the baseline as if it had held.
    A previous run's reports at the same places go, as for the other setup errors (docs/ci.md):
    its ``PASS`` in ``run_slo.csv`` stayed beside this run's exit 2."""
    for name in ("run_slo.csv", "run_profile.csv", "report.html"):
        (tmp_path / name).write_text("from the previous run: verdict PASS\n")
    run = run_locust(
        tmp_path, service.url, "--profile", "spike", "--spike-multiplier", "5",
        "--spike-spawn-rate", "1", "--spike-at", "3s", "--spike-duration", "3s",
        users=2, run_time="9s",
    )  # fmt: skip
    assert run.returncode == 2, run.output[-2000:]
    assert (
        "The jump from 2 to 10 users at 1/s (--spike-spawn-rate) takes 8s, but the peak "
        "lasts 3s" in run.output
    ), run.output[-2000:]
    assert "No traffic was sent." in run.output and "Traceback" not in run.output
    assert not list(tmp_path.glob("run_*.csv")), list(tmp_path.iterdir())
    assert not (tmp_path / "report.html").exists()
    assert "the previous run's reports" in run.output, run.output[-2000:]


def test_a_spike_whose_recovery_never_gets_back_to_the_baseline_is_refused():
    from argparse import Namespace

    from journeys.profiles.schedule import ProfileConfigError, build_schedule

    options = Namespace(
        profile="spike", num_users=2, spawn_rate=10, run_time=10, reset_stats=False,
        spike_multiplier=5, spike_spawn_rate=2, spike_at="2s", spike_duration="6s",
    )  # fmt: skip
    with pytest.raises(ProfileConfigError) as refused:
        build_schedule(options)
    assert (
        "The way back from 10 to 2 users at 2/s (--spike-spawn-rate) takes 4s, but the recovery lasts 2s"
        in str(refused.value)
    )
    options.run_time = 14  # 6 s of recovery: back at the baseline after 4
    assert [p.name for p in build_schedule(options).phases] == [
        "baseline",
        "peak",
        "recovery",
    ]


def test_a_knee_not_compared_says_so():
    """Master + worker, -u 4 --step-users 2: step 1 had too few requests, so step 2 is both the
    baseline and the last step; "not reached (p95 under 2× step 2)" claimed a comparison."""
    from journeys.profiles.report import _step

    def step(n, requests, p95):
        return {"phase": f"step {n}", "target_users": 2 * n, "requests": requests,
                "p95_ms": p95, "error_rate": 0.0}  # fmt: skip

    assert _step({}, [step(1, 8, 3), step(2, 60, 4)])[0] == (
        "knee: not reached up to 4 users (p95 not compared: no step after step 2 had 20 "
        "requests, error rate under 1.0%)"
    )


@pytest.mark.parametrize(
    ("form", "needle"),
    [
        ({"profile": "bogus", "run_time": "10s"}, "unknown load profile 'bogus'"),
        ({"profile": "bogus"}, "unknown load profile 'bogus'"),
        ({"profile": "spike"}, "The spike profile needs a run time: fill in"),
        (
            {"profile": "spike", "run_time": "60s", "spike_multiplier": "100000"},
            "--spike-multiplier 100000 makes a peak of 200,000 users (-u 2 × 100000)",
        ),
        (
            {"profile": "spike", "run_time": "60s", "spike_multiplier": "0.5"},
            "spike_multiplier: must be > 1 (the peak is users × this), got 0.5",
        ),
    ],
)
def test_the_start_form_names_what_is_wrong_with_its_profile(form, needle):
    """A mistyped Profile field read 'The None profile needs a run time' even with a run time.
    The form's spike multiplier (Custom parameters) is checked as the command line's is: 100000
    started a test that logged the refusal only once it had begun."""
    import argparse
    from types import SimpleNamespace

    from flask import Blueprint, Flask

    from journeys.profiles import hooks

    locust_ui = Blueprint("locust", __name__)
    locust_ui.add_url_rule("/swarm", "swarm", lambda: "", methods=["POST"])
    app = Flask(__name__)
    app.register_blueprint(locust_ui)
    options = argparse.Namespace(
        profile=None, run_time=None, reset_stats=False, spike_multiplier=5.0,
        spike_at=None, spike_duration=None, spike_spawn_rate=None,
    )  # fmt: skip
    environment = SimpleNamespace(runner=None, parsed_options=options, host="http://h")
    data = {"user_count": "2", "spawn_rate": "2", **form}
    with app.test_request_context("/swarm", method="POST", data=data):
        answer = hooks._check_start_form(environment)
    assert answer is not None and answer.get_json()["success"] is False
    assert needle in answer.get_json()["message"], answer.get_json()


def _sockets(pid: int) -> int:
    """Open sockets of process ``pid`` (its fds that are sockets)."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:  # closed meanwhile
            pass
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_users_stopped_by_a_profile_close_their_connections(tmp_path, service):
    """A spike's users stopped at its end kept their connections open (CLOSE-WAIT once the
    service timed them out) until Python's next full garbage collection, which a long run may
    not see for a long time: 50 → 10 users left 33 sockets open, and each drop of the user
    count (a spike, an edit in the web UI) added more. A stopped user closes its connections."""
    command = locust_command(
        tmp_path,
        "--profile", "spike", "--spike-multiplier", "6",
        "--spike-at", "2s", "--spike-duration", "3s",
        users=2, run_time="10s", personas=write_personas(tmp_path, BUSY),
    )  # fmt: skip
    log = tmp_path / "locust.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=locust_env(service.url), stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 30
        while "phase recovery" not in log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.1)
        time.sleep(1.5)  # the stopped users are gone
        open_sockets = _sockets(proc.pid)
    finally:
        stop_process(proc)
    assert "phase peak: 12 users" in log.read_text()
    # the 2 users of the recovery, not the 12 of the peak
    assert open_sockets <= 3, f"{open_sockets} sockets open with 2 users left"


@pytest.mark.parametrize(
    ("profile", "needle"),
    [
        (
            "soak",
            (
                "The run time (3s) ends before the ramp-up does (10 users at 2/s take 5s): "
                "the load would never hold. Lengthen --run-time or raise --spawn-rate."
            ),
        ),
        (
            "spike",
            (
                "Raise --spawn-rate, lengthen --run-time (the spike starts at 0.33 of it) or "
                "move --spike-at later."
            ),
        ),
    ],
)
def test_a_run_time_shorter_than_the_ramp_up_says_to_lengthen_it(profile, needle):
    """``-t 3s`` with the default 10 users at 2/s: a soak said the windows "do not fit in the
    -2s the load holds", and a spike told to raise the spawn rate or move --spike-at, never
    the run time the user had just made too short."""
    from argparse import Namespace

    from journeys.profiles.schedule import ProfileConfigError, build_schedule

    options = Namespace(
        profile=profile, num_users=10, spawn_rate=2, run_time=3, reset_stats=False,
        soak_window=None, spike_multiplier=5, spike_spawn_rate=None, spike_at=None,
        spike_duration=None,
    )  # fmt: skip
    with pytest.raises(ProfileConfigError) as refused:
        build_schedule(options)
    assert needle in str(refused.value), str(refused.value)


def test_a_days_soak_keeps_the_phase_table_columns_apart():
    """A 24 h soak at ~1200 requests/s counts 20 million requests and a million failures in a
    window: the fixed-width columns ran them together (``206400001032000``, reqs then fails)."""
    from argparse import Namespace

    from journeys.profiles import report
    from journeys.profiles.phases import PhaseBook
    from journeys.profiles.schedule import build_schedule

    options = Namespace(
        profile="soak", num_users=800, spawn_rate=2, run_time=86400, soak_window=None
    )
    book = PhaseBook()
    book.start(build_schedule(options))
    for index, phase in enumerate(book.schedule.phases):
        book.enter(index)
        for ms in (5, 12, 1234):
            book.record(ms, False)
        stats = book.phases[index]
        stats.requests = int((phase.end_s - phase.start_s) * 1200)
        stats.failures = stats.requests // 20
    book.stopped_at_s = 86400
    table = report.rows(book)
    lines = report.lines(book, table)
    header, *rows = lines[1 : 1 + len(table)]
    for line, row in zip(rows, table):
        cells = line.split()
        assert cells[3:5] == [str(row["requests"]), str(row["failures"])], line
        assert len(line) == len(header), (header, line)
