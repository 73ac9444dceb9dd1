"""``--baseline``: a run compared with an earlier one (real Locust against real services).

One baseline run (a service taking 100 ms per payment) is written first; then, two at once, a
run like it (passes) and one against a service taking 300 ms (fails, exit 1, naming the rows);
and runs whose baseline cannot be used stop with exit 2 before any traffic.
"""

from __future__ import annotations

import argparse
import functools
import html
import os
import re
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

from journeys.argtypes import growth
from journeys.results.baseline import Rule, compare
from journeys.results.baseline_csv import Figures
from journeys.results.stats import FINISHED_OUTCOMES
from tests.conftest import (
    ROOT,
    OwnServices,
    RunPlan,
    case_result,
    launch_service,
    locust_command,
    locust_env,
    run_cases,
    run_locust,
    run_tests,
    write_personas,
)

#: no declines: each checkout is one payment, so its journey p95 is the payment's (with declines
#: it is one, two or three payments' time, and flips between them from run to run)
SHOPPER = "shopper,customer,3,visa|mastercard,USD|EUR,5,80,0,2,,en_US,0,0.05"
#: one user, a journey every 2 s: too few to compare
SLOWPOKE = "slowpoke,customer,1,visa,USD,5,80,0,0,,en_US,2,2"
#: a persona the baseline did not have
NEWCOMER = "newcomer,customer,1,visa,EUR,5,80,0,0,,en_US,2,2"
#: generous targets: only the baseline can fail these runs
GENEROUS = ("--slo-p50-ms", "2000", "--slo-p95-ms", "3000")


@pytest.fixture(scope="module")
def baseline_runs(request, tmp_path_factory):
    """The compared runs, each against a service of its own, after the baseline run (written
    once, when the first of them starts)."""
    services = OwnServices()

    @functools.cache
    def baseline() -> str:
        folder = tmp_path_factory.mktemp("baseline")
        service = launch_service(folder, "--latency-ms", "100")
        services.services.append(service)
        run = run_locust(
            folder, service.url, *GENEROUS, users=4, run_time="3s",
            personas=write_personas(folder, SHOPPER, SLOWPOKE),
        )  # fmt: skip
        assert run.returncode == 0, run.output[-3000:]
        return str(run.csv_prefix)

    @functools.cache
    def tiny_baseline() -> str:
        """The baseline's files with every row cut to 5 requests (journeys): none to compare."""
        prefix = baseline()
        tiny = f"{prefix}-tiny"
        stats = pd.read_csv(f"{prefix}_stats.csv", dtype=str, keep_default_na=False)
        stats["Request Count"], stats["Failure Count"] = "5", "0"
        stats.to_csv(f"{tiny}_stats.csv", index=False)
        journeys = pd.read_csv(
            f"{prefix}_journeys.csv", dtype=str, keep_default_na=False
        )
        for outcome in FINISHED_OUTCOMES:
            journeys[outcome] = "5" if outcome == "succeeded" else "0"
        journeys.to_csv(f"{tiny}_journeys.csv", index=False)
        return tiny

    def starter(
        latency_ms: str, *personas: str, users: int = 4, tiny: bool = False, min_ms="10"
    ):
        return services.starter(
            lambda folder: RunPlan(
                ("--latency-ms", latency_ms),
                (
                    *GENEROUS,
                    "--baseline", tiny_baseline() if tiny else baseline(),
                    "--junit-xml", str(folder / "junit.xml"),
                    "--baseline-min-ms", min_ms,
                ),
                personas=write_personas(folder, *personas), users=users, run_time="3s",
            )
        )  # fmt: skip

    try:
        yield run_tests(
            request,
            {
                # a busy machine adds tens of ms to a p95 now and then: only a growth of
                # 150 ms or more regresses here
                "test_a_run_like_its_baseline_passes": starter(
                    "100", SHOPPER, SLOWPOKE, NEWCOMER, users=5, min_ms="150"
                ),
                # 500 ms: far over the baseline's 100 ms on a busy machine too; 10 users: 20
                # shopper journeys or more in 3 s
                "test_a_run_slower_than_its_baseline_fails_naming_the_rows": starter(
                    "500", SHOPPER, SLOWPOKE, users=10
                ),
                "test_a_baseline_that_compares_nothing_fails": starter(
                    "100", SHOPPER, SLOWPOKE, tiny=True
                ),
            },
            parallel=3,  # they mostly wait on a slow service
        )
    finally:
        services.stop()


def baseline_rows(run) -> dict[str, dict]:
    return {r["metric"]: r for r in run.csv_rows("slo") if r["scope"] == "baseline"}


def test_a_run_like_its_baseline_passes(request, baseline_runs):
    run = case_result(baseline_runs, request).locust_run()
    assert run.returncode == 0, run.output[-3000:]
    rows = baseline_rows(run)
    for row in ("POST checkout: pay", "Aggregated", "journey checkout/shopper"):
        assert rows[f"p95_ms ({row})"]["passed"] == "true", rows
        assert rows[f"failure_share ({row})"]["passed"] == "true", rows
    # too few journeys to compare, and a persona the baseline had not: said, not failed
    slowpoke = rows["not_compared (journey checkout/slowpoke)"]
    assert (
        slowpoke["passed"] == "true" and "20 in each are needed" in slowpoke["message"]
    )
    newcomer = rows["only_in_this_run"]
    assert "journey checkout/newcomer" in newcomer["message"], newcomer
    assert "baseline: not compared: " in run.output, run.output[-3000:]
    assert "baseline: 1 row only in this run" in run.output


def test_a_run_slower_than_its_baseline_fails_naming_the_rows(request, baseline_runs):
    run = case_result(baseline_runs, request).locust_run()
    assert run.returncode == 1, run.output[-3000:]
    failed = {
        r["metric"]: r
        for r in run.csv_rows("slo")
        if r["passed"] == "false" and r["metric"] != "verdict"
    }
    # only the baseline failed it: its rows, each with both p95s and the growth
    assert {r["scope"] for r in failed.values()} == {"baseline"}, failed
    pay = failed["p95_ms (POST checkout: pay)"]
    now, before = int(pay["actual"]), int(pay["message"].split(" vs ")[1].split()[0])
    assert now >= 500 > before, pay
    assert pay["message"] == (
        f"p95 {now} ms vs {before} ms in the baseline: +{now - before} ms "
        f"(+{(now - before) / before:.0%}), over +25% and at least +10 ms (POST checkout: pay)"
    )
    assert float(pay["over_by"]) > 0, pay
    assert {"p95_ms (Aggregated)", "p95_ms (journey checkout/shopper)"} <= set(
        failed
    ), [r["message"] for r in run.csv_rows("slo") if "journey" in r["metric"]]
    assert f"FAILED: {pay['message']}" in run.output
    junit = (run.csv_prefix.parent / "junit.xml").read_text()
    assert 'classname="baseline" name="p95_ms (POST checkout: pay)"' in junit
    # which run was the baseline, and the rule: in the log at start (the web UI's Logs tab)
    # and in the HTML report, whose checks say only "in the baseline"
    rule = (
        "a row fails when its p95 grows by over +25% and at least +10 ms, or its failure "
        "share by more than 1 point"
    )
    said = re.search(
        r"Baseline: (\S+ \(\d+ HTTP rows, \d+ journey rows\); (.*))", run.output
    )
    assert said and said[2] == rule, run.output[-3000:]
    assert f"<p>Baseline: {html.escape(said[1])}</p>" in run.html_path.read_text()


def test_a_baseline_that_compares_nothing_fails(request, baseline_runs):
    """Every row of the baseline under 20 requests: a gate that compared nothing would pass
    any build, so it fails (exit 1), saying why."""
    run = case_result(baseline_runs, request).locust_run()
    assert run.returncode == 1, run.output[-3000:]
    rows = baseline_rows(run)
    assert not any(m.startswith(("p95_ms", "failure_share")) for m in rows), rows
    compared = rows["compared"]
    assert compared["passed"] == "false" and compared["actual"] == "0 rows", compared
    assert (
        "no row had 20 requests (or finished journeys) in both runs"
        in compared["message"]
    )
    assert f"FAILED: {compared['message']}" in run.output


def test_a_p95_must_grow_by_the_share_and_the_ms_to_regress():
    """2 → 4 ms doubles but is noise (under +10 ms); 100 → 120 ms is +20 ms but within +25%."""
    rule = Rule(0.25, 10)
    before = {
        "a": Figures(50, 0, 2),
        "b": Figures(50, 0, 100),
        "c": Figures(50, 0, 100),
    }
    now = {"a": Figures(50, 0, 4), "b": Figures(50, 0, 125), "c": Figures(50, 1, 126)}
    checks = {c.metric: c for c in compare(before, now, rule, "request")}
    assert (
        checks["p95_ms (a)"].passed
        and "under +10 ms, noise" in checks["p95_ms (a)"].message
    )
    assert checks["p95_ms (b)"].passed and checks["p95_ms (b)"].target == "<= 125"
    assert not checks["p95_ms (c)"].passed
    # 0 → 2% failed is more than a point; the failure share is judged on its own
    assert not checks["failure_share (c)"].passed
    assert "+2.00 points, over +1 point" in checks["failure_share (c)"].message


def test_a_tolerance_written_as_a_percentage_names_the_fraction():
    with pytest.raises(argparse.ArgumentTypeError, match="write 0.25 for 25%"):
        growth("25%")
    assert growth("0.25") == 0.25 and growth("2") == 2


@pytest.fixture(scope="module")
def bad_baseline_runs(request, idle_service):
    def start(folder, params):
        # an earlier run's files at this run's own --csv prefix (folder/run), and a file
        # that is no Locust stats CSV
        for name in ("run_stats.csv", "run_journeys.csv"):
            (folder / name).write_text("Type,Name\nkept,as it was\n")
            # an earlier run's, not a live run's (those a setup stop leaves alone)
            os.utime(folder / name, (time.time() - 60, time.time() - 60))
        (folder / "other_stats.csv").write_text("Method,Name,Error,Occurrences\n")
        (folder / "other_journeys.csv").write_text("journey,persona\n")
        # one case's prefix is set by its variable, which the stop names; the others' by the flag
        given = str(folder / params["baseline"])
        by_env = params["baseline"] == "run_stats.csv"
        command = locust_command(
            folder, *(() if by_env else ("--baseline", given)), users=1,
            run_time="3s", personas=write_personas(folder, SHOPPER),
        )  # fmt: skip
        env = {"LOCUST_BASELINE": given} if by_env else {}
        return command, locust_env(idle_service.url, env), None

    # four at a time: each stops at start
    return run_cases(
        request, "test_a_baseline_that_cannot_be_used_stops_the_run", start, parallel=4
    )


@pytest.mark.parametrize(
    ("baseline", "needle"),
    [
        (
            "missing",
            "missing: no file {folder}/missing_stats.csv (--baseline is the --csv prefix",
        ),
        (
            "other",
            "{folder}/other_stats.csv is not a Locust stats CSV: it has no column Type,",
        ),
        (
            "run",
            "... is at this run's own --csv prefix {folder}/run: Locust would overwrite",
        ),
        ("run_stats.csv", "... is at this run's own --csv prefix {folder}/run: Locust"),
        (
            "other_stats.csv",
            "(... is one of the baseline's files, not its prefix): give",
        ),
    ],
    ids=["missing", "not-locusts", "own-prefix", "own-file", "a-file-not-a-prefix"],
)
def test_a_baseline_that_cannot_be_used_stops_the_run(
    request, bad_baseline_runs, idle_service, baseline, needle
):
    case = case_result(bad_baseline_runs, request)
    assert case.returncode == 2, case.output[-2000:]
    expected = needle.format(folder=case.folder).replace(
        "...", str(case.folder / baseline)
    )
    assert expected in case.output and "No traffic was sent." in case.output
    source = (
        f"  The path is set by LOCUST_BASELINE='{case.folder / baseline}': fix it there"
    )
    if baseline == "run_stats.csv":
        assert f"{source} or remove it.\nNo traffic was sent." in case.output
    else:  # typed on the command line: no source to name
        assert "The path is set by" not in case.output, case.output[-2000:]
    assert "Traceback" not in case.output
    assert idle_service.query("SELECT count(*) FROM payments") == [(0,)]
    if baseline.startswith("run"):
        # the baseline stays as it was: not emptied by Locust, not removed
        kept = (case.folder / "run_stats.csv").read_text()
        assert kept == "Type,Name\nkept,as it was\n"


def test_the_images_help_prints_whatever_the_setup(tmp_path):
    """``docker run <image> --help`` (``docker/help.py``: it imports the locustfile for this
    tool's options) prints the help with a ``LOCUST_BASELINE`` that cannot be read, as a
    compose ``.env`` may hold, a taken web UI port and a missing personas file: the setup
    checks would stop a run with exit 2, and remove an earlier run's reports at its prefix."""
    earlier = tmp_path / "run_slo.csv"
    earlier.write_text("scope,metric\nrun,verdict\n")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        env = locust_env(
            "http://127.0.0.1:9",
            {
                "LOCUST_BASELINE": str(tmp_path / "missing"),
                "LOCUST_CSV": str(tmp_path / "run"),
                "LOCUST_WEB_HOST": "127.0.0.1",
                "LOCUST_WEB_PORT": str(taken.getsockname()[1]),
                "LOCUST_PERSONAS": str(tmp_path / "no-personas.csv"),
            },
        )
        proc = subprocess.run(
            [sys.executable, str(ROOT / "docker" / "help.py"), "--help"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    for option in ("--baseline", "--baseline-tolerance", "--baseline-min-ms"):
        assert f"  {option} " in proc.stdout, proc.stdout[-2000:]
    assert earlier.exists(), proc.stderr[-2000:]
