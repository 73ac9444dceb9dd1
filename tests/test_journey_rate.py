"""``--journey-rate``: R journeys per second whatever the latency, counted in the service's database."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import re
import time

import pytest

from journeys.journey_rate import Pace, journeys_per_second
from tests.conftest import (
    OwnServices,
    RunPlan,
    case_result,
    end_process,
    free_port,
    get_text,
    locust_command,
    locust_process,
    post_form,
    processes_args,
    run_tests,
    wait_http,
    write_personas,
)

#: Think time of 30-60 s: without the pace a user would not start a second journey in a run.
SLOW_THINKER = "shopper,customer,1,visa,USD,5,80,0,0,,en_US,30,60"
#: Half a second of think time: 4 users without the pace start ~8 journeys/s.
HALF_SECOND_THINKER = "shopper,customer,1,visa,USD,5,80,0,0,,en_US,0.5,0.5"
#: An operator whose batch of 200 payments (at 300 ms each) outlasts the run: one journey each.
LONG_BATCH_OPERATOR = "operator,operator,1,visa,USD,5,80,0,0,200,en_US,1,1"
RATE = 10

RUNS = {
    # 4 users at 10 journeys/s: each starts one every 0.4 s
    "test_the_rate_replaces_the_think_time": ((), 4, "4s"),
    # journeys of ~0.4 s, 2 users at 10/s: each should start one every 0.2 s
    "test_a_slow_service_with_too_few_users_drops_starts_and_fails": (
        ("--latency-ms", "400"), 2, "3s",
    ),
    # 2 users at 0.8/s: a start every 2.5 s each, the second ones mostly after the 3 s
    "test_a_user_waiting_for_its_pace_at_the_end_starts_no_journey": ((), 2, "3s", "0.8"),
    # 2 operators at 10/s whose one journey (200 payments of 300 ms) outlasts the 3 s run
    "test_starts_missed_by_a_journey_the_end_cut_off_are_dropped": (
        ("--latency-ms", "300"), 2, "3s", str(RATE), LONG_BATCH_OPERATOR,
    ),
    # 2 users at 0.001/s: a start every 2000 s each, the first at a random moment within it
    "test_a_rate_too_low_for_the_run_says_why_nothing_was_sent": ((), 2, "3s", "0.001"),
    # a spike of 2 → 6 → 2 users at 4 journeys/s over 2 users: 4, 12, then 4 a second
    "test_a_spike_asks_for_its_peaks_rate_and_drops_nothing": (
        (), 2, "6s", "4", SLOW_THINKER, ("--profile", "spike", "--spike-multiplier", "3"),
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def rate_runs(request):
    services = OwnServices()

    def plan(flags, users, run_time, rate=str(RATE), persona=SLOW_THINKER, more=()):
        def for_folder(folder):
            personas = write_personas(folder, persona)
            args = ("--journey-rate", rate, "--seed", "5", "--stop-timeout", "5", *more)
            return RunPlan(flags, args, personas, users=users, run_time=run_time)

        return for_folder

    try:
        # three at a time: the runs mostly wait (paced users, slow services)
        yield run_tests(
            request,
            {name: services.starter(plan(*p)) for name, p in RUNS.items()},
            parallel=3,
        )
    finally:
        services.stop()


def payment_times(service) -> list[float]:
    """When each payment was made, in seconds, in order."""
    rows = service.query("SELECT created_at FROM payments ORDER BY created_at")
    return [dt.datetime.fromisoformat(c).timestamp() for (c,) in rows]


def per_second_after_the_first(times: list[float], seconds: float) -> float:
    """Payments per second in the ``seconds`` after the first second of payments (ramp-up and
    the users' first offsets behind)."""
    start = times[0] + 1
    return sum(start <= t < start + seconds for t in times) / seconds


def journeys_csv(text: str) -> dict[str, dict]:
    return {r["persona"]: r for r in csv.DictReader(io.StringIO(text))}


def test_the_rate_replaces_the_think_time(request, rate_runs):
    """30-60 s of think time and 4 users: at 10 journeys/s each starts one every 0.4 s."""
    case = case_result(rate_runs, request)
    run, service = case.locust_run(), case.context
    assert run.returncode == 0, run.output[-3000:]
    assert "each starting a journey every 0.4 s; the pace replaces" in run.output
    rate = per_second_after_the_first(payment_times(service), 2)
    assert 8 <= rate <= 11, rate
    row = journeys_csv(run.csv_prefix.with_name("run_journeys.csv").read_text())["All"]
    assert int(row["asked"]) == int(row["started"]) + int(row["dropped"]), row
    assert int(row["dropped"]) == 0, row
    held = next(r for r in run.csv_rows("slo") if r["metric"] == "journey_rate")
    assert held["passed"] == "true", held
    assert "ok: journey rate held: 0 of" in run.output


def test_a_slow_service_with_too_few_users_drops_starts_and_fails(request, rate_runs):
    """Journeys of 0.4 s cannot start every 0.2 s: about half the starts are dropped, not sent
    in a burst later, and the verdict fails naming the fix."""
    case = case_result(rate_runs, request)
    run, service = case.locust_run(), case.context
    assert run.returncode == 1, run.output[-3000:]
    row = journeys_csv(run.csv_prefix.with_name("run_journeys.csv").read_text())["All"]
    started, dropped = int(row["started"]), int(row["dropped"])
    assert int(row["asked"]) == started + dropped, row
    assert dropped >= started * 0.6, row
    # one payment per journey (no declines); one cut off by the end may have paid or not
    paid = len(payment_times(service))
    assert started - int(row["interrupted"]) <= paid <= started, (paid, row)
    failed = next(r for r in run.csv_rows("slo") if r["metric"] == "journey_rate")
    assert failed["passed"] == "false", failed
    assert failed["message"].startswith(f"journey rate not held: {dropped} of"), failed
    assert "the users could not keep the pace" in failed["message"], failed
    assert "raise -u (or lower --journey-rate)" in failed["message"], failed
    html = run.html_path.read_text()
    assert '">Asked</th><th class="">Dropped</th>' in html


def test_a_user_waiting_for_its_pace_at_the_end_starts_no_journey(request, rate_runs):
    """A user waiting for its next start (or thinking) when the run time ends stops there, as
    during Locust's own wait_time: with --stop-timeout 5 it woke after the run's end, started a
    journey and paid (the run ended 2 s late)."""
    case = case_result(rate_runs, request)
    run, service = case.locust_run(), case.context
    assert run.returncode == 0, run.output[-3000:]
    (end,) = re.findall(
        r"\[([\d-]+ [\d:,]+)\] \S+ --run-time limit reached", run.output
    )
    ended = dt.datetime.strptime(end, "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time
    times = payment_times(service)
    assert times and max(times) < ended + 0.2, (ended, times)
    assert "Shutting down" in run.output.split("--run-time limit reached")[1]


def test_starts_missed_by_a_journey_the_end_cut_off_are_dropped(request, rate_runs):
    """Operators whose one journey outlasts the run asked for ~30 starts and made 2: the starts
    their journey ran past until the end are dropped, and the rate is not held (before, starts
    were counted as dropped only when the next journey began: 'journey rate held: 0 of 2
    starts dropped')."""
    case = case_result(rate_runs, request)
    run = case.locust_run()
    row = journeys_csv(run.csv_prefix.with_name("run_journeys.csv").read_text())["All"]
    started, dropped = int(row["started"]), int(row["dropped"])
    assert started == 2 and int(row["interrupted"]) == 2, row
    assert int(row["asked"]) == started + dropped, row
    assert 20 <= dropped <= 32, row  # ~3 s at 10/s, less the ramp-up and first offsets
    failed = next(r for r in run.csv_rows("slo") if r["metric"] == "journey_rate")
    assert failed["passed"] == "false", failed
    assert failed["message"].startswith(f"journey rate not held: {dropped} of"), failed
    assert run.returncode == 1, run.output[-3000:]


def test_a_rate_too_low_for_the_run_says_why_nothing_was_sent(request, rate_runs):
    """At 0.001 journeys/s over 2 users a 3 s run asks for no journey: the verdict fails and
    says why, and what to change (before: 'no HTTP requests were recorded (http)' alone)."""
    case = case_result(rate_runs, request)
    run = case.locust_run()
    assert run.returncode == 1, run.output[-3000:]
    failed = next(r for r in run.csv_rows("slo") if r["metric"] == "requests")
    assert failed["passed"] == "false", failed
    assert failed["message"].startswith("no HTTP requests were recorded (http): "), (
        failed
    )
    assert "each starts a journey every 2000 s, the first" in failed["message"], failed
    assert "run for longer than that or raise --journey-rate" in failed["message"], (
        failed
    )


def test_a_spike_asks_for_its_peaks_rate_and_drops_nothing(request, rate_runs):
    """The peak's 4 extra users, stopped at its end, drop no start: the test's stop counted
    their paces (left until garbage collection) as running late since then (before: 'journey
    rate not held: 29 of 110 starts dropped' on a fast service)."""
    case = case_result(rate_runs, request)
    run, service = case.locust_run(), case.context
    held = next(r for r in run.csv_rows("slo") if r["metric"] == "journey_rate")
    assert held["passed"] == "true", held
    times = payment_times(service)
    peak = sum(times[0] + 2.5 <= t < times[0] + 3.5 for t in times)
    assert 9 <= peak <= 14, times  # 12 a second at the peak (2-4 s)
    assert run.returncode == 0, run.output[-3000:]


def _wait_until_stopped(ui: str, deadline: float) -> None:
    while json.loads(get_text(ui + "/stats/requests"))["state"] != "stopped":
        assert time.monotonic() < deadline, "the test did not stop"
        time.sleep(0.2)


def test_a_web_ui_test_on_forked_workers_runs_at_the_rate_of_its_form(
    tmp_path, service
):
    """``--processes 2`` and the web UI, Locust started without ``--journey-rate``: the form's
    Journey rate of 10 over 4 users gives 10 journeys/s in total, not twice that (each worker
    pacing for the whole test) nor a quarter (the workers pacing with the command line's -u 16,
    which Locust does not send them). A rate that is none is refused, the test not started (a
    ``journey_rate`` posted to /swarm was refused whatever its value)."""
    port = free_port()
    locust = locust_process(
        locust_command(
            tmp_path, "--web-host", "127.0.0.1", "--web-port", str(port),
            *processes_args(2), personas=write_personas(tmp_path, SLOW_THINKER),
            users=16, run_time=None, headless=False,
        ),
        service.url,
    )  # fmt: skip
    ui = f"http://127.0.0.1:{port}"
    try:
        wait_http(ui + "/", timeout=30)
        deadline = time.monotonic() + 20
        while json.loads(get_text(ui + "/worker-count"))["worker_count"] != 2:
            assert time.monotonic() < deadline, "not 2 workers ready"
            time.sleep(0.1)
        form = {
            "user_count": 4,
            "spawn_rate": 50,
            "host": service.url,
            "run_time": "4s",
        }
        refused = post_form(ui + "/swarm", **form, journey_rate="0")
        state = json.loads(get_text(ui + "/stats/requests"))["state"]
        started = post_form(ui + "/swarm", **form, journey_rate=str(RATE))
        assert started["success"], started
        _wait_until_stopped(ui, deadline + 10)
        row = journeys_csv(get_text(ui + "/journeys/csv"))["All"]
        # the Journeys tab: its columns (the page's) and its rows (the stats answer)
        page = get_text(ui + "/")
        stats = json.loads(get_text(ui + "/stats/requests"))["extended_stats"]
    finally:
        output = end_process(locust)
    assert not refused["success"], refused
    assert refused["message"] == (
        "Journey rate: 0 is no rate: give journeys per second above 0, e.g. 20, or leave the "
        "field empty to keep the personas' think time. The test was not started."
    ), refused
    assert state == "ready", state
    rate = per_second_after_the_first(payment_times(service), 2)
    assert 8 <= rate <= 11, (rate, output[-3000:])
    assert int(row["asked"]) == int(row["started"]) + int(row["dropped"]), row
    assert "over 4 users, each starting a journey every 0.4 s" in output
    assert '"title": "Asked"' in page and '"title": "Dropped"' in page
    tab = next(t["data"] for t in stats if t["key"] == "journeys")
    all_row = next(r for r in tab if r["persona"] == "All")
    assert all_row["asked"] == int(row["asked"]), (all_row, row)


def _form_field(page: str, option: str) -> dict:
    """The start form's field of ``option`` (Locust's template args in the page): its
    ``default_value`` (prefilled) and ``help_text``."""
    text = page.split("window.templateArgs = ", 1)[1]
    args = json.JSONDecoder().raw_decode(text)[0]
    return args["extra_options"][option]


def test_each_web_ui_test_runs_at_the_rate_of_its_form(tmp_path, service):
    """Started with ``--journey-rate 10`` the form's field holds 10; a test whose field is
    empty runs on the personas' think time (0.5 s) and shows no pace (no Asked/Dropped figures in the
    tab, the CSV or the report, no ``journey_rate`` check); the next test, at 20, runs 20
    journeys/s and shows them all. An edit of the running test keeps its rate, and says so, and
    its run time: the test still ends by itself."""
    port = free_port()
    locust = locust_process(
        locust_command(
            tmp_path, "--web-host", "127.0.0.1", "--web-port", str(port),
            "--journey-rate", str(RATE), personas=write_personas(tmp_path, HALF_SECOND_THINKER),
            users=4, run_time=None, headless=False,
        ),
        service.url,
    )  # fmt: skip
    ui = f"http://127.0.0.1:{port}"
    form = {"user_count": 4, "spawn_rate": 50, "host": service.url}
    try:
        wait_http(ui + "/", timeout=30)
        field = _form_field(get_text(ui + "/"), "journey_rate")
        deadline = time.monotonic() + 25
        off = post_form(ui + "/swarm", **form, run_time="2s", journey_rate="")
        assert off["success"], off
        _wait_until_stopped(ui, deadline)
        off_rows = journeys_csv(get_text(ui + "/journeys/csv"))
        off_checks = get_text(ui + "/journeys/slo/csv")
        off_report = get_text(ui + "/stats/report")
        off_tab = json.loads(get_text(ui + "/stats/requests"))["extended_stats"]
        before = len(payment_times(service))
        on = post_form(ui + "/swarm", **form, run_time="4s", journey_rate="20")
        assert on["success"], on
        time.sleep(1)
        # Locust's edit form: users, ramp up and the custom fields, no run time
        edit = post_form(ui + "/swarm", user_count=4, spawn_rate=50, journey_rate="5")
        time.sleep(
            1.1
        )  # past Locust's 2 s cache of /stats/requests (the off test's "stopped")
        _wait_until_stopped(ui, time.monotonic() + 7)  # 2 s left, and --stop-timeout 3
        on_row = journeys_csv(get_text(ui + "/journeys/csv"))["All"]
        on_checks = get_text(ui + "/journeys/slo/csv")
        on_report = get_text(ui + "/stats/report")
    finally:
        output = end_process(locust)
    assert field["default_value"] == RATE, field
    # Locust's label is "Journey Rate (<help>)", cut at ~85 characters in an empty field (at
    # 1280 px and wider): what empty means must come before that (it was cut off)
    label = f"Journey Rate ({field['help_text']})"
    assert "empty: off" in label and len(label) <= 85, label
    assert "asked" not in off_rows["All"] and "dropped" not in off_rows["All"], off_rows
    assert "journey_rate" not in off_checks, off_checks
    assert ">Asked</th>" not in off_report
    journeys_tab = next(t["data"] for t in off_tab if t["key"] == "journeys")
    assert not any("asked" in r for r in journeys_tab), journeys_tab
    assert edit["success"], edit
    assert "keeps its 20 journeys/s" in output, output[-3000:]
    # the edit kept the test's 4 s run time (Locust's view cancelled it: the test ran on)
    assert "stopped after" not in on_checks, on_checks
    rate = per_second_after_the_first(payment_times(service)[before:], 2)
    assert 17 <= rate <= 22, (rate, output[-3000:])
    asked, started = int(on_row["asked"]), int(on_row["started"])
    assert asked == started + int(on_row["dropped"]), on_row
    checks = csv.DictReader(io.StringIO(on_checks))
    held = next(r for r in checks if r["metric"] == "journey_rate")
    assert "20 journeys/s over 4 users" in held["message"], held
    assert ">Asked</th>" in on_report
    assert "Journey rate: 20 journeys/s over 4 users" in output
    assert "Traceback" not in output, output[-3000:]


def test_journeys_per_second_names_the_fix():
    assert journeys_per_second("2.5") == 2.5
    for bad in ("0", "-1", "abc", "nan", "inf"):
        with pytest.raises(
            argparse.ArgumentTypeError, match="give journeys per second"
        ):
            journeys_per_second(bad)


def test_a_late_journey_drops_the_starts_it_missed_and_does_not_catch_up(monkeypatch):
    """Due at 0, 1, 2, 3, ...: free at 3.5, the starts due at 1 and 2 are dropped (two whole
    intervals missed) and the one due at 3 starts at once; the next is due at 4, not at once
    again to catch up. A journey in flight at 7.2 (the test stops) ran past the starts due at
    5, 6 and 7 (``missed``), counted once: the next ``wait`` sleeps until 8 and drops none."""
    clock = [0.0]
    monkeypatch.setattr("journeys.journey_rate.time.monotonic", lambda: clock[0])

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    pace = Pace(interval=1.0, offset=0.0)
    assert pace.wait(sleep) == 0 and clock[0] == 0.0
    clock[0] = 3.5
    assert pace.wait(sleep) == 2 and clock[0] == 3.5
    assert pace.wait(sleep) == 0 and clock[0] == 4.0
    clock[0] = 4.5
    assert pace.missed() == 0  # the next start, at 5, is not due yet
    clock[0] = 7.2
    assert pace.missed() == 3 and pace.missed() == 0
    assert pace.wait(sleep) == 0 and clock[0] == 8.0
    clock[0] = 9.5
    pace.closed = True  # the test stopped: its missed starts were counted
    assert pace.missed() == 0
