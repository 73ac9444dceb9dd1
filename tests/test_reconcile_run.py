"""``--reconcile-run``: the service's report over the run must hold the ledger.

Real runs against the reference service with its faults: a service that charges a same-key
resend again (the double charge no answer shows), one whose report leaves a payment out, one
whose clock runs behind, a web UI restart (a lost worker: tests/test_results.py); the service's
database says what is true.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import signal
import time
from types import SimpleNamespace

import pytest
import requests

from journeys.results import reconcile_run
from journeys.results.reconcile_run import compare
from tests.conftest import (
    TOKEN,
    LocustRun,
    OwnServices,
    RunPlan,
    case_result,
    end_process,
    get_text,
    locust_command,
    locust_process,
    post_form,
    run_locust,
    run_tests,
    start_web_ui,
    write_personas,
)

SHOPPER = "shopper,customer,2,visa|mastercard,USD|EUR,5,80,0,1,,en_US,0,0.02"
OPS = "ops,operator,1,visa|amex,USD|JPY,1,500,0,0,4,en_US,0,0.02"
LENIENT = ("--slo-error-rate", "1", "--slo-p50-ms", "5000", "--slo-p95-ms", "9000")


def books(run) -> dict:
    rows = [r for r in run.csv_rows("slo") if r["metric"] == "books"]
    assert len(rows) == 1, run.output[-3000:]
    return rows[0]


def charged(service) -> int:
    return service.query("SELECT count(*) FROM payments WHERE status = 'succeeded'")[0][
        0
    ]


def ledger(run) -> tuple[int, int]:
    rows = run.csv_rows("ledger")
    return (
        sum(int(r["payments"]) for r in rows),
        sum(int(r["unknown_payments"]) for r in rows),
    )


#: the reconciled runs: per test, its service's flags and its Locust arguments
RECONCILED_RUNS = {
    "test_a_faithful_service_passes_even_when_answers_are_lost_and_reports_are_slow": (
        (
            "--error-rate",
            "0.2",
            "--error-phase",
            "after",
            "--report-latency-ms",
            "2500",
        ),
        ("--seed", "5", "--tags", "customer"),
    ),
    "test_a_resend_charged_again_fails_the_run": (
        ("--error-rate", "0.3", "--error-phase", "after", "--replay-charges"),
        ("--seed", "6"),
    ),
    "test_a_clock_behind_moves_the_window_and_a_payment_left_out_is_lost": (
        ("--clock-offset-s", "-0.9", "--report-tamper"),
        ("--seed", "7", "--tags", "customer"),
    ),
}


@pytest.fixture(scope="module")
def reconciled_runs(request):
    """RECONCILED_RUNS' runs (--reconcile-run, lenient SLO targets, SHOPPER and OPS, 4 users,
    2 s), each against a service of its own with its flags (the context), two at once ahead of
    their checks."""
    services = OwnServices()

    def plan(flags, args):
        return lambda folder: RunPlan(
            flags, ("--reconcile-run", *LENIENT, *args),
            personas=write_personas(folder, SHOPPER, OPS), users=4, run_time="2s",
        )  # fmt: skip

    starts = {name: services.starter(plan(*p)) for name, p in RECONCILED_RUNS.items()}
    try:
        yield run_tests(request, starts, timeout=120)
    finally:
        services.stop()


def reconciled(request) -> tuple:
    """(its service, its LocustRun) for the running test, from ``reconciled_runs``."""
    case = case_result(request.getfixturevalue("reconciled_runs"), request)
    return case.context, case.locust_run()


def test_a_faithful_service_passes_even_when_answers_are_lost_and_reports_are_slow(
    request, reconciled_runs
):
    """Lost 5xx answers are resent with the same key and not charged again: the report holds
    exactly the confirmed payments (and at most the unknown ones). Its 2.5 s say nothing about
    the clocks (the service stamped it somewhere in them): the window does not move."""
    service, run = reconciled(request)
    assert run.returncode == 0, run.output[-3000:]
    row = books(run)
    confirmed, unknown = ledger(run)
    in_db = charged(service)
    assert confirmed > 10 and confirmed <= in_db <= confirmed + unknown
    assert row["passed"] == "true" and "window" not in row["message"], row
    assert (
        f"holds the {confirmed} payments confirmed to the generator" in row["message"]
    )
    assert row["actual"] == f"{in_db} payments", row
    assert f"  ok: {row['message']}" in run.output  # the terminal summary says it held


def test_a_resend_charged_again_fails_the_run(request, reconciled_runs):
    """``--replay-charges`` with lost answers: the client never saw the first charge, so only
    the service's own books show the double charge; the check counts exactly the extra ones."""
    service, run = reconciled(request)
    assert run.returncode == 1, run.output[-3000:]
    confirmed, unknown = ledger(run)
    extra = charged(service) - confirmed - unknown
    assert extra > 0, (confirmed, unknown)
    row = books(run)
    assert row["passed"] == "false", row
    assert "(double charges, or other traffic)" in row["message"], row
    found = sum(
        int(part.split(" more than")[0].rsplit(" ", 1)[1])
        for part in row["message"].split("; ")
    )
    assert found == extra, (row, extra)
    assert "FAILED: " in run.output and "more than the" in run.output


def test_a_clock_behind_moves_the_window_and_a_payment_left_out_is_lost(
    request, reconciled_runs
):
    """A service whose clock is 0.9 s behind stamps the run's first payments before the test
    started by this machine's clock: the report's ``generated_at`` shows the offset and the
    window moves (a payment left out would read as lost). The same service's report leaves out
    one payment (``--report-tamper``): that one is lost."""
    service, run = reconciled(request)
    assert run.returncode == 1, run.output[-3000:]
    row = books(run)
    assert "the window was moved by -0.9" in row["message"], row
    assert "behind this machine's" in row["message"], row
    assert "1 fewer than the" in row["message"], row
    assert row["message"].count("(lost payments)") == 1, row
    assert ledger(run)[0] == charged(service)
    assert row["actual"] == f"{charged(service) - 1} payments", row


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        (
            [SHOPPER],
            (
                "PAYMENT_INTERNAL_TOKEN is not set, but --reconcile-run asks the internal report "
                "endpoint for the run's payments. Set PAYMENT_INTERNAL_TOKEN to the payment "
                "service's internal token, or drop --reconcile-run."
            ),
        ),
        (
            [SHOPPER, OPS],
            (
                "PAYMENT_INTERNAL_TOKEN is not set, but persona ops calls the internal report "
                "endpoint and --reconcile-run asks it for the run's payments. Set "
                "PAYMENT_INTERNAL_TOKEN to the payment service's internal token, or leave that "
                "persona out (e.g. --tags customer) and drop --reconcile-run."
            ),
        ),
    ],
    ids=["customers", "with-operators"],
)
def test_reconcile_run_needs_the_token(tmp_path, service, rows, needle):
    """Every reason the token is needed, and every way out, in one message."""
    personas = write_personas(tmp_path, *rows)
    run = run_locust(
        tmp_path, service.url, "--reconcile-run", personas=personas, run_time="2s",
        env={"PAYMENT_INTERNAL_TOKEN": ""},
    )  # fmt: skip
    assert run.returncode == 2, run.output[-2000:]
    assert needle in run.output, run.output[-2000:]
    assert service.query("SELECT count(*) FROM payments")[0][0] == 0


class WholeSecondService:
    """The report endpoint of a service that honours the contract with a clock read in whole
    seconds: its payments' stamps and its ``generated_at`` have no fraction (``created`` is unix
    seconds in the contract, and ISO 8601 needs no fraction). Its clock agrees with ours."""

    def __init__(self, now: float, stamps: list[int]):
        self.now, self.stamps = now, stamps

    def __call__(self, host, token, filter_, timeout, _read_bytes=None):
        since = dt.datetime.fromisoformat(filter_["from"]).timestamp()
        count = sum(stamp >= since for stamp in self.stamps)
        report = {
            "generated_at": f"{dt.datetime.fromtimestamp(int(self.now), dt.UTC):%Y-%m-%dT%H:%M:%SZ}",
            "payments": {"succeeded": count, "declined": 0},
            "totals": {"USD": {"count": count, "amount": 100 * count}} if count else {},
        }
        return 200, json.dumps(report).encode(), {}


def whole_second_service(monkeypatch, now: float, stamps: list[int]) -> None:
    monkeypatch.setattr(reconcile_run, "post_report", WholeSecondService(now, stamps))
    monkeypatch.setattr(reconcile_run, "time", SimpleNamespace(time=lambda: now))


def test_a_generated_at_in_whole_seconds_is_not_a_clock_behind(monkeypatch):
    """``...T10:00:00Z`` asked at 10:00:00.5 says the clocks may agree: the window stays (it was
    moved 0.5 s back, and a run started less than 1 s after another counted that one's last
    payments as double charges)."""
    whole_second_service(monkeypatch, 1_800_000_000.5, [1_800_000_000])
    _report, shift = reconcile_run.report_of_the_run("http://svc", "t", 1_799_999_990.7)
    assert shift == 0.0


def test_payments_stamped_in_whole_seconds_are_not_lost(monkeypatch):
    """A run started at :00.5 whose first payments (made at :00.6 and :00.8) the service stamped
    :00, before the window: a report from the whole second counts them. A payment the service
    did not keep still reads as lost."""
    second = 1_800_000_000
    started, stamps = second + 0.5, [second, second, second + 1]
    whole_second_service(monkeypatch, second + 9.3, stamps)
    report, shift = reconcile_run.report_of_the_run("http://svc", "t", started)
    assert report["totals"]["USD"]["count"] == 1 and shift == 0.0
    judge = reconcile_run._judged
    totals, problems = judge(
        "http://svc", "t", started, report, {"USD": [3, 300, 0, 0]}, True, 5
    )
    assert problems == [] and totals["USD"]["count"] == 3
    _totals, problems = judge(
        "http://svc", "t", started, report, {"USD": [4, 400, 0, 0]}, True, 5
    )
    lost = "USD: the service holds 3 payments, 1 fewer than the 4 confirmed to the generator"
    assert problems == [f"{lost} (lost payments)"]


class RateLimitedService(WholeSecondService):
    """Answers 429 with ``Retry-After`` (as given, one per ask) before it gives the report."""

    def __init__(self, now: float, retry_afters: list[str | None]):
        super().__init__(now, [])
        self.retry_afters = retry_afters

    def __call__(self, host, token, filter_, timeout, _read_bytes=None):
        if self.retry_afters:
            value = self.retry_afters.pop(0)
            headers = {} if value is None else {"Retry-After": value}
            return 429, b'{"error": {"code": "rate_limited"}}', headers
        return super().__call__(host, token, filter_, timeout)


@pytest.mark.parametrize(
    ("retry_afters", "waits"),
    [
        (["7"], [7.0]),  # as asked, not the 1 s of our own backoff
        (["120", "0"], [30.0, 0.0]),  # capped at RETRY_AFTER_CAP_S; 0 is now
        (["soon"], [1.0]),  # unreadable: our own backoff
    ],
)
def test_a_rate_limited_report_is_asked_again_after_its_retry_after(
    monkeypatch, retry_afters, waits
):
    """A service that rate-limits its report endpoint says when to come back: the end-of-run
    report is asked for again then (it was our own 1, 2, 4 s backoff whatever it said)."""
    now, slept = 1_800_000_000.5, []
    monkeypatch.setattr(
        reconcile_run, "post_report", RateLimitedService(now, list(retry_afters))
    )
    monkeypatch.setattr(
        reconcile_run,
        "time",
        SimpleNamespace(time=lambda: now, sleep=slept.append),
    )
    report, _shift = reconcile_run.report_of_the_run("http://svc", "t", now - 10)
    assert report["payments"] == {"succeeded": 0, "declined": 0}
    assert slept == waits


def test_compare_names_each_currency_and_direction():
    entries = {"USD": [5, 500, 1, 70], "EUR": [2, 40, 0, 0], "JPY": [1, 300, 0, 0]}
    totals = {
        "USD": {"count": 6, "amount": 570},  # 5 confirmed + the unknown one: fine
        "EUR": {"count": 1, "amount": 20},  # lost one
        "GBP": {"count": 1, "amount": 10},  # never paid in GBP
        "JPY": {"count": 1, "amount": 299},  # the right count, another amount
    }
    assert compare(totals, entries) == [
        (
            "EUR: the service holds 1 payment, 1 fewer than the 2 confirmed to the generator "
            "(lost payments)"
        ),
        (
            "GBP: the service holds 1 payment, 1 more than the 0 confirmed to the generator "
            "(double charges, or other traffic) (none were paid in it here: other traffic?)"
        ),
        "JPY: the service holds 299 in minor units, expected 300",
    ]
    assert compare({"USD": {"count": 5, "amount": 500}}, {"USD": [5, 500, 1, 70]}) == []
    # with a lost worker only missing payments are judged
    assert [p[:3] for p in compare(totals, entries, judge_extra=False)] == ["EUR"]


def test_a_web_ui_test_started_right_after_a_stop_allows_the_stopped_ones_in_flight(
    tmp_path, start_service
):
    """Stop a test against a slow service, start the next at once: payments the first one had
    in flight are stored in the second one's window. They are the first test's unknown ones,
    not double charges."""
    service = start_service("--latency-ms", "1500")
    locust, ui = start_web_ui(
        tmp_path, service.url, "--reconcile-run", "--stop-timeout", "0", *LENIENT,
        personas=write_personas(tmp_path, SHOPPER),
    )  # fmt: skip
    try:
        post_form(ui + "/swarm", user_count=8, spawn_rate=8, host=service.url)
        time.sleep(3)
        post_form(ui + "/stop")
        before = charged(service)
        post_form(
            ui + "/swarm", user_count=2, spawn_rate=2, host=service.url, run_time="3s"
        )
        time.sleep(1.6)
        landed = charged(service) - before  # the first test's requests, stored late
        # the second test stops at 3 s, and its own payments in flight land up to 1.5 s
        # later: the SLO tab asks for the books once they are in, so it sees what the end
        # of the run sees (asked before, it could hold one payment fewer)
        time.sleep(3.5)
        deadline = (
            time.monotonic() + 15
        )  # the SLO tab shows the books once the test stopped
        while "books" not in (slo_csv := get_text(ui + "/journeys/slo/csv")):
            assert time.monotonic() < deadline, slo_csv
            time.sleep(0.5)
        locust.send_signal(signal.SIGINT)
        output = locust.communicate(timeout=60)[0]
    finally:
        end_process(locust)
    assert landed > 0, "no payment of the stopped test landed after the restart"
    books = [line for line in output.splitlines() if "the service's report" in line]
    assert books and books[-1].startswith("  ok: "), output[-3000:]
    assert "whose fate was unknown" in books[-1], books
    live = next(
        r for r in csv.DictReader(io.StringIO(slo_csv)) if r["metric"] == "books"
    )
    assert (live["target"], live["passed"]) == ("the ledger", "true"), live
    assert live["message"] in books[-1], (live, books[-1])


@pytest.mark.parametrize(
    ("second", "why"),
    [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")],
    ids=["Ctrl-C", "SIGTERM"],
)
def test_a_second_stop_skips_the_report_and_keeps_the_reports(
    tmp_path, start_service, second, why
):
    """Ctrl-C, then Ctrl-C or SIGTERM (``docker stop``) while the end of the run waits for a
    slow report: it stops waiting at once, the books check fails as not checked, and the CSV
    files are written."""
    service = start_service()
    command = locust_command(
        tmp_path, "--reconcile-run", *LENIENT,
        personas=write_personas(tmp_path, SHOPPER), users=2, run_time="30s",
    )  # fmt: skip
    locust = locust_process(command, service.url)
    try:
        deadline = time.monotonic() + 20
        while not charged(service):
            assert time.monotonic() < deadline and locust.poll() is None, "no traffic"
            time.sleep(0.2)
        slow = requests.put(
            service.url + "/internal/faults",
            json={"report_latency_ms": 60000},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        assert slow.status_code == 200, slow.text
        locust.send_signal(signal.SIGINT)
        before = ""  # Locust's output up to the line saying it asks for the report
        while "for the run's payments" not in before:
            line = locust.stdout.readline()
            assert line and time.monotonic() < deadline, before[-3000:]
            before += line
        locust.send_signal(second)
        asked_again = time.monotonic()
        output = before + locust.communicate(timeout=30)[0]
        waited = time.monotonic() - asked_again
    finally:
        end_process(locust)
    assert waited < 5, (waited, output[-3000:])
    assert locust.returncode == 1, output[-3000:]
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[
        -3000:
    ]
    run = LocustRun(
        locust.returncode, output, tmp_path / "run", tmp_path / "report.html"
    )
    row = books(run)
    assert (row["passed"], row["actual"]) == ("false", "not checked"), row
    assert f"{why} while waiting for it" in row["message"], row
    assert run.csv_rows("journeys") and run.csv_rows("ledger")
