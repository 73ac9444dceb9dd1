"""Journey results end to end: real Locust and the real service; numbers checked in its database.

One standalone run and one master + 2 workers run; each checks the journeys CSV against the
service's SQLite file, Locust's own journey entries, the persona mix, the HTML report and the
terminal summary.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

from journeys.results.stats import FINISHED_OUTCOMES, OUTCOMES
from tests.conftest import (
    LocustRun,
    locust_command,
    locust_process,
    processes_args,
    run_locust,
    write_personas,
)

SHOPPER = "shopper,customer,3,visa|mastercard,USD|EUR,5,80,0.3,2,,en_US,0,0.05"
OPS = "ops,operator,1,visa|amex,USD|JPY,1,500,0.2,0,4,en_US,0,0.05"
JOURNEY_COLUMNS = {
    "journey", "persona", "started", "succeeded", "recovered", "abandoned", "failed", "interrupted",
    "reconciled", "mismatch", "decline_rate_configured", "decline_rate_observed", "p50_ms", "p95_ms",
    "p99_ms", "max_ms", "attempts_per_payment", "duplicate_charges", "funnel_started",
    "funnel_declined", "funnel_retried", "funnel_recovered", "funnel_abandoned",
    "funnel_reconciled", "funnel_mismatch", "funnel_interrupted",
}  # fmt: skip


def n(row: dict, column: str) -> int:
    return int(float(row[column] or 0))


def journey_rows(run) -> dict[tuple[str, str], dict]:
    rows = run.csv_rows("journeys")
    assert rows and JOURNEY_COLUMNS <= set(rows[0]), rows[:1]
    # --journey-rate's columns only with the option
    assert not {"asked", "dropped"} & set(rows[0]), rows[:1]
    return {(r["journey"], r["persona"]): r for r in rows}


def first_attempts(service, journey: str) -> list[tuple[str, str]]:
    """(journey_id, status of its first payment) per journey in the database."""
    return service.query(
        "SELECT json_extract(metadata, '$.journey_id'), status FROM payments p "
        "WHERE json_extract(metadata, '$.journey') = ? AND rowid = (SELECT min(rowid) FROM payments q "
        "WHERE json_extract(q.metadata, '$.journey_id') = json_extract(p.metadata, '$.journey_id'))",
        (journey,),
    )


def assert_matches_database(run, service) -> None:
    rows = journey_rows(run)
    checkout, batch = rows[("checkout", "All")], rows[("batch_report", "All")]
    assert rows[("checkout", "shopper")]["started"] == checkout["started"]
    assert rows[("batch_report", "ops")]["started"] == batch["started"]
    assert n(checkout, "started") >= 4 and n(batch, "started") >= 1, rows

    # checkout: every paid journey is one succeeded payment in the database
    paid = n(checkout, "succeeded") + n(checkout, "recovered")
    (charged,) = service.query(
        "SELECT count(*) FROM payments WHERE status = 'succeeded' AND json_extract(metadata, '$.journey') = 'checkout'"
    )[0]
    cut = n(
        checkout, "interrupted"
    )  # cut off by the end of the run: outcome unknown to the counters
    assert paid <= charged <= paid + cut, (paid, charged, checkout)
    # ... and the funnel's "first attempt declined" is what the database saw first
    first = first_attempts(service, "checkout")
    declined_first = sum(1 for _, status in first if status == "declined")
    assert (
        n(checkout, "funnel_declined")
        <= declined_first
        <= n(checkout, "funnel_declined") + cut
    )
    assert len(first) <= n(checkout, "started")
    assert n(checkout, "funnel_recovered") == n(checkout, "recovered")

    # batch_report: payments counted == rows in the database (4 per batch)
    (stored,) = service.query(
        "SELECT count(*) FROM payments WHERE json_extract(metadata, '$.journey') = 'batch_report'"
    )[0]
    unfinished = n(batch, "interrupted") + n(batch, "failed")
    assert n(batch, "payments") <= stored <= n(batch, "payments") + 4 * unfinished, (
        stored,
        batch,
    )
    assert n(batch, "reconciled") >= 1 and n(batch, "mismatch") == 0
    # an operator's funnel ends in its own columns, the customers' ones stay blank
    assert (batch["funnel_reconciled"], batch["funnel_mismatch"]) == (
        batch["reconciled"],
        batch["mismatch"],
    ), batch
    assert (batch["funnel_recovered"], batch["funnel_abandoned"]) == ("", ""), batch
    assert (checkout["funnel_reconciled"], checkout["funnel_mismatch"]) == ("", "")
    # journeys cut off by the end of the run are in the funnel too
    for row in (checkout, batch):
        assert row["funnel_interrupted"] == row["interrupted"], row
    assert float(checkout["decline_rate_configured"]) == 0.3

    # Locust's own "journey" entries time exactly the journeys that reached an outcome
    stats = run.stats()
    for journey, row in (("checkout", checkout), ("batch_report", batch)):
        finished = sum(n(row, c) for c in FINISHED_OUTCOMES)
        assert int(stats[("journey", journey)]["Request Count"]) == finished, (
            journey,
            row,
        )
    # ... and stay out of Locust's Aggregated row, which counts HTTP requests only
    http = [r for (kind, name), r in stats.items() if kind not in ("journey", "")]
    aggregated = stats[("", "Aggregated")]
    for column in ("Request Count", "Failure Count"):
        assert int(aggregated[column]) == sum(int(r[column]) for r in http), column


def test_standalone_run_reports_journeys_that_match_the_database(tmp_path, service):
    personas = write_personas(tmp_path, SHOPPER, OPS)
    run = run_locust(
        tmp_path, service.url, "--seed", "31", personas=personas, users=4, run_time="3s"
    )
    assert run.returncode == 0, run.output[-4000:]
    assert_matches_database(run, service)

    mix = {r["persona"]: r for r in run.csv_rows("persona_mix")}
    assert (mix["shopper"]["share_configured"], mix["ops"]["share_configured"]) == (
        "0.75",
        "0.25",
    )
    assert (mix["shopper"]["users"], mix["ops"]["users"]) == ("3", "1")
    assert (mix["shopper"]["weight"], mix["ops"]["weight"]) == ("3", "1")

    verdict = next(r for r in run.csv_rows("slo") if r["metric"] == "verdict")
    assert (verdict["scope"], verdict["metric"], verdict["passed"]) == (
        "run",
        "verdict",
        "true",
    ), verdict
    assert {"http", "checkout", "batch_report"} <= {
        r["scope"] for r in run.csv_rows("slo")
    }

    html = run.html_path.read_text()
    section = html[html.index('<section id="journey-results">') :]
    assert (
        "SLO verdict: PASS" in section
        and "<svg" in section
        and "Persona mix" in section
        and ">interrupted</text>" in section  # the funnels' last stage
    )
    assert re.search(
        r"<td class=\"l\">checkout</td><td class=\"l\">shopper</td>", section
    )
    assert section.index("</section>") < section.index("</body>")

    # the summary comes last, after Locust's tables
    summary = run.output[run.output.rindex("Response time percentiles") :]
    assert (
        re.search(r"checkout\s+All\s+\d+", summary) and "SLO verdict: PASS" in summary
    )


def test_master_totals_are_the_sum_of_the_workers(tmp_path, service):
    personas = write_personas(tmp_path, SHOPPER, OPS)
    run = run_locust(
        tmp_path,
        service.url,
        "--seed",
        "32",
        personas=personas,
        users=4,
        # 3 s: in 2 s a slow machine's two workers started only 2 checkouts (CI clone,
        # 05:10), under the 4 the checks below ask for
        run_time="3s",
        workers=2,
    )
    assert run.returncode == 0, run.output[-4000:] + "\n".join(
        w[-2000:] for w in run.worker_outputs
    )
    assert_matches_database(run, service)  # the database saw both workers' traffic
    assert "SLO verdict: PASS" in run.output
    assert not any("SLO verdict" in w for w in run.worker_outputs), (
        "only the master judges"
    )
    # each worker builds its data pools at test start (it knows the seed by then); the master
    # runs no users and builds none
    assert "data pools ready" not in run.output
    for worker in run.worker_outputs:
        assert "data pools ready for 2 personas" in worker, worker[-2000:]


def test_forked_workers_make_keys_and_batches_of_their_own(tmp_path, service):
    """``--processes 2`` forks its workers after the locustfile is imported: each must still
    make idempotency keys, journey and batch ids of its own (they shared the parent's, so half
    the payments were 422 idempotency_key_reused and batches mixed two workers' payments)."""
    personas = write_personas(tmp_path, SHOPPER, OPS)
    run = run_locust(
        tmp_path, service.url, "--seed", "35", *processes_args(),
        personas=personas, users=4, run_time="2s",
    )  # fmt: skip
    assert run.returncode == 0, run.output[-4000:]
    assert not run.csv_rows("failures"), run.csv_rows("failures")
    assert_matches_database(run, service)


def assert_started_covers_outcomes(run) -> None:
    """No journey × persona row (nor its funnel) reports more outcomes than journeys started."""
    for row in run.csv_rows("journeys"):
        outcomes = sum(n(row, c) for c in OUTCOMES)
        assert outcomes >= 1 or row["persona"] != "All", row
        assert n(row, "started") >= outcomes, row
        for end in ("funnel_recovered", "funnel_reconciled"):
            assert n(row, "funnel_started") >= n(row, end), row


def test_reset_stats_keeps_journeys_in_flight_as_started(tmp_path, start_service):
    """--reset-stats forgets the ramp-up; journeys in flight then still count as started.

    Every /pay takes 1.5 s and users start 3 a second, so every one is inside a journey when
    spawning completes (after 1.7 s): their
    outcomes arrive after the reset and must not outnumber the journeys started.
    """
    slow = start_service("--latency-ms", "1500")
    personas = write_personas(tmp_path, SHOPPER, OPS)
    run = run_locust(
        tmp_path, slow.url, "--seed", "33", "--reset-stats",
        personas=personas, users=6, spawn_rate=3, run_time="4s",
    )  # fmt: skip
    assert "Resetting stats" in run.output, run.output[-3000:]
    assert_started_covers_outcomes(run)


def test_reset_stats_keeps_journeys_in_flight_as_started_on_workers(
    tmp_path, start_service
):
    slow = start_service("--latency-ms", "1500")
    personas = write_personas(tmp_path, SHOPPER, OPS)
    run = run_locust(
        tmp_path, slow.url, "--seed", "34", "--reset-stats",
        personas=personas, users=6, spawn_rate=3, run_time="4s", workers=2,
    )  # fmt: skip
    assert "Resetting stats" in run.output, run.output[-3000:]
    assert_started_covers_outcomes(run)


def test_reset_stats_on_workers_forgets_the_journeys_locust_forgets(tmp_path, service):
    """Each worker resets its unreported requests when the master tells it spawning is
    complete: the journeys it had not reported yet must go too. They stayed: 80 checkouts
    finished in the journeys CSV, 73 in Locust's own ``journey`` row."""
    run = run_locust(
        tmp_path, service.url, "--seed", "42", "--reset-stats", *processes_args(),
        "--tags", "checkout", users=20, spawn_rate=4, run_time="10s",
    )  # fmt: skip
    assert "Resetting stats" in run.output, run.output[-3000:]
    rows = [r for r in run.csv_rows("journeys") if r["persona"] == "All"]
    assert rows, f"no journeys after the reset:\n{run.output[-6000:]}"
    finished = sum(n(rows[0], c) for c in FINISHED_OUTCOMES)
    assert finished == int(run.stats()[("journey", "checkout")]["Request Count"]) > 0
    assert_started_covers_outcomes(run)


def test_a_worker_missing_before_the_test_started_is_not_lost_in_it():
    """Locust lists a worker gone missing (killed in an earlier test, or one that left for a
    wrong setup) for another minute: the next test in the web UI failed 'workers_lost' for it."""
    import argparse

    from locust.runners import STATE_INIT, STATE_MISSING, MasterRunner

    from journeys.results import distributed, missing_workers

    runner = object.__new__(
        MasterRunner
    )  # no environment: only its type and fields count
    runner.greenlet = None  # what Runner.__del__ looks at
    runner.clients = {
        "gone": argparse.Namespace(id="gone", state=STATE_MISSING),
        "here": argparse.Namespace(id="here", state=STATE_INIT, user_classes_count={}),
    }
    distributed._new_test(argparse.Namespace(runner=runner))
    assert distributed.workers.reporting == {"here"}
    # nor 'workers_missing' (it went missing before this test)
    missing_workers._look(runner)
    assert missing_workers._gaps == []
    distributed.workers.__init__()


def test_a_stop_mid_ramp_ends_the_dispatch_or_names_the_locust_private_it_lacks():
    """The master's stop gives Locust's users dispatcher the users handed out as its target
    (private fields): a Locust without that field is named, not silently given a new one."""
    import argparse

    import pytest
    from locust.runners import MasterRunner

    from journeys.results import distributed

    runner = object.__new__(
        MasterRunner
    )  # no environment: only its type and fields count
    runner.greenlet = None  # what Runner.__del__ looks at
    runner._users_dispatcher = argparse.Namespace(
        _current_user_count=3, _target_user_count=10
    )
    distributed.stop_spawning(argparse.Namespace(runner=runner))
    assert runner._users_dispatcher._target_user_count == 3
    runner._users_dispatcher = argparse.Namespace(_current_user_count=3)
    with pytest.raises(RuntimeError, match="_target_user_count"):
        distributed.stop_spawning(argparse.Namespace(runner=runner))


def test_only_a_worker_that_left_before_the_end_with_users_counts_as_left():
    """A worker's leaving counts when the master's test runs and the worker ran users; not
    when it comes with the end of the test (one Ctrl-C reaches a ``--processes`` master and
    its workers at once), unless the test ended because its last worker left."""
    import argparse

    from locust.runners import STATE_RUNNING, STATE_STOPPING, MasterRunner

    from journeys.results import distributed

    runner = object.__new__(MasterRunner)  # only its type and fields count
    runner.greenlet = None  # what Runner.__del__ looks at
    here = argparse.Namespace(id="here", state=STATE_RUNNING)
    runner.clients = {
        "here": here,
        "w1": argparse.Namespace(id="w1", state=STATE_RUNNING),
    }
    environment = argparse.Namespace(runner=runner)
    try:
        distributed._new_test(environment)
        distributed.workers.started -= 5.0  # the test started 5 s ago
        runner.state = STATE_RUNNING
        distributed._worker_leaves(runner, "idle", {"users": 0})  # it ran no users
        distributed._worker_leaves(runner, "w1", {"users": 2})
        (w1,) = distributed.left_workers(environment)
        assert (w1.worker, round(w1.at_s), w1.users, w1.others) == ("w1", 5, 2, True)
        del runner.clients["w1"]  # its "quit"
        distributed.workers.finished.add("w1")  # its final report came first
        assert distributed.left_workers(environment) == [w1]

        # the master stops its test (run time, signal) right after: w1 left with the end
        distributed._test_stopping(environment)
        assert distributed.left_workers(environment) == []
        # ... unless that stop came as the last worker left
        distributed.workers.stopped_by_workers = True
        assert distributed.left_workers(environment) == [w1]

        # once the master stops, a worker leaving is the end of the test
        runner.state = STATE_STOPPING
        distributed._worker_leaves(runner, "here", {"users": 2})
        assert "here" not in distributed.workers.left
    finally:
        distributed.workers.__init__()


def test_a_worker_lost_mid_run_fails_the_verdict(tmp_path, start_service):
    """A SIGKILLed worker never sends what it counted since its last report: the results (and
    the ledger) are short, so the run must not pass as if they were whole.

    Every /pay takes 200 ms, so at its last report the killed worker had journeys in flight:
    they were counted as started and their outcomes never come; they count as interrupted, so
    the outcomes still add up to the journeys started (they came up short by those). The run
    is a soak: its phase report is short of the same requests and must say so."""
    service = start_service("--latency-ms", "200")

    run = run_locust(
        tmp_path, service.url, "--seed", "35", "--reconcile-run", "--profile", "soak",
        personas=write_personas(tmp_path, SHOPPER, OPS), users=4, run_time="5s",
        # after its first report with traffic (workers report every 3 s)
        workers=2, kill_a_worker_when=service.has_payments, kill_a_worker_after_s=3.2,
    )  # fmt: skip
    assert run.worker_returncodes[0] == -9
    assert run.returncode == 1, run.output[-3000:]
    assert "1 worker lost before its final report (" in run.output
    assert "what it counted since its last report" in run.output
    lost = next(r for r in run.csv_rows("slo") if r["metric"] == "workers_lost")
    assert (lost["actual"], lost["passed"]) == ("1", "false"), lost
    rows = run.csv_rows("journeys")
    for row in rows:
        assert n(row, "started") == sum(n(row, o) for o in OUTCOMES), row
        assert row["funnel_interrupted"] == row["interrupted"], row
    assert sum(n(r, "interrupted") for r in rows if r["persona"] == "All") > 0, rows
    # the load profile's phases are short by the same: its report says so under the table
    report = run.output[run.output.rindex("Load profile soak") :]
    assert (
        "1 worker lost before its final report: its requests since its last report are "
        "missing from these phases" in report
    ), report
    # --reconcile-run: the service holds the lost worker's unreported payments too; that is
    # the lost worker's doing, not double charges (only missing payments are judged)
    books = next(r for r in run.csv_rows("slo") if r["metric"] == "books")
    paid = sum(int(r["payments"]) for r in run.csv_rows("ledger"))
    charged = service.query("SELECT count(*) FROM payments WHERE status = 'succeeded'")
    assert charged[0][0] > paid, "the lost worker's last payments are unreported"
    assert books["passed"] == "true", books
    assert "more payments than confirmed not judged: worker" in books["message"], books
    assert f"({charged[0][0]} in all)" in books["message"], books


def test_a_worker_frozen_mid_run_fails_the_verdict(tmp_path, service):
    """A worker that sends nothing for seconds (SIGSTOP then SIGCONT, a paused VM, a network cut
    that heals) is "missing" to Locust until its heartbeats come back: its users sent nothing
    meanwhile and its requests in flight are timed with the pause, so the load was lower than
    asked. Its final report comes, so nothing is lost, and the run passed, exit 0."""

    run = run_locust(
        tmp_path, service.url, "--seed", "37",
        personas=write_personas(tmp_path, SHOPPER, OPS), users=4, run_time="8s",
        # Locust marks a worker missing after 3 s without a heartbeat
        workers=2, kill_a_worker_when=service.has_payments, kill_a_worker_after_s=0.5,
        worker_signal=signal.SIGSTOP, continue_the_worker_after_s=4.5,
    )  # fmt: skip
    assert run.worker_returncodes[0] == 0, run.worker_outputs[0][-3000:]
    assert run.returncode == 1, run.output[-3000:]
    assert "workers_lost" not in {r["metric"] for r in run.csv_rows("slo")}
    missing = next(r for r in run.csv_rows("slo") if r["metric"] == "workers_missing")
    assert (missing["actual"], missing["passed"]) == ("1", "false"), missing
    assert re.search(
        r"Worker \S+ sent no heartbeat for seconds: Locust counted it missing from \d+ s to "
        r"\d+ s of the 8 s run \(frozen, paused or cut off\); its 2 users sent nothing then, "
        r"so the load was lower than asked; it came back, and its journeys are counted \(run\)",
        missing["message"],
    ), missing
    # nothing is lost: the books hold every payment the service holds
    paid = sum(int(r["payments"]) for r in run.csv_rows("ledger"))
    charged = service.query("SELECT count(*) FROM payments WHERE status = 'succeeded'")
    assert charged[0][0] == paid


def test_a_worker_that_leaves_mid_run_fails_the_verdict(tmp_path, service):
    """A worker stopped by SIGTERM (or Ctrl-C) mid-run leaves normally: it sends its final
    report and "quit", so its journeys are all counted; but the load the run was asked to hold
    dropped when its users stopped, so the run must not pass. The run is a soak: its phase
    report says so under the table too."""

    run = run_locust(
        tmp_path, service.url, "--seed", "36", "--profile", "soak",
        personas=write_personas(tmp_path, SHOPPER, OPS), users=4, run_time="5s",
        # early in the run: on a busy machine a second's wait once came after the run's end
        workers=2, kill_a_worker_when=service.has_payments, kill_a_worker_after_s=0.5,
        worker_signal=signal.SIGTERM,
    )  # fmt: skip
    worker = run.worker_outputs[0]
    assert run.worker_returncodes[0] == 0, worker[-3000:]
    assert run.returncode == 1, run.output[-3000:]
    left = re.search(
        r"Worker (\S+) left at \d+ s of the 5 s run: its journeys are counted, but its 2 users "
        r"stopped, so the load was lower than asked until Locust started them again on the "
        r"other workers \(run\)",
        run.output,
    )
    assert left, run.output[-3000:]
    assert left[1] in worker, "it names the worker that left"
    slo = {r["metric"]: r for r in run.csv_rows("slo")}
    assert (slo["workers_left"]["actual"], slo["workers_left"]["passed"]) == (
        "1",
        "false",
    )
    assert "workers_lost" not in slo, slo["workers_lost"]
    assert "run_time" not in slo, slo["run_time"]  # the run itself went its whole time
    # its journeys are in the results: every payment the database holds is counted
    assert_matches_database(run, service)
    assert f"Worker {left[1]} left at" in run.html_path.read_text()
    report = run.output[run.output.rindex("Load profile soak") :]
    assert re.search(
        rf"1 worker left mid-run \({left[1]} at \d+ s, in the \w+\): its requests are in these "
        r"phases, but its 2 users stopped, so the phases from then on ran with fewer users than "
        r"their target until Locust started them again on the other workers",
        report,
    ), report


def test_one_sigterm_to_a_forked_run_counts_everything_and_no_worker_as_left(
    tmp_path, service
):
    """A SIGTERM to the process group of a ``locust --processes 2`` run (a CI job's timeout;
    Ctrl-C in its terminal sends SIGINT the same way): the master and its forked workers get
    the signal at once. The workers leave with the end of the
    run, not before it (no ``workers_left``), and their final reports come before they quit:
    Locust's ``quit`` first let the master end with both workers lost and no request counted."""
    command = locust_command(
        tmp_path, "--seed", "37", *processes_args(),
        personas=write_personas(tmp_path, SHOPPER, OPS), users=4, run_time="20s",
    )  # fmt: skip
    locust = locust_process(command, service.url, group=True)
    try:
        service.wait_for_payments(locust)
        time.sleep(1)
        os.killpg(locust.pid, signal.SIGTERM)
        output = locust.communicate(timeout=30)[0]
    finally:
        if locust.poll() is None:
            os.killpg(locust.pid, signal.SIGKILL)
            locust.communicate()
    run = LocustRun(locust.returncode, output, tmp_path / "run", Path())
    assert run.returncode == 1, output[-3000:]
    failed = {r["metric"] for r in run.csv_rows("slo") if r["passed"] == "false"}
    assert failed == {"verdict", "run_time"}, output[-3000:]
    assert_matches_database(run, service)


def test_reports_that_cannot_be_written_at_the_end_keep_the_verdict(tmp_path, service):
    """The --csv folder gone by the end of the run (a full disk, a cleanup job): the end of
    the run raised on its first CSV, a traceback and exit 2 with no verdict printed, no
    journey CSVs and the HTML report without its journeys. Now what can be written is, the
    verdict is printed, then what was not written (the log's last line: a PASS above it is not
    the job's result), and the exit code is 2 (a report the job asked for is missing)."""
    import shutil

    from tests.conftest import locust_process

    folder = tmp_path / "csv"
    personas = write_personas(
        tmp_path, "shopper,customer,1,visa,USD,5,50,0,1,,en_US,0.2,0.5"
    )
    command = locust_command(
        tmp_path, "--csv", str(folder / "run"), run_time="4s", personas=personas
    )
    proc = locust_process(command, service.url)
    deadline = time.monotonic() + 20
    while not (folder / "run_stats.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    shutil.rmtree(folder)
    folder.write_text("a file where the --csv folder was\n")
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 2, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert f"Could not write the --csv files at {folder / 'run'}" in output, output[
        -3000:
    ]
    last_lines = output.rstrip().splitlines()
    assert last_lines[-1].startswith(
        f"  NOT WRITTEN: the --csv files at {folder / 'run'} ("
    ) and last_lines[-1].endswith("): exit code 2"), output[-1500:]
    assert last_lines[-2].startswith(("SLO verdict", "  FAILED", "  ok")), output[
        -1500:
    ]
    assert "journey-results" in (tmp_path / "report.html").read_text(encoding="utf-8")
