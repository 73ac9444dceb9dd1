"""SLO verdict → exit code, end to end: real Locust against the real service (some with faults)."""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from xml.etree import ElementTree

import pytest

from journeys.results.stats import OUTCOMES
from tests.conftest import (
    ROOT,
    LocustRun,
    OwnServices,
    RunPlan,
    case_result,
    end_process,
    free_port,
    get_text,
    locust_command,
    locust_env,
    locust_process,
    locust_processes,
    master_args,
    post_form,
    processes_args,
    run_cases,
    run_tests,
    start_web_ui,
    write_personas,
)

SHOPPER = "shopper,customer,1,visa|mastercard,USD|EUR,5,80,0.2,2,,en_US,0,0.05"
OPS = "ops,operator,1,visa|amex,USD|JPY,1,500,0,0,4,en_US,0,0.05"
#: A prober that thinks for 10 minutes first: in the run, but sends nothing in a short one.
IDLE_PROBER = "prober,prober,1,visa|amex,USD|JPY,1,100,0,0,,en_US,600,600"


def slo_rows(run) -> list[dict]:
    return run.csv_rows("slo")


def failed_messages(run) -> list[str]:
    return [
        r["message"]
        for r in slo_rows(run)
        if r["passed"] == "false" and r["metric"] != "verdict"
    ]


@pytest.fixture(scope="module")
def slow_service_runs(request):
    """The slow-service tests' runs, each against a service of its own that takes 150 ms per
    request (1000-1040 ms for the p95 test; the service is the context), two at once ahead of
    their checks."""
    services = OwnServices()

    def starter(
        *args,
        env=None,
        flags=("--latency-ms", "150"),
        users=3,
        run_time="3s",
        junit=False,
        personas=(SHOPPER,),
        targets=None,
    ):
        def plan(folder):
            more = ("--junit-xml", str(folder / "junit.xml")) if junit else ()
            if targets is not None:  # an --slo-targets file of the run's own
                (folder / "slo-targets.csv").write_text(targets)
                more += ("--slo-targets", str(folder / "slo-targets.csv"))
            return RunPlan(
                flags, (*args, *more), personas=write_personas(folder, *personas),
                users=users, run_time=run_time, env=env,
            )  # fmt: skip

        return services.starter(plan)

    try:
        yield run_tests(
            request,
            {
                "test_slow_service_fails_p50_and_exits_1": starter("--seed", "41", junit=True),
                "test_generous_targets_pass_the_slow_service": starter(
                    "--seed", "42", "--slo-p50-ms", "2000",
                    env={"LOCUST_SLO_P95_MS": "3000", "LOCUST_SLO_ERROR_RATE": "0.5"},
                    junit=True,
                ),
                "test_locust_percentiles_stay_within_the_samples_as_the_verdicts_do": starter(
                    "--slo-p50-ms", "2000", "--slo-p95-ms", "3000",
                    flags=("--latency-ms", "1003"),
                ),
                "test_a_p95_a_few_ms_over_its_target_fails_above_a_second": starter(
                    "--slo-p50-ms", "1020", "--slo-p95-ms", "1020",
                    flags=("--latency-ms", "1000", "--jitter-ms", "40"),
                    users=4, run_time="5s",
                ),
                "test_a_five_nines_error_target_keeps_its_digits": starter(
                    "--slo-error-rate", "0.00001",
                    flags=("--error-rate", "0.05", "--error-phase", "before"),
                ),
                "test_a_slow_report_passes_with_a_target_of_its_own": starter(
                    "--seed", "43", flags=("--report-latency-ms", "700"),
                    personas=(SHOPPER, OPS), users=4, junit=True,
                    targets="name,p50_ms,p95_ms,error_rate\n"
                    "POST batch_report: report,2000,3000,\n"
                    "batch_report,,,0.5\n"
                    "edge_probes,,,0.5\n",  # no prober in this run: not run, passes
                ),
                "test_a_tight_request_target_and_a_misspelled_name_fail_naming_their_rows": (
                    starter(
                        "--seed", "44", "--slo-p50-ms", "2000", "--slo-p95-ms", "3000",
                        "--exclude-tags", "errors",
                        junit=True, personas=(SHOPPER, IDLE_PROBER),
                        targets="# tight for /pay, a typo, a journey that sent nothing,\n"
                        "# and rows of journeys this run leaves out (not run)\n"
                        "name,p50_ms,p95_ms,error_rate\n"
                        "POST checkout: pay,,100,\n"
                        "POST checkout: pya,,500,\n"
                        "edge_probes,,,0.5\n"
                        "error_probes,,,0.5\n"
                        "POST error_probes: key reuse: replay,,500,\n"
                        "batch_report,,,0.5\n",
                    )
                ),
            },
            timeout=120,
        )  # fmt: skip
    finally:
        services.stop()


def test_slow_service_fails_p50_and_exits_1(request, slow_service_runs):
    run = case_result(slow_service_runs, request).locust_run()
    assert run.returncode == 1, run.output[-3000:]
    failed = failed_messages(run)
    assert any(m.startswith("p50 ") and "> 100 ms (http" in m for m in failed), failed
    assert any(m.startswith("p50 ") and "> 100 ms (checkout" in m for m in failed), (
        failed
    )
    assert "SLO verdict: FAIL" in run.output and "FAILED: p50 " in run.output
    assert "SLO targets: p50 < 100 ms" in run.output  # announced at the start
    # --junit-xml: a CI system's test report, a testcase per check, the failed ones failing
    cases = junit_cases(run)
    checks = [r for r in slo_rows(run) if r["metric"] != "verdict"]
    assert [(c["scope"], c["metric"]) for c in cases] == [
        (r["scope"], r["metric"]) for r in checks
    ]
    assert [c["failure"] for c in cases if c["failure"]] == failed, cases


def junit_cases(run) -> list[dict]:
    """The ``--junit-xml`` report of ``run`` (``junit.xml`` beside its CSVs), parsed as a CI
    system reads it: per testcase its classname (scope), name (metric), failure message and
    skipped message (a check not run)."""
    root = ElementTree.parse(run.csv_prefix.parent / "junit.xml").getroot()
    suite = root.find("testsuite")
    cases = [
        {
            "scope": case.get("classname"),
            "metric": case.get("name"),
            "failure": case.find("failure") is not None
            and case.find("failure").get("message"),
            "skipped": case.find("skipped") is not None
            and case.find("skipped").get("message"),
        }
        for case in suite.iter("testcase")
    ]
    failures = sum(1 for c in cases if c["failure"])
    skipped = sum(1 for c in cases if c["skipped"])
    counts = ("tests", "failures", "skipped")
    assert (root.tag, *map(suite.get, counts), *map(root.get, counts)) == (
        "testsuites",
        *(str(n) for n in (len(cases), failures, skipped) * 2),
    ), ElementTree.tostring(root)[:500]
    return cases


def test_generous_targets_pass_the_slow_service(request, slow_service_runs):
    run = case_result(slow_service_runs, request).locust_run()
    assert run.returncode == 0, run.output[-3000:]
    targets = {(r["scope"], r["metric"]): r["target"] for r in slo_rows(run)}
    assert (
        targets[("http", "p50_ms")] == "< 2000"
        and targets[("http", "p95_ms")] == "< 3000"
    )
    assert [r["actual"] for r in slo_rows(run) if r["metric"] == "verdict"] == ["pass"]
    cases = junit_cases(run)
    assert len(cases) == len(slo_rows(run)) - 1 and not any(c["failure"] for c in cases)


def test_a_p95_a_few_ms_over_its_target_fails_above_a_second(
    request, slow_service_runs
):
    """Every answer takes 1000-1040 ms, so the p95 is over 1020 ms. Locust's own rounding to two
    digits put them all at 1000 ms (under the clamp, the fastest one's time) and passed it."""
    run = case_result(slow_service_runs, request).locust_run()
    p95 = {r["scope"]: r for r in slo_rows(run) if r["metric"] == "p95_ms"}
    assert p95["http"]["passed"] == "false", p95["http"]
    # 1000-1040 ms plus the client's own time, in 10 ms buckets above a second (1349 seen on a
    # machine busy with other suites: the bound is for a p95 rounded far up, 2000 say)
    assert 1020 <= int(p95["http"]["actual"]) <= 1500, p95["http"]
    # a script reads the figures as plain numbers and the failed check's excess (CI gates)
    row = p95["http"]
    assert (row["target_value"], row["actual_value"]) == ("1020", row["actual"]), row
    assert row["over_by"] == str(int(row["actual"]) - 1020), row
    held = next(r for r in slo_rows(run) if r["metric"] == "error_rate")
    assert held["passed"] == "true" and held["over_by"] == "", held
    assert float(held["target_value"]) == 0.01 and float(held["actual_value"]) == 0, (
        held
    )
    assert run.returncode == 1, run.output[-3000:]


def test_a_five_nines_error_target_keeps_its_digits(request, slow_service_runs):
    """``--slo-error-rate 0.00001`` (99.999 % of requests answered): the verdict read "error
    rate <= 0.00%" and its failures "> 0.00%", the CSV's actual was 0.0000 and its
    target_value and over_by blank (the target ``1e-05`` was no plain number to a script)."""
    run = case_result(slow_service_runs, request).locust_run()
    assert run.returncode == 1, run.output[-3000:]
    assert "error rate <= 0.0010% (HTTP overall" in run.output, run.output[-3000:]
    row = next(
        r for r in slo_rows(run) if (r["scope"], r["metric"]) == ("http", "error_rate")
    )
    assert row["passed"] == "false" and row["target"] == "<= 0.00001", row
    assert re.fullmatch(
        r"error rate \d+\.\d{4}% > 0\.0010% \(http, \d+ of \d+ requests\)",
        row["message"],
    ), row
    failed, sent = map(
        int, re.search(r"(\d+) of (\d+) requests", row["message"]).groups()
    )
    assert float(row["target_value"]) == 0.00001, row
    assert float(row["actual_value"]) == pytest.approx(failed / sent, abs=1e-6), row
    assert float(row["over_by"]) == pytest.approx(failed / sent - 0.00001, abs=1e-6), (
        row
    )


def test_a_slow_report_passes_with_a_target_of_its_own(request, slow_service_runs):
    """Reports take 700 ms by design: their row (p95 < 3000 ms) judges them, and they leave the
    latency of http and batch_report, which the 500 ms default p95 would have failed. A
    journey row (batch_report's error rate) sets that journey's targets; one of a journey no
    persona of the run runs (edge_probes) is not run, and the run passes."""
    run = case_result(slow_service_runs, request).locust_run()
    rows = {(r["scope"], r["metric"]): r for r in slo_rows(run)}
    report = rows[("request POST batch_report: report", "p95_ms")]
    assert report["target"] == "< 3000" and report["passed"] == "true", report
    assert int(report["actual"]) >= 700, report  # what the default 500 ms would fail
    assert rows[("request POST batch_report: report", "p50_ms")]["target"] == "< 2000"
    assert (
        rows[("request POST batch_report: report", "error_rate")]["target"] == "<= 0.01"
    )
    stats = run.stats()
    sent = {
        "http": int(stats[("", "Aggregated")]["Request Count"]),
        "batch_report": sum(
            int(r["Request Count"])
            for (kind, name), r in stats.items()
            if kind == "POST" and name.startswith("batch_report: ")
        ),
    }
    for scope, requests in sent.items():
        # their latency is of the /pay requests alone (fast), their error rate of all
        assert int(rows[(scope, "p95_ms")]["actual"]) < 500, rows[(scope, "p95_ms")]
        assert f" of {requests} requests)" in rows[(scope, "error_rate")]["message"]
    for metric in ("error_rate", "journey_error_rate"):
        assert rows[("batch_report", metric)]["target"] == "<= 0.5", rows
    assert rows[("http", "error_rate")]["target"] == "<= 0.01", rows
    assert "POST batch_report: report: p50 < 2000 ms, p95 < 3000 ms" in run.output
    assert not any(c["failure"] for c in junit_cases(run))
    # a row of a journey the run leaves out holds: not run, the verdict a pass
    assert rows[("edge_probes", "requests")]["actual"] == "not run", rows
    assert re.search(r"SLO verdict: PASS \(\d+ checks, 1 not run\)", run.output)
    assert run.returncode == 0, run.output[-3000:]


def test_a_tight_request_target_and_a_misspelled_name_fail_naming_their_rows(
    request, slow_service_runs
):
    """/pay takes 150 ms: its row's 100 ms p95 fails it, under generous global targets; a
    row naming no request that ran, and a journey in the run that sent nothing, fail naming
    what ran. Rows of journeys the run leaves out (--exclude-tags errors, no operator in the
    personas file) are not run: they hold, saying why, in every output."""
    run = case_result(slow_service_runs, request).locust_run()
    failed = {
        (r["scope"], r["metric"]): r["message"]
        for r in slo_rows(run)
        if r["passed"] == "false" and r["metric"] != "verdict"
    }
    assert set(failed) == {
        ("request POST checkout: pay", "p95_ms"),
        ("request POST checkout: pya", "requests"),
        ("edge_probes", "requests"),
    }, failed
    assert re.fullmatch(
        r"p95 \d+ ms > 100 ms \(POST checkout: pay, \d+ ms over\)",
        failed[("request POST checkout: pay", "p95_ms")],
    ), failed
    assert failed[("request POST checkout: pya", "requests")].startswith(
        "no request named 'POST checkout: pya' (--slo-targets line 5): too short a run "
        "for it (its journey checkout ran), or misspelled? names seen: POST checkout: pay"
    ), failed
    assert failed[("edge_probes", "requests")].startswith(
        "no request of journey 'edge_probes' (--slo-targets line 6): did it run"
    ), failed
    assert "journeys seen: checkout" in failed[("edge_probes", "requests")]
    not_run = {
        (r["scope"], r["metric"]): r for r in slo_rows(run) if r["actual"] == "not run"
    }
    tagged_out = "is not in this run (left out by --exclude-tags errors)"
    assert {k: r["message"] for k, r in not_run.items()} == {
        ("error_probes", "requests"): f"not run: journey 'error_probes' {tagged_out}: "
        "its --slo-targets row (line 7) judged nothing",
        (
            "request POST error_probes: key reuse: replay",
            "requests",
        ): "not run: request "
        f"'POST error_probes: key reuse: replay' of journey 'error_probes' {tagged_out}: "
        "its --slo-targets row (line 8) judged nothing",
        (
            "batch_report",
            "requests",
        ): "not run: journey 'batch_report' is not in this run "
        "(no persona of the personas file runs it): its --slo-targets row (line 9) judged "
        "nothing",
    }, not_run
    assert all(r["passed"] == "true" for r in not_run.values()), not_run
    # the console, JUnit and HTML name the rows: failed, or not run (JUnit's skipped)
    checks = len(slo_rows(run)) - 1 - len(not_run)
    assert f"SLO verdict: FAIL (3 of {checks} checks failed, 3 not run)" in run.output
    assert "FAILED: no request named 'POST checkout: pya'" in run.output
    assert f"  not run: journey 'error_probes' {tagged_out}" in run.output
    junit = {(c["scope"], c["metric"]): c for c in junit_cases(run)}
    assert {k for k, c in junit.items() if c["failure"]} == set(failed), junit
    assert {k: c["skipped"] for k, c in junit.items() if c["skipped"]} == {
        k: r["message"] for k, r in not_run.items()
    }, junit
    html = run.html_path.read_text()
    assert "POST checkout: pya" in html and html.count('<tr class="not-run">') == 3
    assert run.returncode == 1, run.output[-3000:]


def test_locust_percentiles_stay_within_the_samples_as_the_verdicts_do(
    request, slow_service_runs
):
    """Answers of 1004-1009 ms fall in the 1000 and 1010 ms buckets. The verdict and the
    journeys keep a percentile within the fastest and slowest sample (p95 1008 ms), so Locust's
    tables, CSV and HTML must too: they showed 1010 beside a max of 1008, the verdict's 1008."""
    run = case_result(slow_service_runs, request).locust_run()
    for row in run.csv_rows("stats"):
        low = round(float(row["Min Response Time"]))
        high = round(float(row["Max Response Time"]))
        for column in ("50%", "95%", "99%", "100%"):
            assert low <= int(row[column]) <= high, (column, row)
    aggregated = run.stats()[("", "Aggregated")]
    http = {
        r["metric"]: r["actual_value"] for r in slo_rows(run) if r["scope"] == "http"
    }
    assert (http["p50_ms"], http["p95_ms"]) == (aggregated["50%"], aggregated["95%"])
    checkout = next(
        r for r in run.csv_rows("journeys") if r["persona"] == "All"
    )  # fmt: skip
    locust_journey = run.stats()[("journey", "checkout")]
    assert (checkout["p50_ms"], checkout["p95_ms"], checkout["p99_ms"]) == (
        locust_journey["50%"], locust_journey["95%"], locust_journey["99%"],
    ), (checkout, locust_journey)  # fmt: skip
    assert run.returncode == 0, run.output[-3000:]


#: The project's locustfile with a bug planted in the generator: every fifth amount drawn raises.
BUGGY_LOCUSTFILE = """
import sys
sys.path.insert(0, {root!r})
from locustfile import *  # noqa: F403  (the project's personas, profile and hooks)
import journeys.data

_draws = [0]
_amount_minor = journeys.data.PaymentData.amount_minor


def amount_minor(self, currency):
    _draws[0] += 1
    if _draws[0] % 5 == 0:
        raise KeyError(f"planted bug {{currency}}")
    return _amount_minor(self, currency)


journeys.data.PaymentData.amount_minor = amount_minor
"""


def test_an_exception_in_the_generator_fails_the_verdict(tmp_path, service):
    """A bug in the generator's own code (here one in five amounts raises) is Locust's to catch and
    tabulate; however few, it fails the run (exit 1) with one line naming it. Raised on a worker,
    it is counted on the master (a standalone run counts its own the same way)."""
    locustfile = tmp_path / "buggy.py"
    locustfile.write_text(BUGGY_LOCUSTFILE.format(root=str(ROOT)))
    personas = write_personas(tmp_path, SHOPPER)
    command = locust_command(
        tmp_path, "-f", str(locustfile), "--slo-error-rate", "1",
        personas=personas, users=2, run_time="3s",
    )  # fmt: skip
    port = free_port()
    worker = [sys.executable, "-m", "locust", "-f", str(locustfile), "--worker",
              "--master-host", "127.0.0.1", "--master-port", str(port),
              "--personas", str(personas)]  # fmt: skip
    procs = [locust_process(command + master_args(port, 1), service.url),
             locust_process(worker, service.url)]  # fmt: skip
    try:
        output = procs[0].communicate(timeout=90)[0]
    finally:
        for proc in procs:
            end_process(proc)
    run = LocustRun(
        procs[0].returncode, output, tmp_path / "run", tmp_path / "report.html"
    )
    errors = [r for r in slo_rows(run) if r["metric"] == "generator_errors"]
    assert len(errors) == 1 and errors[0]["passed"] == "false", slo_rows(run)
    raised = int(errors[0]["actual"])
    tabled = sum(int(r["Count"]) for r in run.csv_rows("exceptions"))
    assert raised >= 1 and raised == tabled, (raised, run.csv_rows("exceptions"))
    assert "planted bug" in errors[0]["message"], errors[0]
    assert "unexpected exception" in errors[0]["message"], errors[0]
    assert run.returncode == 1, output[-3000:]


# A reconciliation mismatch fails the verdict outright (even with --slo-error-rate 1): checked
# on the same run as the mismatch itself, in test_journeys.py's
# test_tampered_report_is_caught_and_fails_the_verdict_outright.


@pytest.fixture(scope="module")
def bad_target_runs(request, idle_service):
    """test_bad_targets_stop_before_any_traffic's runs, each case's own, two at once ahead of
    their checks (each only starts up and stops)."""

    def start(folder, params):
        # a previous run's reports in the same places (a CI workspace kept between builds)
        for name in ("run_slo.csv", "run_journeys.csv", "report.html"):
            (folder / name).write_text("from the previous run: verdict PASS\n")
        args = params["args"]
        if params["targets"] is not None:  # an --slo-targets file
            (folder / "slo-targets.csv").write_text(params["targets"])
            args = [*args, "--slo-targets", str(folder / "slo-targets.csv")]
        command = locust_command(
            folder, *args, personas=write_personas(folder, SHOPPER),
            users=1, run_time="3s",
        )  # fmt: skip
        return command, locust_env(idle_service.url, params["env"]), None

    return run_cases(request, "test_bad_targets_stop_before_any_traffic", start)


@pytest.mark.parametrize(
    ("args", "env", "needle", "targets"),
    [
        (
            ["--slo-error-rate", "5"],
            {},
            "--slo-error-rate must be a fraction between 0 and 1",
            None,
        ),
        (
            ["--slo-p95-ms", "fast"],
            {},
            "--slo-p95-ms must be a number, got 'fast'",
            None,
        ),
        (
            [],
            {"LOCUST_SLO_P50_MS": "-3"},
            "--slo-p50-ms must be a positive number, got '-3'",
            None,
        ),
        (  # swapped: a p50 above the p95 target could never fail before the p95 does
            ["--slo-p50-ms", "600", "--slo-p95-ms", "500"],
            {},
            (
                "--slo-p50-ms 600 is above --slo-p95-ms 500: set the p50 target at or below "
                "the p95 one"
            ),
            None,
        ),
        (  # --slo-targets files: each problem names the file, line, column and the fix
            [],
            {"LOCUST_SLO_TARGETS": "no-such-slo-targets.csv"},
            (
                "no-such-slo-targets.csv: file not found in ",
                "Pass --slo-targets PATH (or LOCUST_SLO_TARGETS)",
            ),
            None,
        ),
        (
            [],
            {},
            (
                (
                    "slo-targets.csv, line 1, column p99_ms: unknown column (did you mean "
                    "'p95_ms'?). Known columns: name, p50_ms, p95_ms, error_rate"
                ),
            ),
            "name,p99_ms\nPOST checkout: pay,200\n",
        ),
        (
            [],
            {},
            (
                "slo-targets.csv: 5 problems. Fix the file and run again:",
                "slo-targets.csv, line 2, column p95_ms: 'fast' is not a number",
                "slo-targets.csv, line 3, column error_rate: -0.1 is not a fraction from 0 to 1",
                "slo-targets.csv, line 4, column p50_ms: 300 is above p95_ms 200",
                (
                    "slo-targets.csv, line 5, column name: 'POST checkout: pay' is already "
                    "on line 2. Keep one row per name"
                ),
                (
                    "slo-targets.csv, line 6, column name: 'checkot' is neither a request "
                    "nor a journey (did you mean 'checkout'?)"
                ),
            ),
            (
                "name,p50_ms,p95_ms,error_rate\n"
                "POST checkout: pay,,fast,\n"
                "checkout,,,-0.1\n"
                "POST batch_report: report,300,200,\n"
                "POST checkout: pay,,200,\n"
                "checkot,,200,\n"
            ),
        ),
    ],
)
def test_bad_targets_stop_before_any_traffic(
    request, bad_target_runs, idle_service, args, env, needle, targets
):
    service = idle_service
    case = case_result(bad_target_runs, request)
    run = case.locust_run()
    assert run.returncode == 2, run.output[-2000:]
    for part in (needle,) if isinstance(needle, str) else needle:
        assert part in run.output, run.output[-2000:]
    assert "no traffic was sent" in run.output.lower()
    assert "Traceback" not in run.output
    # no report, neither Locust's emptied CSVs nor an earlier run's verdict (docs/ci.md)
    assert not list(case.folder.glob("run_*.csv")), list(case.folder.iterdir())
    assert not (case.folder / "report.html").exists()
    assert service.query("SELECT count(*) FROM payments") == [(0,)]


@pytest.mark.parametrize(
    ("sig", "workers", "profile"),
    [
        (signal.SIGTERM, 0, "steady"),
        (signal.SIGINT, 0, "spike"),
        (signal.SIGTERM, 0, "spike"),
        (signal.SIGTERM, 1, "steady"),
        (signal.SIGTERM, 1, "spike"),
    ],
    ids=[
        "SIGTERM",
        "SIGINT-spike",
        "SIGTERM-spike",
        "SIGTERM-master",
        "SIGTERM-master-spike",
    ],
)
def test_a_run_stopped_before_its_run_time_fails_and_keeps_its_reports(
    tmp_path, start_service, sig, workers, profile
):
    """``docker stop`` or Ctrl-C 30 s early: the verdict fails and says how much of the run there
    was; the CSV files and the HTML report (which Locust skips on SIGTERM) are all written, and
    they count the journeys and payments the signal cut off, as the end of the run time would.
    Ctrl-C in a spike's baseline: the phase report says the run stopped there and that the
    peak and the recovery never ran (it read "not enough requests to compare (741 and 0)").

    The service answers in 300 ms, so at the signal some of the 4 users are waiting for one."""
    service = start_service("--latency-ms", "300")
    # no think time: at the signal every user is in a journey (with 0-50 ms, users whose
    # journeys run in step can all sit between two)
    personas = write_personas(
        tmp_path, *(p.replace(",0,0.05", ",0,0") for p in (SHOPPER, OPS))
    )
    # Locust's default stop: users are killed mid-journey (no --stop-timeout grace)
    command = locust_command(
        tmp_path, "--seed", "43", "--stop-timeout", "0", "--profile", profile,
        personas=personas, users=4, run_time="30s",
    )  # fmt: skip
    started = locust_processes(command, service.url, workers, personas)
    locust = started[0]
    try:
        service.wait_for_payments(locust)
        time.sleep(1)
        locust.send_signal(sig)
        output, _ = locust.communicate(timeout=30)
    finally:
        for proc in started:  # the master has ended (or failed the test): end the rest
            end_process(proc, timeout=15)
    run = LocustRun(
        locust.returncode, output, tmp_path / "run", tmp_path / "report.html"
    )
    assert run.returncode == 1, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "KeyboardInterrupt" not in output, output[-3000:]
    stopped = next(r for r in slo_rows(run) if r["metric"] == "run_time")
    assert (stopped["target"], stopped["passed"]) == ("30 s", "false"), stopped
    ran = int(stopped["actual_value"])
    assert (stopped["target_value"], stopped["over_by"]) == ("30", str(30 - ran)), (
        stopped
    )
    assert (
        "stopped after" in stopped["message"]
        and "of its 30 s run time" in stopped["message"]
    )
    assert "SLO verdict: FAIL" in output and "stopped after" in output
    if profile == "spike":  # the spike (at 10 s) never came: the report says so
        phases = run.csv_rows("profile")
        assert [r["phase"] for r in phases] == ["baseline"], phases
        assert float(phases[0]["end_s"]) < 10, phases
        assert re.search(
            r"stopped at \d+(\.\d)? s of its 30 s run time, in the baseline "
            r"\(\d+(\.\d)? of its 10 s\); never ran: peak, recovery",
            output,
        ), output[-2000:]
        assert "peak vs baseline: not compared: the peak never ran" in output
        assert "recovery vs baseline: not compared: the recovery never ran" in output
    assert (
        run.csv_rows("journeys")
        and run.stats()[("", "Aggregated")]["Request Count"] != "0"
    )
    html = run.html_path.read_text()
    assert '<section id="journey-results">' in html and "stopped after" in html
    # every journey started has an outcome; those in flight at the signal are "interrupted"
    rows = run.csv_rows("journeys")
    for row in rows:
        ended = sum(int(row[o] or 0) for o in OUTCOMES)
        assert int(row["started"]) == ended, row
    assert sum(int(r["interrupted"] or 0) for r in rows if r["persona"] == "All") > 0, (
        rows
    )
    # the ledger holds every charge the service made: paid, or "unknown" when cut off in flight
    charged = dict(
        service.query(
            "SELECT currency, count(*) FROM payments WHERE status = 'succeeded' GROUP BY 1"
        )
    )
    ledger = {r["currency"]: r for r in run.csv_rows("ledger")}
    for currency, count in charged.items():
        paid = int(ledger[currency]["payments"])
        unknown = int(ledger[currency]["unknown_payments"])
        assert paid <= count <= paid + unknown, (currency, count, ledger[currency])
    # the history's last row has the final totals (it is sampled once a second)
    last = [r for r in run.csv_rows("stats_history") if r["Name"] == "Aggregated"][-1]
    final = run.stats()[("", "Aggregated")]
    assert (last["Total Request Count"], last["Total Failure Count"]) == (
        final["Request Count"], final["Failure Count"],
    ), (last, final)  # fmt: skip


def html_report_requests(html: str) -> int:
    """The requests in the Aggregated row of Locust's own part of an HTML report."""
    line = html.split("window.templateArgs = ", 1)[1].split("\n", 1)[0]
    stats = json.loads(line.rstrip(";"))["requests_statistics"]
    return next(r["num_requests"] for r in stats if r["name"] == "Aggregated")


def test_ctrl_c_to_a_processes_master_reports_the_final_stats_in_html(
    tmp_path, start_service
):
    """One Ctrl-C stops a ``--processes`` master and its workers at once. Locust writes
    ``--html`` at once, before the workers' final reports: the report's statistics said 27
    requests where the CSV files and its own journeys section counted 39."""
    service = start_service("--latency-ms", "300")
    personas = write_personas(tmp_path, SHOPPER, OPS)
    command = locust_command(
        tmp_path, "--seed", "43", *processes_args(),
        personas=personas, users=4, run_time="30s",
    )  # fmt: skip
    locust = locust_processes(command, service.url)[0]
    try:
        service.wait_for_payments(locust)
        time.sleep(2)
        locust.send_signal(signal.SIGINT)
        output, _ = locust.communicate(timeout=60)
    finally:
        end_process(locust, timeout=15)
    run = LocustRun(
        locust.returncode, output, tmp_path / "run", tmp_path / "report.html"
    )
    assert run.returncode == 1, output[-3000:]
    requests = int(run.stats()[("", "Aggregated")]["Request Count"])
    assert html_report_requests(run.html_path.read_text()) == requests > 0


@pytest.mark.parametrize("workers", [0, 1], ids=["standalone", "master"])
def test_ctrl_c_while_users_finish_their_journeys_counts_them_interrupted(
    tmp_path, start_service, workers
):
    """The run time is over and the users finish their journeys (``--stop-timeout 20``): a
    Ctrl-C then cuts that grace short. The journeys still running end as interrupted and their
    payments in flight go into the ledger as unknown (it wrote 2 started and no outcome). A
    worker hears nothing from its master while it stops: the master waits for its final report
    (it wrote its outputs without it: 2 started, no outcome).

    Each batch is 20 payments of 300 ms: every journey is mid-batch when the run time ends."""
    service = start_service("--latency-ms", "300")
    personas = write_personas(
        tmp_path, "ops,operator,1,visa,USD,1,500,0,0,20,en_US,0,0.05"
    )
    command = locust_command(
        tmp_path, "--stop-timeout", "20", "--slo-p50-ms", "1000", "--slo-p95-ms", "2000",
        personas=personas, users=2, run_time="2s",
    )  # fmt: skip
    started = locust_processes(command, service.url, workers, personas)
    locust = started[0]
    try:
        lines = []
        for line in locust.stdout:  # until the run time is over (Locust says so)
            lines.append(line)
            if "--run-time limit reached" in line:
                break
        time.sleep(1)
        locust.send_signal(signal.SIGINT)
        output = "".join(lines) + locust.communicate(timeout=30)[0]
    finally:
        for proc in started:
            end_process(proc, timeout=15)
    run = LocustRun(
        locust.returncode, output, tmp_path / "run", tmp_path / "report.html"
    )
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[
        -3000:
    ]
    (row,) = [r for r in run.csv_rows("journeys") if r["persona"] == "All"]
    assert int(row["started"]) == sum(int(row[o] or 0) for o in OUTCOMES), row
    # standalone: cut short; the master: its worker finished them within the grace
    ended = "interrupted" if not workers else "reconciled"
    assert int(row[ended]) == 2, row
    # its whole run time ran: no early stop, no worker lost, and nothing else failed
    assert {"run_time", "workers_lost"}.isdisjoint(r["metric"] for r in slo_rows(run))
    assert run.returncode == 0, output[-3000:]
    (usd,) = run.csv_rows("ledger")
    (charged,) = service.query(
        "SELECT count(*) FROM payments WHERE status = 'succeeded'"
    )
    paid, unknown = int(usd["payments"]), int(usd["unknown_payments"])
    assert paid <= charged[0] <= paid + unknown, (usd, charged)
    assert unknown == (0 if workers else 2), usd
    if workers:
        assert "Waiting up to 25 s for 1 worker to finish" in output, output[-3000:]


def test_a_web_ui_test_is_judged_by_its_own_run_time(tmp_path, service):
    """Locust keeps an earlier test's run time in its options when the start form's field is
    left empty; the test started that way has no plan, so stopping it is not "stopped early".
    The first test is an --autostart one: its --run-time is the plan of that test only."""
    locust, ui = start_web_ui(
        tmp_path, service.url, "--autostart", "--run-time", "30s", "--users", "1",
        personas=write_personas(tmp_path, SHOPPER),
    )  # fmt: skip
    try:
        service.wait_for_payments(locust)  # the test is under way once it has paid
        post_form(ui + "/stop")
        time.sleep(2.1)  # Locust answers /stats/requests from a 2 s cache
        # stopped early: the SLO tab and its CSV say so, as the end of the run would
        slo_tab = _slo_tab(ui)
        stopped_csv = get_text(ui + "/journeys/slo/csv")
        post_form(
            ui + "/swarm", user_count=1, spawn_rate=1, host=service.url, run_time=""
        )
        time.sleep(1.5)
        running_csv = get_text(ui + "/journeys/slo/csv")
        post_form(ui + "/stop")
        stopped_again_csv = get_text(ui + "/journeys/slo/csv")
    finally:
        output = end_process(locust)
    assert any(
        row["scope"] == "run"
        and row["metric"] == "run_time"
        and row["result"] == "FAIL"
        for row in slo_tab
    ), slo_tab
    assert slo_tab[0]["result"] == "FAIL", slo_tab  # the verdict
    assert "stopped after" in stopped_csv and "run_time" in stopped_csv, stopped_csv
    # the next test has no run time: no such check, then or at the end
    assert "run_time" not in running_csv, running_csv
    assert "run_time" not in stopped_again_csv, stopped_again_csv
    assert locust.returncode == 0, output[-3000:]
    assert "run time" not in output.split("SLO verdict")[-1], output[-3000:]


def _slo_tab(ui: str) -> list[dict]:
    """The SLO tab's rows as the web UI receives them."""
    stats = json.loads(get_text(ui + "/stats/requests"))
    return next(t["data"] for t in stats["extended_stats"] if t["key"] == "slo")


def test_the_lost_workers_message_counts_workers():
    from journeys.results.slo import lost_workers_message

    assert lost_workers_message(["w1"]).startswith(
        "1 worker lost before its final report (w1): what it counted since its last report"
    )
    assert lost_workers_message(["w1", "w2"]).startswith(
        "2 workers lost before their final report (w1, w2): what they counted since their"
    )


def test_the_left_workers_message_says_who_left_when_and_what_it_did_to_the_load():
    from journeys.results.distributed import Departure
    from journeys.results.slo import left_workers_message

    w1 = Departure("w1", 4.2, 3, others=True)
    assert left_workers_message([w1], 10.0) == (
        "Worker w1 left at 4 s of the 10 s run: its journeys are counted, but its 3 users "
        "stopped, so the load was lower than asked until Locust started them again on the "
        "other workers (run)"
    )
    assert left_workers_message([w1]).startswith("Worker w1 left 4 s into the run: ")
    w2 = Departure("w2", 6.0, 1, others=False)
    assert left_workers_message([w1, w2], 7.0) == (
        "2 workers left before the end of the 7 s run (w1 at 4 s, w2 at 6 s): their journeys "
        "are counted, but their 4 users stopped, so the load was lower than asked, and no "
        "worker was left to run them (run)"
    )


def test_the_personas_check_counts_workers(monkeypatch):
    from journeys import same_personas

    monkeypatch.setattr(same_personas, "differing", ["w1"])
    assert same_personas.check().actual == "1 worker differs"
    monkeypatch.setattr(same_personas, "differing", ["w1", "w2"])
    assert same_personas.check().actual == "2 workers differ"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "name;p95_ms\nPOST checkout: pay;200\n",
            "line 1: the columns are separated by ';', but the file must be comma-separated",
        ),
        (
            "name,p95_ms\npost checkout: pay,200\n",
            "(did you mean 'POST checkout: pay'? the method is upper-case",
        ),
        (
            "name,p95_ms\njourney checkout,200\n",
            "judged by --slo-journey-p95-ms; for the journey's requests write 'checkout'",
        ),
        (
            "name,p95_ms\nAggregated,200\n",
            "(all requests together are judged by the --slo-* options: scope http)",
        ),
        (
            "name,error_rate\nPOST checkout: pay,1%\n",
            "line 2, column error_rate: '1%' is not a number. Write 0.01 for 1%",
        ),
        (  # a name no request has, that would reach every report: refused, not quoted
            "name,p95_ms\nPOST 4242 4242 4242 4242,200\n",
            "line 2, column name: holds a card number or the internal token",
        ),
        ("# nothing yet\n", "is empty. Add the header name,p50_ms,p95_ms,error_rate"),
        ("name,p95_ms\n", "has a header but no rows"),
        ("p95_ms\n200\n", "column name: required column is missing"),
    ],
)
def test_an_slo_targets_file_names_what_to_fix(tmp_path, text, needle):
    """What a spreadsheet or a guess writes into an --slo-targets file: each problem says the
    fix (the runs above show that such a file stops the run before any traffic)."""
    from journeys.persona_csv import PersonaFileError
    from journeys.results import slo_targets_file

    path = tmp_path / "slo-targets.csv"
    path.write_text(text)
    with pytest.raises(PersonaFileError) as caught:
        slo_targets_file.read(path)
    assert needle in str(caught.value), str(caught.value)
    assert "4242" not in str(caught.value)


def test_an_slo_targets_file_it_cannot_read_names_the_user_and_the_fix(
    tmp_path, monkeypatch
):
    """A targets file mounted into the container keeps its host mode (0600 under a umask of
    077), and a host path that does not exist becomes a folder (docker run -v): both said only
    'cannot be read (Permission denied|Is a directory). Check the path and permissions'.
    tests/docker/verify.sh sees the real ones; here, as root reads every file, the refusal is
    Path.read_bytes'."""
    import os
    from pathlib import Path

    from journeys.persona_csv import PersonaFileError
    from journeys.results import slo_targets_file

    folder = tmp_path / "slo-targets.csv"
    folder.mkdir()
    with pytest.raises(PersonaFileError) as caught:
        slo_targets_file.read(folder)
    assert f"{folder}: is a folder, not a file" in str(caught.value), str(caught.value)
    assert "docker run -v" in str(caught.value), str(caught.value)

    def refused(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refused)
    with pytest.raises(PersonaFileError) as caught:
        slo_targets_file.read(tmp_path / "private.csv")
    assert f"this user (uid {os.getuid()}) may not read it" in str(caught.value)
    assert "chmod a+r" in str(caught.value), str(caught.value)


def test_an_slo_targets_row_p50_above_the_p95_it_is_judged_with_is_refused(tmp_path):
    """A row with a p50 target and no p95 one is judged against --slo-p95-ms: a p50 above
    it could never fail, as a swapped pair of flags (refused at start, and in the web UI's
    form when a lower --slo-p95-ms is typed there: both read the targets here)."""
    import argparse

    from journeys.results import slo

    path = tmp_path / "slo-targets.csv"
    path.write_text("name,p50_ms\nPOST batch_report: report,300\n")
    slo.read_rows_at_start(str(path))
    try:
        options = argparse.Namespace(slo_p95_ms="500", slo_targets=str(path))
        assert slo.SloTargets.from_options(options, name_sources=False).rows
        options.slo_p95_ms = "200"
        with pytest.raises(slo.SloConfigError) as caught:
            slo.SloTargets.from_options(options, name_sources=False)
    finally:
        slo.read_rows_at_start(None)
    assert (
        f"{path}, line 2 (POST batch_report: report), column p50_ms: 300 is above "
        "--slo-p95-ms 200, the p95 target it is judged with (its p95_ms is empty)"
    ) in str(caught.value)
