"""Faults the service can throw at a run: it keeps going, counts honestly, and the books balance.

Each test runs real Locust against the real reference service with one fault knob (or kills and
restarts the service mid-run), then checks: the run ended on time with the SLO exit code, the
failures are counted under the right request, no journey was charged twice, and a report over the
run equals the generator's own ledger (``PREFIX_ledger.csv``) of confirmed payments.
"""

from __future__ import annotations

import csv
import shutil
import signal
import subprocess
import sys
import time

import pytest
import requests

from journeys.data import card_pool
from payment_contract import BRANDS, DECLINING_TEST_CARDS
from tests.conftest import (
    ROOT,
    TOKEN,
    OwnServices,
    RunPlan,
    case_result,
    end_process,
    free_port,
    launch_service,
    locust_command,
    locust_env,
    locust_process,
    master_args,
    run_cases,
    run_locust,
    run_tests,
    worker_command,
    write_personas,
)

CUSTOMERS = "shopper,customer,3,visa|mastercard,USD|EUR,5,80,0.15,2,,en_US,0,0.05"
OPERATORS = "ops,operator,1,visa|amex,USD|JPY,1,500,0.1,0,4,en_US,0,0.05"
EVERYONE = (
    CUSTOMERS,
    OPERATORS,
    "prober,prober,1,visa|amex|jcb,USD|JPY,1,100,0,0,,en_US,0,0.05",
)


def ledger(prefix) -> dict[str, dict[str, int]]:
    with open(f"{prefix}_ledger.csv", newline="") as f:
        return {
            r["currency"]: {k: int(v) for k, v in r.items() if k != "currency"}
            for r in csv.DictReader(f)
        }


def report_totals(service) -> dict:
    r = requests.post(
        service.url + "/internal/generate-report",
        json={},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    r.raise_for_status()
    return r.json()["totals"]


def assert_books_balance(run, service) -> None:
    """Every confirmed payment is in the report; the report holds at most the unknown ones more."""
    books, report = ledger(run.csv_prefix), report_totals(service)
    assert books, "the ledger is empty"
    for currency in set(books) | set(report):
        mine = books.get(
            currency,
            {
                "payments": 0,
                "amount_minor": 0,
                "unknown_payments": 0,
                "unknown_amount_minor": 0,
            },
        )
        theirs = report.get(currency, {"count": 0, "amount": 0})
        extra = theirs["count"] - mine["payments"]
        assert 0 <= extra <= mine["unknown_payments"], (currency, mine, theirs)
        if not mine["unknown_payments"]:
            assert theirs["amount"] == mine["amount_minor"], (currency, mine, theirs)


def assert_never_charged_twice(service) -> None:
    twice = service.query(
        "SELECT json_extract(metadata, '$.journey_id'), count(*) FROM payments WHERE status = 'succeeded' "
        "AND json_extract(metadata, '$.journey') = 'checkout' GROUP BY 1 HAVING count(*) > 1"
    )
    assert twice == []
    same_key = service.query(
        "SELECT idempotency_key FROM payments GROUP BY 1 HAVING count(*) > 1"
    )
    assert same_key == []


def failures(run) -> list[dict]:
    return run.csv_rows("failures")


@pytest.fixture(scope="module")
def fault_runs(request):
    """test_fault_keeps_the_run_going_and_the_books_balanced's runs, each against a service of
    its own with its fault, two at once, ahead of their checks (the service is the context)."""
    services = OwnServices()

    def plan(folder, params):
        return RunPlan(
            (*params["faults"], "--fault-seed", "11"), ("--seed", "12", *params["extra"]),
            personas=write_personas(folder, CUSTOMERS, OPERATORS), users=4,
            run_time=f"{params['run_s']}s",
        )  # fmt: skip

    try:
        yield run_cases(
            request,
            "test_fault_keeps_the_run_going_and_the_books_balanced",
            services.starter(plan),
            timeout=120,
        )
    finally:
        services.stop()


# run_s: 2 s of run where every answer comes at once; 3 s where stalls and 429s (Retry-After
# >= 1 s) slow the operators' batches down
@pytest.mark.parametrize(
    "faults,extra,request_name,error_needle,run_s",
    [
        (
            ("--error-rate", "0.2", "--error-phase", "after"),
            (),
            "checkout: pay",
            "500 internal_error",
            2,
        ),
        (
            ("--error-rate", "0.2", "--error-phase", "before"),
            (),
            "checkout: pay",
            "503 service_unavailable",
            2,
        ),
        (
            ("--stall-rate", "0.1", "--stall-s", "1.5"),
            ("--request-timeout", "0.4"),
            "checkout: pay",
            "no answer: TimeoutError",  # not geventhttpclient's RetriesExceeded around it
            3,
        ),
        (
            (
                "--garbage-rate",
                "0.15",
            ),
            (),
            "checkout: pay",
            "201",
            2,
        ),
        (
            (
                "--rate-limit-rps",
                "15",
            ),
            (),
            "checkout: pay",
            "429 rate limited",
            3,
        ),
    ],
    ids=["5xx-after-commit", "5xx-before-commit", "stalls", "garbage", "rate-limit"],
)
def test_fault_keeps_the_run_going_and_the_books_balanced(
    request, fault_runs, faults, extra, request_name, error_needle, run_s
):
    case = case_result(fault_runs, request)
    service, run = case.context, case.locust_run()
    assert case.seconds < run_s + 3 + 20, "the run did not end on time"
    assert run.returncode == 1, run.output[-3000:]  # errors above 1%: the SLO fails
    assert "SLO verdict: FAIL" in run.output and "Traceback" not in run.output
    rows = [f for f in failures(run) if f["Name"].startswith(request_name)]
    assert any(error_needle in f["Error"] for f in rows), failures(run)
    stats = run.stats()
    assert int(stats[("journey", "checkout")]["Request Count"]) > 0
    assert int(stats[("journey", "batch_report")]["Request Count"]) > 0
    assert_never_charged_twice(service)
    assert_books_balance(run, service)


#: runs against a service of their own each, run ahead of their tests' checks two at once:
#: per test, (service flags, Locust arguments, personas rows, users, run time, environment)
DECLINING = (
    "shopper,customer,3,visa|mastercard,USD|EUR,5,80,0.5,2,,en_US,0,0.05",
    "ops,operator,1,visa|amex,USD|JPY,1,500,0.5,0,4,en_US,0,0.05",
)
OWN_SERVICE_RUNS = {
    "test_a_garbled_decline_is_resent_with_the_same_key": (
        ("--garbage-rate", "0.2", "--fault-seed", "5"), ("--seed", "7"), DECLINING, 4, "2s",
        None,
    ),
    "test_slow_report_fails_p95_but_batches_still_reconcile": (
        ("--report-latency-ms", "700"), ("--seed", "13"), (OPERATORS,), 2, "3s", None,
    ),
    "test_the_probers_payments_are_in_the_books": (
        (), ("--seed", "16"), (EVERYONE[2],), 1, "2s", None,
    ),
    "test_no_card_number_cvc_or_token_in_any_output": (
        (), ("--seed", "15"), EVERYONE, 3, "2s", {"LOCUST_LOGLEVEL": "DEBUG"},
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def own_service_runs(request):
    """OWN_SERVICE_RUNS' runs, each against a service of its own (the context)."""
    services = OwnServices()

    def plan(flags, args, personas, users, run_time, env):
        return lambda folder: RunPlan(
            flags, args,
            personas=write_personas(folder, *personas), users=users, run_time=run_time,
            env=env,
        )  # fmt: skip

    starts = {name: services.starter(plan(*p)) for name, p in OWN_SERVICE_RUNS.items()}
    try:
        yield run_tests(request, starts, timeout=120)
    finally:
        services.stop()


def own_service_run(request):
    """(its service, its CaseRun) for the running test, from ``own_service_runs``."""
    case = case_result(request.getfixturevalue("own_service_runs"), request)
    return case.context, case


def test_a_garbled_decline_is_resent_with_the_same_key(request, own_service_runs):
    """A 402 whose body can't be read says nothing about the payment: like a garbled 201 it is
    resent with the same key, so the journey goes on with the readable decline instead of failing
    (a batch used to fail outright on one garbled decline, before its report)."""
    service, case = own_service_run(request)
    run = case.locust_run()
    garbled = [
        f for f in failures(run) if "402 without a JSON error body" in f["Error"]
    ]
    assert garbled and all(f["Method"] == "POST" for f in garbled), failures(run)
    journeys_failed = [f for f in failures(run) if f["Method"] == "journey"]
    assert not [f for f in journeys_failed if "402" in f["Error"]], journeys_failed
    stats = run.stats()
    assert (
        int(stats[("POST", "batch_report: pay (resend same key)")]["Request Count"]) > 0
    )
    rows = {r["persona"]: r for r in run.csv_rows("journeys")}
    assert int(rows["ops"]["reconciled"]) >= 1, rows["ops"]
    assert int(rows["shopper"]["recovered"]) >= 1, rows["shopper"]
    assert_never_charged_twice(service)
    assert_books_balance(run, service)


def test_slow_report_fails_p95_but_batches_still_reconcile(request, own_service_runs):
    service, case = own_service_run(request)
    run = case.locust_run()
    assert run.returncode == 1
    assert "p95" in run.output and "batch_report" in run.output
    rows = {
        r["persona"]: r
        for r in run.csv_rows("journeys")
        if r["journey"] == "batch_report"
    }
    assert int(rows["All"]["reconciled"]) >= 1 and int(rows["All"]["mismatch"]) == 0
    assert_books_balance(run, service)


def test_service_killed_and_restarted_mid_run(tmp_path):
    service = launch_service(tmp_path)
    personas = write_personas(tmp_path, CUSTOMERS, OPERATORS)
    prefix = tmp_path / "run"
    locust = locust_process(
        locust_command(
            tmp_path, "--seed", "14", personas=personas, users=4, run_time="5s"
        ),
        service.url,
    )
    try:
        service.wait_for_payments(locust, timeout=30)
        time.sleep(1)  # a second of traffic, then the service dies mid-run
        service.proc.send_signal(signal.SIGKILL)
        service.proc.wait()
        time.sleep(0.5)
        service = launch_service(tmp_path, port=service.port, db_path=service.db_path)
        output, _ = locust.communicate(timeout=60)
    finally:
        if locust.poll() is None:
            locust.kill()
    assert locust.returncode == 1, output[-3000:]
    with open(f"{prefix}_failures.csv", newline="") as f:
        errors = [r for r in csv.DictReader(f)]
    assert any(
        r["Name"].startswith("checkout: pay") and "no answer" in r["Error"]
        for r in errors
    ), errors
    with open(f"{prefix}_stats.csv", newline="") as f:
        stats = {(r["Type"], r["Name"]): r for r in csv.DictReader(f)}
    assert ("POST", "checkout: pay (resend same key)") in stats, sorted(stats)
    assert int(stats[("journey", "checkout")]["Request Count"]) > 0
    run = type("Run", (), {"csv_prefix": prefix})
    assert_never_charged_twice(service)
    assert_books_balance(run, service)
    service.stop()


def test_service_down_at_start_waits_with_wait_for_host(tmp_path):
    port = free_port()
    locust = locust_process(
        locust_command(
            tmp_path, "--wait-for-host", "20",
            personas=write_personas(tmp_path, CUSTOMERS), users=2, run_time="2s",
        ),
        f"http://127.0.0.1:{port}",
    )  # fmt: skip
    time.sleep(2)
    assert locust.poll() is None, (
        "locust gave up although --wait-for-host asked it to wait"
    )
    service = launch_service(tmp_path, port=port)
    try:
        output, _ = locust.communicate(timeout=60)
        assert locust.returncode == 0, output[-3000:]
        assert service.has_payments()
    finally:
        service.stop()


def test_the_masters_request_timeout_applies_on_its_workers(tmp_path, start_service):
    """``--request-timeout`` given to the master only: its workers resend after it too."""
    service = start_service("--stall-rate", "1", "--stall-s", "1.5")
    run = run_locust(
        tmp_path, service.url, "--seed", "19", "--request-timeout", "0.4",
        personas=write_personas(tmp_path, CUSTOMERS), users=2, run_time="2s", workers=1,
    )  # fmt: skip
    timeouts = [
        f for f in failures(run)
        if f["Name"].startswith("checkout: pay") and "no answer: TimeoutError" in f["Error"]
    ]  # fmt: skip
    assert timeouts, (failures(run), run.worker_outputs[0][-2000:])
    assert ("POST", "checkout: pay (resend same key)") in run.stats()


def test_payments_cut_off_by_the_end_of_the_run_are_in_the_books_as_unknown(
    tmp_path, start_service
):
    """Stopped mid-request (``--stop-timeout 0``, every /pay takes 1.5 s), a user never learns
    whether its payment was stored: the ledger books it as unknown, so the books still balance."""
    service = start_service("--latency-ms", "1500")
    run = run_locust(
        tmp_path, service.url, "--seed", "17", "--stop-timeout", "0",
        personas=write_personas(tmp_path, CUSTOMERS, OPERATORS), users=6, run_time="3s",
    )  # fmt: skip
    assert "Traceback" not in run.output, run.output[-3000:]
    assert sum(r["unknown_payments"] for r in ledger(run.csv_prefix).values()) >= 1
    time.sleep(2)  # let the service finish the requests the run walked away from
    assert_books_balance(run, service)


def test_the_probers_payments_are_in_the_books(request, own_service_runs):
    """Edge probes and the first use of a reused key are real payments: the ledger has them."""
    service, case = own_service_run(request)
    run = case.locust_run()
    assert run.returncode == 0, run.output[-3000:]
    first_use = run.stats()[("POST", "error_probes: key reuse: first use")]
    assert int(first_use["Request Count"]) >= 1 and first_use["Failure Count"] == "0"
    assert_books_balance(run, service)


def test_no_card_number_cvc_or_token_in_any_output(request, own_service_runs):
    """Run every persona (declines, probes, reports) and grep every output of the run for secrets."""
    seed = 15  # OWN_SERVICE_RUNS' --seed for it
    service, case = own_service_run(request)
    run, tmp_path = case.locust_run(), case.folder
    outputs = {"locust output": run.output, "service log": service.log()}
    for path in tmp_path.iterdir():
        if path.suffix in (".csv", ".html", ".log"):
            outputs[path.name] = path.read_text(errors="replace")
    numbers = set(DECLINING_TEST_CARDS) | {
        c.number for b in BRANDS for c in card_pool(b, seed)
    }
    assert len(numbers) > 300
    for name, text in outputs.items():
        assert TOKEN not in text, name
        leaked = [n for n in numbers if n in text]
        assert not leaked, (name, leaked[:3])
    # the numbers grepped for are the ones the run really paid with
    used = {last4 for (last4,) in service.query("SELECT last4 FROM payments")}
    assert used and used <= {n[-4:] for n in numbers}


@pytest.fixture(scope="module")
def bad_env_runs(request, idle_service):
    """test_bad_env_values_stop_before_any_traffic's runs, each case's own, two at once ahead of
    their checks (each only starts up and stops)."""

    def start(folder, params):
        command = [
            sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless",
            "-t", "3s", "--personas", str(write_personas(folder, CUSTOMERS, OPERATORS)),
        ]  # fmt: skip
        return command, locust_env(idle_service.url, params["env"]), None

    # four at a time: each stops at start
    return run_cases(
        request, "test_bad_env_values_stop_before_any_traffic", start, parallel=4
    )


@pytest.mark.parametrize(
    "env,needle",
    [
        (
            {"LOCUST_USERS": "abc"},
            "-u/--users: invalid int value: 'abc' (set by LOCUST_USERS='abc': fix",
        ),
        ({"LOCUST_USERS": "-5"}, "must be 0 or more"),
        ({"LOCUST_USERS": "0"}, "is 0: a run without the web UI needs at least 1 user"),
        ({"LOCUST_SPAWN_RATE": "-2"}, "-r/--spawn-rate: must be > 0"),
        ({"LOCUST_PROFILE": "spiky"}, "unknown load profile 'spiky'"),
        (
            # a typo for 10: the spike would have started 10 million users
            {
                "LOCUST_PROFILE": "spike",
                "LOCUST_SPIKE_MULTIPLIER": "100000",
                "LOCUST_USERS": "100",
            },
            (
                "--spike-multiplier 100000 makes a peak of 10,000,000 users (-u 100 × 100000); "
                "the multiplier is at most 100 (a peak of 10,000 users from -u 100). Lower "
                "--spike-multiplier (default 5), or raise -u"
            ),
        ),
        ({"LOCUST_SLO_P95_MS": "-1"}, "--slo-p95-ms"),
        ({"LOCUST_SLO_ERROR_RATE": "2"}, "--slo-error-rate"),
        ({"LOCUST_REQUEST_TIMEOUT": "0"}, "--request-timeout"),
        (
            {"LOCUST_REQUEST_TIMEOUT": "abc"},
            "--request-timeout: 'abc' is not a number (set by LOCUST_REQUEST_TIMEOUT='abc'",
        ),
        (
            {"LOCUST_REQUEST_TIMEOUT": "5s"},
            (
                "--request-timeout: '5s' is not a number: the option takes seconds without a "
                "unit, so write 5 (set by LOCUST_REQUEST_TIMEOUT='5s'"
            ),
        ),
        (
            {"LOCUST_REQUEST_TIMEOUT": "0s"},
            (
                "--request-timeout: '0s' is not a number: the option takes seconds without a "
                "unit, and must be > 0, got 0"
            ),
        ),
        (
            {"LOCUST_WAIT_FOR_HOST": "2m"},
            "--wait-for-host: '2m' is not a number: the option takes seconds without a unit, so write 120",
        ),
        (
            {"LOCUST_WAIT_FOR_HOST": "nan"},
            "--wait-for-host: 'nan' is not a finite number (set by LOCUST_WAIT_FOR_HOST='nan'",
        ),
        (
            {"LOCUST_TRACE_SAMPLE_RATE": "1.5"},
            "--trace-sample-rate: 1.5 is outside 0..1",
        ),
        (
            {"LOCUST_JOURNEY_RATE": "0"},
            (
                "--journey-rate: 0 is no rate: give journeys per second above 0, e.g. "
                "--journey-rate 20, or leave it out to keep the personas' think time (set by "
                "LOCUST_JOURNEY_RATE='0'"
            ),
        ),
        ({"PAYMENT_INTERNAL_TOKEN": ""}, "PAYMENT_INTERNAL_TOKEN is not set"),
        (
            {"LOCUST_TAGS": "[customer, chekout]"},
            (
                "--tags: no journey carries the tag 'chekout'. Tags are roles (customer, "
                "operator), journey tags (batch_report, checkout) and persona names (ops, "
                "shopper). No traffic was sent."
            ),
        ),
        (
            {"LOCUST_EXCLUDE_TAGS": "customer operator"},
            (
                "--exclude-tags: no journey carries the tag 'customer operator'. Tags are roles "
                "(customer, operator), journey tags (batch_report, checkout) and persona names (ops, "
                "shopper). Several tags are separate words on the command line (--exclude-tags "
                "customer operator) and a list in a LOCUST_* variable or config line: [customer, "
                "operator]."
            ),
        ),
        (  # the comma, as most tools take a list, had no hint
            {"LOCUST_TAGS": "customer,operator"},
            "line: [customer, operator]. No traffic was sent.",
        ),
        (
            {"LOCUST_HTML": "/etc/passwd/reports/run.html"},
            "--html: cannot write /etc/passwd/reports/run.html: /etc/passwd is a file",
        ),
        (
            {"LOCUST_CSV": "/etc/passwd/run"},
            "/etc/passwd is a file, not a folder (set by LOCUST_CSV=",
        ),
        (
            {"LOCUST_HTML": "/tmp"},
            "--html: cannot write /tmp: it is a folder; name the report's file, e.g. /tmp/report.html",
        ),
        (
            {"LOCUST_JUNIT_XML": "/tmp"},
            "--junit-xml: cannot write /tmp: it is a folder; name the report's file, e.g. /tmp/junit.xml",
        ),
        (
            {"LOCUST_HTML": "/proc/reports/run.html"},
            "--html: cannot write /proc/reports/run.html: this user (uid",
        ),
        (
            {"LOCUST_CSV": "/proc/reports/run"},
            "--csv: cannot write /proc/reports/run: this user (uid",
        ),
        (
            {"LOCUST_TLS_CERT": "/nonexistent/cert.pem", "LOCUST_TLS_KEY": "/tmp"},
            "--tls-cert: cannot read /nonexistent/cert.pem: no such file (set by LOCUST_TLS_CERT=",
        ),
        (
            {"LOCUST_TLS_KEY": "/tmp"},
            "--tls-key: cannot read /tmp: it is a folder, not a file (set by LOCUST_TLS_KEY=",
        ),
        (
            {"LOCUST_WEB_BASE_PATH": "locust"},
            "--web-base-path: 'locust' must start with a slash: write /locust (set by",
        ),
    ],
    ids=[
        "users-abc",
        "users-negative",
        "users-zero",
        "spawn-rate-negative",
        "unknown-profile",
        "spike-multiplier-too-high",
        "slo-p95",
        "slo-error-rate",
        "request-timeout",
        "request-timeout-abc",
        "request-timeout-with-a-unit",
        "request-timeout-0s",
        "wait-for-host-with-a-unit",
        "wait-for-host-nan",
        "trace-sample-rate",
        "journey-rate",
        "no-token",
        "unknown-tag",
        "unknown-exclude-tag",
        "tags-with-a-comma",
        "html-under-a-file",
        "csv-under-a-file",
        "html-is-a-folder",
        "junit-xml-is-a-folder",
        "html-where-no-file-can-be-made",
        "csv-where-no-file-can-be-made",
        "tls-cert-missing",
        "tls-key-a-folder",
        "web-base-path-without-slash",
    ],
)
def test_bad_env_values_stop_before_any_traffic(
    request, bad_env_runs, idle_service, env, needle
):
    service = idle_service
    proc = case_result(bad_env_runs, request)
    output = proc.output
    assert proc.returncode == 2, output[-2000:]
    assert needle in output and "Traceback" not in output, output[-2000:]
    assert service.query("SELECT count(*) FROM payments") == [(0,)]


def test_a_worker_building_many_locales_lets_its_loop_run():
    """A worker builds its data pools at test start (a Faker per locale, the card pools). In
    one go, all of Faker's locales held its loop for 4-7 s here (1-2 s since customers are made
    as they are drawn): no heartbeat went out meanwhile, and a master takes a worker silent for
    3 s for missing and stops the test. The build lets the loop run every slice
    (``POOL_BUILD_SLICE_S``): no wait between the loop's turns comes near the build's length.
    (It ran as a real master and worker until the build, now ~1.8 s, was too short to miss a
    heartbeat at all: such a test could no longer fail.)"""
    import argparse
    import dataclasses

    import gevent
    from faker.config import AVAILABLE_LOCALES
    from locust.runners import WorkerRunner

    from journeys import users
    from journeys.personas import load_personas

    base = load_personas(ROOT / "personas.csv")[0]
    locales = sorted(set(AVAILABLE_LOCALES) - {"fr_QC"})  # deprecated: refused
    classes = [
        argparse.Namespace(
            persona=dataclasses.replace(base, name=f"shopper_{i}", locale=locale)
        )
        for i, locale in enumerate(locales)
    ]
    runner = object.__new__(WorkerRunner)  # only its type counts
    runner.greenlet = None  # what Runner.__del__ looks at
    environment = argparse.Namespace(
        runner=runner,
        user_classes=classes,
        parsed_options=argparse.Namespace(seed=int(time.time())),  # pools not built yet
    )
    waits = []

    def loop_turns() -> None:
        last = time.perf_counter()
        while True:
            gevent.sleep(0.005)
            now = time.perf_counter()
            waits.append(now - last)
            last = now

    ticker = gevent.spawn(loop_turns)
    gevent.sleep(0.01)
    began = time.perf_counter()
    users.build_data_pools(environment)
    took = time.perf_counter() - began
    ticker.kill()
    assert took > 0.4, f"{len(locales)} locales built in {took:.2f} s: too few to judge"
    assert max(waits) < took / 4, (max(waits), took)


def test_a_worker_with_other_personas_stops_the_run_with_exit_2(tmp_path, idle_service):
    """A worker started without the master's --personas would crash on a persona class it lacks
    (a KeyError) while the master blamed the service (exit 1): now both exit 2 and say why."""
    service = idle_service
    port = free_port()
    master = locust_process(
        locust_command(
            tmp_path,
            *master_args(port, 1),
            run_time="20s",
            personas=write_personas(tmp_path, CUSTOMERS),
        ),
        service.url,
    )
    other = tmp_path / "other"
    other.mkdir()
    worker_personas = write_personas(
        other, CUSTOMERS.replace(",0.15,", ",0.3,"), OPERATORS
    )  # the same shopper with another decline rate, and an operator
    worker = locust_process(worker_command(port, worker_personas), service.url)
    worker_output, master_output = outputs_of(worker, master)
    assert worker.returncode == 2, worker_output[-2000:]
    differences = "other values in: shopper; only on the worker: ops"
    assert f"differ from the master's: {differences}." in worker_output, worker_output[
        -2000:
    ]
    assert differences in master_output, master_output[-3000:]
    assert "Traceback" not in worker_output, worker_output[-3000:]
    assert master.returncode == 2, master_output[-3000:]
    assert "ran other personas than the master" in master_output, master_output[-3000:]
    assert service.query("SELECT count(*) FROM payments") == [(0,)]


def code_copy(tmp_path, edit: tuple[str, str, str]):
    """The tool's code copied under ``tmp_path``, with ``edit`` (file, old, new) applied: another
    version of it, as an older checkout or image would be."""
    copy = tmp_path / "other_version"
    for package in ("journeys", "payment_contract"):
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "locustfile.py", copy)
    path, old, new = edit
    source = (copy / path).read_text()
    assert old in source, path
    (copy / path).write_text(source.replace(old, new, 1))
    return copy


def worker_of(copy, port: int, personas) -> list[str]:
    """``worker_command`` for the code in ``copy``."""
    command = worker_command(port, personas)
    command[command.index("-f") + 1] = str(copy / "locustfile.py")
    return command


def test_a_worker_of_another_code_version_stops_the_run_with_exit_2(tmp_path, service):
    """A worker from another checkout merged wrongly: one older than a field of the journey
    counters broke every merge of its reports on the master (a traceback each), its journeys
    silently missing from the results. Now a worker joining a running test with other code
    leaves before its users start, naming the files that differ; the master exits 2."""
    port = free_port()
    personas = write_personas(tmp_path, CUSTOMERS)
    master = locust_process(
        locust_command(
            tmp_path, *master_args(port, 1), run_time="20s", personas=personas
        ),
        service.url,
    )
    copy = code_copy(tmp_path, ("journeys/data.py", '"""', '"""Another version. '))
    first = locust_process(worker_command(port, personas), service.url)
    time.sleep(3)  # the test runs: the other version joins it
    worker = locust_process(worker_of(copy, port, personas), service.url)
    worker_output, master_output = outputs_of(worker, master)
    end_process(first)
    assert worker.returncode == 2, worker_output[-2000:]
    expected = "another version of the load generator than the master (other content: journeys/data.py)"
    assert expected in worker_output, worker_output[-2000:]
    assert "other content: journeys/data.py" in master_output, master_output[-3000:]
    assert master.returncode == 2, master_output[-3000:]
    assert "ran another version of the load generator" in master_output, master_output[
        -3000:
    ]


def test_a_worker_of_another_code_version_waiting_for_the_start_exits_2(
    tmp_path, idle_service
):
    """A worker of other code that connects before the test starts is seen by the master in
    its first report, before any spawn: the master told it to quit, so it exited 0 without a
    word on why ("Got quit message from master"). Now it names the files and exits 2 too."""
    port = free_port()
    personas = write_personas(tmp_path, CUSTOMERS)
    master = locust_process(
        locust_command(
            tmp_path, *master_args(port, 1), run_time="10s", personas=personas
        ),
        idle_service.url,
    )
    copy = code_copy(tmp_path, ("journeys/data.py", '"""', '"""Another version. '))
    worker = locust_process(worker_of(copy, port, personas), idle_service.url)
    worker_output, master_output = outputs_of(worker, master)
    assert master.returncode == 2, master_output[-3000:]
    assert "other content: journeys/data.py" in master_output, master_output[-3000:]
    assert worker.returncode == 2, worker_output[-2000:]
    assert "than the master (other content: journeys/data.py)" in worker_output, (
        worker_output[-2000:]
    )
    assert idle_service.query("SELECT count(*) FROM payments") == [(0,)]


def test_a_worker_older_than_the_code_check_is_refused_before_any_load(
    tmp_path, idle_service
):
    """A worker older than the code check does not compare: the master knows it by its
    reports, which lack the code's fingerprints. It hung in its wait for --expect-workers
    after telling the workers to quit; now it exits 2 before any load, and so do they."""
    service = idle_service
    port = free_port()
    personas = write_personas(tmp_path, CUSTOMERS)
    master = locust_process(
        locust_command(
            tmp_path, *master_args(port, 2), run_time="10s", personas=personas
        ),
        service.url,
    )
    # an older version: its reports and options carry no "journeys_code"
    old = code_copy(
        tmp_path, ("journeys/code_version.py", 'KEY = "journeys_code"', 'KEY = "x"')
    )
    first = locust_process(worker_command(port, personas), service.url)
    time.sleep(2)  # connected: the master tells it to quit too
    worker = locust_process(worker_of(old, port, personas), service.url)
    try:
        master_output = master.communicate(timeout=30)[0]
        outputs = [p.communicate(timeout=15)[0] for p in (first, worker)]
    finally:
        for process in (master, first, worker):
            end_process(process)
    assert master.returncode == 2, master_output[-3000:]
    # then "it sent no load", or "none of its journeys are counted" if the master had left
    # its init state when the old worker's first report came (a full suite run once ended
    # this line otherwise); the database below says whether any load was sent
    assert (
        "runs another version of the load generator than this master (its reports carry no "
        "fingerprint of its code: an older version): "
    ) in master_output, master_output[-3000:]
    for output in outputs:
        assert "Got quit message from master" in output, output[-2000:]
    assert service.query("SELECT count(*) FROM payments") == [(0,)]


def test_workers_a_killed_master_left_running_do_not_count_in_the_next_one(
    tmp_path, service
):
    """A master killed mid-test leaves its workers running their users (Locust's workers never
    connect again, and ours give up only 10 s after the last heartbeat), still reporting to
    the port. The next master there merged their requests, journeys and ledger into its own test
    and failed it for two "workers lost" that were never its own. Now it counts none of their
    reports and tells them to quit."""
    port = free_port()
    personas = write_personas(tmp_path, CUSTOMERS)

    def master(run_time: str) -> subprocess.Popen:
        command = locust_command(
            tmp_path, *master_args(port, 1), run_time=run_time, personas=personas
        )
        return locust_process(command, service.url)

    first = master("60s")
    stranded = locust_process(worker_command(port, personas), service.url)
    time.sleep(4)  # its test runs
    first.kill()
    end_process(first)
    second = master("5s")
    worker = locust_process(worker_command(port, personas), service.url)
    try:
        output = second.communicate(timeout=40)[0]
        stranded_output = stranded.communicate(timeout=15)[0]
    finally:
        for process in (second, worker, stranded):
            end_process(process)
    assert second.returncode == 0, output[-3000:]
    assert (
        "reports to this master but never connected to it (a master before it on this port "
        "left it running): its reports are not counted, and it was told to quit"
    ) in output, output[-3000:]
    assert "lost before" not in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "Got quit message from master" in stranded_output, stranded_output[-2000:]


def test_a_killed_masters_workers_stop_their_load_within_seconds(tmp_path, service):
    """A master killed mid-test: Locust's worker ran its users for 60 s more (past the 30 s run
    time too), load no master watched, and then exited 0. Now it quits within some 10 s of the
    master's last heartbeat, with exit code 1 and why."""
    port = free_port()
    personas = write_personas(tmp_path, CUSTOMERS)
    command = locust_command(
        tmp_path, *master_args(port, 1), run_time="30s", personas=personas
    )
    master = locust_process(command, service.url)
    worker = locust_process(worker_command(port, personas), service.url)
    try:
        service.wait_for_payments(master)
        master.kill()
        killed = time.monotonic()
        output = worker.communicate(timeout=30)[0]
        took = time.monotonic() - killed
    finally:
        for process in (master, worker):
            end_process(process)
    assert worker.returncode == 1, output[-3000:]
    assert took < 15, (took, output[-3000:])
    assert (
        f"No heartbeat from the master at 127.0.0.1:{port} for 1" in output
        and "stopping this worker's 4 users and quitting with exit code 1" in output
    ), output[-3000:]
    assert "Traceback" not in output, output[-3000:]


def outputs_of(worker, master) -> tuple[str, str]:
    """The outputs of a worker that is to leave on its own, then of its master, which forgets
    it at once: no wait for its final report at the end (it waited 8 s for it), and not a
    worker lost (it left, and said why)."""
    try:
        outputs = worker.communicate(timeout=60)[0], master.communicate(timeout=60)[0]
    finally:
        end_process(worker)
        end_process(master)
    assert "Waiting up to" not in outputs[1], outputs[1][-3000:]
    assert "lost before" not in outputs[1], outputs[1][-3000:]
    return outputs


def test_a_worker_without_the_token_stops_the_run_with_exit_2(tmp_path, idle_service):
    """The master checks its own token; a worker started without one (another shell, a late
    joiner) failed every operator journey with a 403 instead."""
    service = idle_service
    port = free_port()
    personas = write_personas(tmp_path, CUSTOMERS, OPERATORS)
    master = locust_process(
        locust_command(
            tmp_path, *master_args(port, 1), run_time="20s", personas=personas
        ),
        service.url,
    )
    worker = locust_process(
        worker_command(port, personas), service.url, {"PAYMENT_INTERNAL_TOKEN": ""}
    )
    worker_output, master_output = outputs_of(worker, master)
    assert worker.returncode == 2, worker_output[-2000:]
    assert (
        "On this worker: PAYMENT_INTERNAL_TOKEN is not set, but persona ops calls"
        in (worker_output)
    ), worker_output[-2000:]
    assert "Traceback" not in worker_output, worker_output[-3000:]
    assert master.returncode == 2, master_output[-3000:]
    assert "cannot take part: PAYMENT_INTERNAL_TOKEN is not set" in master_output, (
        master_output[-3000:]
    )
    assert service.query("SELECT count(*) FROM payments") == [(0,)]


def test_a_worker_joining_a_running_test_gets_its_checks():
    """A worker joining a running test gets its first spawn while Locust is still creating its
    runner, so ``test_start`` saw no runner and the personas and token checks let it through
    (seen: a late worker without the token ran operators, every report a 403)."""
    import argparse

    import gevent
    from locust.runners import WorkerRunner

    from journeys.leave_run import worker_runner

    runner = object.__new__(
        WorkerRunner
    )  # no environment: only its type and fields count
    runner.greenlet = None  # what Runner.__del__ looks at
    joining = argparse.Namespace(
        runner=None, parsed_options=argparse.Namespace(worker=True)
    )
    gevent.spawn_later(0.1, setattr, joining, "runner", runner)
    assert worker_runner(joining) is runner
    master = argparse.Namespace(
        runner=None, parsed_options=argparse.Namespace(worker=False)
    )
    assert worker_runner(master) is None


def test_a_worker_that_cannot_take_part_stops_only_the_web_ui_test():
    """Headless, a worker with other personas or without the token ends the run with exit 2;
    in the web UI quitting the runner left the page up with its workers gone and a start
    button that started nothing, so there only the test stops (and the worker is forgotten)."""
    import argparse

    import gevent

    from journeys.leave_run import stop_for_a_worker

    calls = []
    runner = argparse.Namespace(
        stop=lambda: calls.append("stop"),
        quit=lambda: calls.append("quit"),
        clients={"bad": "its node", "good": "its node"},
        state="running",  # a test runs (one still waiting for its workers exits at once)
    )
    for headless, autostart in ((False, False), (True, False), (False, True)):
        env = argparse.Namespace(
            runner=runner,
            process_exit_code=None,
            parsed_options=argparse.Namespace(headless=headless, autostart=autostart),
        )
        stop_for_a_worker(env, "bad")
        gevent.sleep(0.01)
        calls.append(env.process_exit_code)
    assert calls == ["stop", None, "quit", 2, "quit", 2]
    # and the web UI forgets the worker that left: the next test does not count on it
    assert list(runner.clients) == ["good"]


def test_a_bad_value_names_the_config_file_it_came_from(tmp_path):
    """argparse names only the flag; a value from a forgotten config file needs its file."""
    config = tmp_path / "team.conf"
    config.write_text("headless = true\nseed = 1.5\n")
    on_command_line = ["--config", str(config), "--seed", "x"]
    outputs = []
    for extra in ([], on_command_line[2:]):
        proc = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py")]
            + on_command_line[:2]
            + extra,
            cwd=tmp_path,
            env=locust_env("http://127.0.0.1:9", {}),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr[-2000:]
        outputs.append(proc.stderr)
    assert (
        f"--seed: invalid int value: '1.5' (set by seed = 1.5 in {config}: fix"
        in outputs[0]
    )
    # typed on the command line, the value needs no source
    assert (
        outputs[1]
        .rstrip()
        .endswith("argument --seed: invalid int value: 'x'. No traffic was sent.")
    ), outputs[1]


def test_a_bad_slo_target_names_where_it_was_set(tmp_path):
    """SLO targets are checked after parsing (the web UI form sends them as text), so argparse
    never names their source: the check does, as for every other option."""
    config = tmp_path / "team.conf"
    config.write_text("headless = true\nslo-p95-ms = abc\n")
    proc = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py")]
        + ["--config", str(config)],
        cwd=tmp_path,
        env=locust_env("http://127.0.0.1:9", {"LOCUST_SLO_ERROR_RATE": "3"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (
        f"--slo-p95-ms must be a number, got 'abc' (set by slo-p95-ms = abc in {config})"
        in (proc.stderr)
    )
    assert "got '3' (set by LOCUST_SLO_ERROR_RATE='3')" in proc.stderr
