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
}  # fmt: skip


@pytest.fixture(scope="module")
def rate_runs(request):
    services = OwnServices()

    def plan(flags, users, run_time, rate=str(RATE)):
        def for_folder(folder):
            personas = write_personas(folder, SLOW_THINKER)
            args = ("--journey-rate", rate, "--seed", "5", "--stop-timeout", "5")
            return RunPlan(flags, args, personas, users=users, run_time=run_time)

        return for_folder

    try:
        yield run_tests(
            request, {name: services.starter(plan(*p)) for name, p in RUNS.items()}
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


def test_a_web_ui_test_on_forked_workers_keeps_the_rate_of_its_form(tmp_path, service):
    """``--processes 2`` and the web UI: the form's 4 users at 10/s give 10 journeys/s in
    total, not twice that (each worker pacing for the whole test) nor a quarter (the workers
    pacing with the command line's -u 16, which Locust does not send them)."""
    port = free_port()
    locust = locust_process(
        locust_command(
            tmp_path, "--web-host", "127.0.0.1", "--web-port", str(port),
            "--journey-rate", str(RATE), *processes_args(2),
            personas=write_personas(tmp_path, SLOW_THINKER), users=16, run_time=None,
            headless=False,
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
        # not a field of the form: a script posting it is refused, not half obeyed (a string
        # Locust kept as such, TypeError in every user when the run had no --journey-rate)
        refused = post_form(ui + "/swarm", **form, journey_rate="5")
        assert not refused["success"], refused
        assert refused["message"].startswith(
            "--journey-rate is set as Locust starts"
        ), refused
        started = post_form(ui + "/swarm", **form)
        assert started["success"], started
        while json.loads(get_text(ui + "/stats/requests"))["state"] != "stopped":
            assert time.monotonic() < deadline + 10, "the test did not stop"
            time.sleep(0.2)
        row = journeys_csv(get_text(ui + "/journeys/csv"))["All"]
        # the Journeys tab: its columns (the page's) and its rows (the stats answer)
        page = get_text(ui + "/")
        stats = json.loads(get_text(ui + "/stats/requests"))["extended_stats"]
    finally:
        output = end_process(locust)
    rate = per_second_after_the_first(payment_times(service), 2)
    assert 8 <= rate <= 11, (rate, output[-3000:])
    assert int(row["asked"]) == int(row["started"]) + int(row["dropped"]), row
    assert "over 4 users, each starting a journey every 0.4 s" in output
    assert '"title": "Asked"' in page and '"title": "Dropped"' in page
    tab = next(t["data"] for t in stats if t["key"] == "journeys")
    all_row = next(r for r in tab if r["persona"] == "All")
    assert all_row["asked"] == int(row["asked"]), (all_row, row)


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
    again to catch up."""
    clock = [0.0]
    monkeypatch.setattr("journeys.journey_rate.time.monotonic", lambda: clock[0])

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    pace = Pace(interval=1.0, offset=0.0)
    assert pace.wait(sleep) == 0 and clock[0] == 0.0
    clock[0] = 3.5
    assert pace.wait(sleep) == 2 and clock[0] == 3.5
    assert pace.wait(sleep) == 0 and clock[0] == 4.0
