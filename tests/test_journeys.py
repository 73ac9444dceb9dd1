"""Journeys end to end: real Locust against the real reference service, checked in its database."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from journeys.probes import month_somewhere, year_past_everywhere
from tests.conftest import (
    OwnServices,
    RunPlan,
    case_result,
    run_cases,
    run_tests,
    write_personas,
)

CUSTOMER = "shopper,customer,1,visa|mastercard,USD|EUR,5,80,{rate},{retries},,en_US,0,0.05,{codes}"
HEADER_WITH_CODES = (
    "persona,role,weight,card_types,currencies,amount_min,amount_max,decline_rate,max_retries,"
    "batch_size,locale,wait_min,wait_max,decline_codes"
)


def customer_file(tmp_path, rate=0.0, retries=2, codes="insufficient_funds"):
    return write_personas(
        tmp_path,
        CUSTOMER.format(rate=rate, retries=retries, codes=codes),
        header=HEADER_WITH_CODES,
    )


def journeys(run, journey: str) -> dict[str, dict]:
    """Rows of PREFIX_journeys.csv for one journey, keyed by persona (and 'All')."""
    return {
        r["persona"]: r for r in run.csv_rows("journeys") if r["journey"] == journey
    }


def n(row: dict, column: str) -> int:
    return int(float(row[column] or 0))


def payments_by_journey(service, journey: str) -> dict[str, list[tuple]]:
    rows = service.query(
        "SELECT json_extract(metadata, '$.journey_id'), status, decline_code, brand, last4 "
        "FROM payments WHERE json_extract(metadata, '$.journey') = ? ORDER BY created_at, rowid",
        (journey,),
    )
    by_journey: dict[str, list[tuple]] = {}
    for journey_id, *rest in rows:
        by_journey.setdefault(journey_id, []).append(tuple(rest))
    return by_journey


def assert_one_charge_per_paid_journey(service, run, journey="checkout"):
    """Every journey charged at most once, and the DB's charges match the paid journeys."""
    paid = payments_by_journey(service, journey)
    charges = {
        jid: sum(1 for p in ps if p[0] == "succeeded") for jid, ps in paid.items()
    }
    assert all(c <= 1 for c in charges.values()), (
        f"duplicate charges: {[j for j, c in charges.items() if c > 1]}"
    )
    row = journeys(run, journey)["All"]
    paid_journeys = n(row, "succeeded") + n(row, "recovered")
    charged = sum(charges.values())
    # a journey cut off by the end of the run may have been charged before its outcome was recorded
    assert paid_journeys <= charged <= paid_journeys + n(row, "interrupted"), (
        paid_journeys,
        charged,
        row,
    )
    return paid_journeys


def test_lost_card_abandons_without_retry(request, journey_runs):
    service, run = journey_run(request)
    stats = run.stats()
    assert ("POST", "checkout: pay") in stats, run.output[-3000:]
    assert ("POST", "checkout: retry pay") not in stats, (
        "a lost card must never be retried"
    )
    row = journeys(run, "checkout")["All"]
    assert (
        n(row, "abandoned") >= 3
        and n(row, "succeeded") == n(row, "recovered") == n(row, "failed") == 0
    )
    statuses = service.query(
        "SELECT status, decline_code, count(*) FROM payments GROUP BY 1, 2"
    )
    assert [(s, c) for s, c, _ in statuses] == [("declined", "lost_card")]
    for attempts in payments_by_journey(service, "checkout").values():
        assert len(attempts) == 1


def test_insufficient_funds_recovers_on_another_card(request, journey_runs):
    service, run = journey_run(request)
    row = journeys(run, "checkout")["All"]
    assert (
        n(row, "recovered") >= 3 and n(row, "failed") == 0 and n(row, "succeeded") == 0
    ), row
    assert float(row["decline_rate_observed"]) == 1.0
    paid = payments_by_journey(service, "checkout")
    complete = [ps for ps in paid.values() if len(ps) == 2]
    assert complete, paid
    for (first_status, first_code, *_), (second_status, _, brand, last4) in complete:
        assert (first_status, first_code) == ("declined", "insufficient_funds")
        assert second_status == "succeeded" and brand in ("visa", "mastercard")
    assert assert_one_charge_per_paid_journey(service, run) == n(row, "recovered")
    assert run.returncode == 0, run.output[-3000:]


def own_service_runs(request, test_name, service_args, locust_args):
    """Run ``test_name``'s cases through ``run_cases``, each against a reference service of its
    own (``service_args(params)`` its flags; the service is each case's context, so its
    database holds only that case's payments), two at once ahead of their checks;
    ``locust_args(folder, params)`` -> (args, keywords) for ``locust_command``."""
    services = OwnServices()

    def plan(folder, params):
        args, keywords = locust_args(folder, params)
        return RunPlan(service_args(params), args, **keywords)

    try:
        yield run_cases(request, test_name, services.starter(plan), timeout=120)
    finally:
        services.stop()


@pytest.fixture(scope="module")
def retry_rule_runs(request):
    def locust_args(folder, params):
        personas = customer_file(
            folder, rate=1, retries=params["retries"], codes=params["code"]
        )
        return ("--seed", "5"), {"personas": personas, "users": 2, "run_time": "2s"}

    yield from own_service_runs(
        request, "test_retry_rules_by_decline_code", lambda params: (), locust_args
    )


@pytest.mark.parametrize(
    ("code", "retries", "outcome"),
    [
        ("expired_card", 1, "recovered"),
        ("incorrect_cvc", 1, "recovered"),
        ("processing_error", 1, "abandoned"),
        ("processing_error", 2, "recovered"),
    ],
)
def test_retry_rules_by_decline_code(request, retry_rule_runs, code, retries, outcome):
    case = case_result(retry_rule_runs, request)
    service, run = case.context, case.locust_run()
    row = journeys(run, "checkout")["All"]
    assert n(row, outcome) >= 1 and n(row, "failed") == 0, row
    stats = run.stats()
    assert int(stats[("POST", "checkout: retry pay")]["Request Count"]) >= 1
    if code == "processing_error":
        # transient: the same card once more, which this test card declines again; then
        # another card, which pays
        expected = [("declined", code), ("declined", code)]
        if retries == 2:
            expected.append(("succeeded", None))
        finished = [
            [(status, decline) for status, decline, *_ in ps]
            for ps in payments_by_journey(service, "checkout").values()
            if len(ps) == len(expected)
        ]
        assert finished and all(ps == expected for ps in finished), finished[:3]


def test_clean_run_has_one_charge_per_paid_journey(request, journey_runs):
    service, run = journey_run(request)
    row = journeys(run, "checkout")["All"]
    assert n(row, "succeeded") > 0 and n(row, "failed") == 0, row
    assert_one_charge_per_paid_journey(service, run)


def test_no_duplicate_charges_under_stalls_and_5xx(request, journey_runs):
    service, run = journey_run(request)
    stats = run.stats()
    resends = [k for k in stats if "resend same key" in k[1]]
    assert resends, "faults should have forced resends with the same key"
    row = journeys(run, "checkout")["All"]
    assert n(row, "recovered") > 0, row
    # resends are not retries: the funnel's "retried" counts checkouts that tried again after a
    # decline (every declined one, with insufficient_funds and 2 retries), whatever the resends
    assert n(row, "funnel_retried") == n(row, "funnel_declined") > 0, row
    assert n(row, "recovered") <= n(row, "funnel_declined"), row
    assert_one_charge_per_paid_journey(service, run)
    # each resend reused its key: the service saw no key with two different payments
    dupes = service.query(
        "SELECT idempotency_key, count(*) FROM payments GROUP BY idempotency_key HAVING count(*) > 1"
    )
    assert dupes == []


OPERATOR = "ops,operator,1,visa|amex,USD|JPY,1,500,0.2,0,4,en_US,0,0.05"


def test_operator_batches_reconcile(request, journey_runs):
    service, run = journey_run(request)
    row = journeys(run, "batch_report")["All"]
    assert (
        n(row, "reconciled") >= 2 and n(row, "mismatch") == 0 and n(row, "failed") == 0
    ), row
    batches = service.query(
        "SELECT batch_id, count(*), sum(status = 'declined') FROM payments GROUP BY batch_id"
    )
    assert batches and all(count == 4 for _, count, _ in batches), batches
    assert ("POST", "batch_report: report") in run.stats()
    assert run.returncode == 0, run.output[-3000:]


def test_tampered_report_is_caught_and_fails_the_verdict_outright(
    request, journey_runs
):
    """A report that leaves a payment out is a mismatch, named in the failures and the log; and
    a mismatch fails the SLO verdict outright, even where any error rate would pass (this run
    was test_slo.py's test_reconciliation_mismatch_fails_outright too: one run checks both)."""
    _, run = journey_run(request)
    row = journeys(run, "batch_report")["All"]
    assert n(row, "mismatch") >= 1 and n(row, "reconciled") == 0, row
    # the failures table names what differs: one row per currency that differs, not per batch
    errors = [r["Error"] for r in run.csv_rows("failures") if r["Method"] == "journey"]
    assert 1 <= len(errors) <= 2 < n(row, "mismatch"), (errors, row)
    # ... and which way: the tampered report leaves a payment out
    assert errors[0].startswith(
        "mismatch: the batch report differs from what was paid (less in the report: "
    ), errors
    assert "more in the report" not in errors[0], errors
    # ... and the log has the figures
    assert "mismatch in batch batch_" in run.output and "paid 4 /" in run.output
    assert "report 3 /" in run.output
    assert run.returncode == 1, run.output[-3000:]
    assert any(
        "reconciliation mismatches (batch_report)" in r["message"]
        for r in run.csv_rows("slo")
        if r["passed"] == "false" and r["metric"] != "verdict"
    ), run.csv_rows("slo")
    # the failed journeys the SLO judges are those Locust's journey row counts as failures
    locust_row = run.stats()[("journey", "batch_report")]
    judged = next(r for r in run.csv_rows("slo") if r["metric"] == "journey_error_rate")
    failures = int(locust_row["Failure Count"])
    finished = int(locust_row["Request Count"])
    assert judged["actual_value"] == f"{failures / finished:.4f}", (judged, locust_row)
    mismatches = n(row, "mismatch")
    assert judged["message"].endswith(
        f"(batch_report, {failures} of {finished}, {mismatches} of them mismatches)"
    ), judged
    # each mismatch is a failed "journey" entry in Locust's failures, naming what differed
    named = [(r["Method"], r["Name"], r["Error"]) for r in run.csv_rows("failures")]
    assert any(
        e[:2] == ("journey", "batch_report")
        and e[2].startswith("mismatch: the batch report differs from what was paid (")
        for e in named
    ), named


PROBER = "prober,prober,1,visa|amex|jcb,USD|JPY,1,100,0,0,,ja_JP,0,0.05"

# -- each test's run against a reference service of its own (its database holds that run's
# payments only), run ahead of the checks two at once: (service flags, Locust arguments,
# personas file rows or a customer_file's keywords, users, run time) per test
SHOPPER_USD = "shopper,customer,1,visa,USD,5,80,0,0,,en_US,0,0.05"
OTHER_SHOPPER_EUR = "other_shopper,customer,1,visa,EUR,5,80,0,0,,en_US,0,0.05"
JOURNEY_RUNS = {
    "test_lost_card_abandons_without_retry": (
        (), ("--seed", "3"), {"rate": 1, "retries": 3, "codes": "lost_card"}, 3, "2s",
    ),
    "test_insufficient_funds_recovers_on_another_card": (
        (), ("--seed", "4"), {"rate": 1, "retries": 2, "codes": "insufficient_funds"}, 3, "2s",
    ),
    "test_clean_run_has_one_charge_per_paid_journey": (
        (), ("--seed", "6"),
        {"rate": 0.3, "retries": 2, "codes": "insufficient_funds|generic_decline|lost_card"},
        4, "2s",
    ),
    "test_no_duplicate_charges_under_stalls_and_5xx": (
        ("--error-rate", "0.25", "--stall-rate", "0.1", "--stall-s", "1.2"),
        ("--seed", "7", "--request-timeout", "0.5"),
        {"rate": 0.2, "retries": 2, "codes": "insufficient_funds"}, 4, "3s",
    ),
    "test_operator_batches_reconcile": ((), ("--seed", "8"), (OPERATOR,), 2, "2s"),
    "test_tampered_report_is_caught_and_fails_the_verdict_outright": (
        ("--report-tamper",), ("--seed", "9", "--slo-error-rate", "1"),
        (OPERATOR.replace(",0.2,", ",0,"),), 1, "2s",
    ),
    "test_probes_pass_against_the_reference_service": (
        (), ("--seed", "10"), (PROBER,), 2, "2s",
    ),
    "test_a_replay_charged_again_is_a_duplicate_charge": (
        ("--replay-charges",), ("--tags", "errors", "--seed", "12"), (PROBER,), 2, "2s",
    ),
    "test_persona_name_is_a_tag": (
        (), ("--tags", "other_shopper"), (SHOPPER_USD, OTHER_SHOPPER_EUR, OPERATOR), 3, "2s",
    ),
    "test_exclude_tags_leaves_out_a_persona": (
        (), ("--exclude-tags", "shopper"), (SHOPPER_USD, OTHER_SHOPPER_EUR), 2, "2s",
    ),
    "test_excluding_error_probes_keeps_the_edge_probes_think_time": (
        (), ("--exclude-tags", "errors"),
        ("prober,prober,1,visa|amex|jcb,USD|JPY,1,100,0,0,,en_US,0.5,0.5",), 1, "3s",
    ),
    "test_probes_wait_out_a_rate_limit": (
        ("--rate-limit-rps", "4"), ("--tags", "errors", "--seed", "14"), (PROBER,), 1, "5s",
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def journey_runs(request):
    """The runs of JOURNEY_RUNS' tests this session selected, each against a service of its
    own (the context), two at once ahead of their checks."""
    services = OwnServices()

    def plan(flags, args, personas, users, run_time):
        def for_folder(folder):
            rows = (
                customer_file(folder, **personas)
                if isinstance(personas, dict)
                else write_personas(folder, *personas)
            )
            return RunPlan(flags, args, personas=rows, users=users, run_time=run_time)

        return for_folder

    try:
        yield run_tests(
            request,
            {name: services.starter(plan(*p)) for name, p in JOURNEY_RUNS.items()},
            timeout=120,
        )
    finally:
        services.stop()


def journey_run(request) -> tuple:
    """(its service, its LocustRun) for the running test, from ``journey_runs``."""
    case = case_result(request.getfixturevalue("journey_runs"), request)
    return case.context, case.locust_run()


def test_probes_pass_against_the_reference_service(request, journey_runs):
    service, run = journey_run(request)
    stats = run.stats()
    names = {name for (_, name) in stats}
    assert {
        "edge_probes: largest amount",
        "error_probes: bad luhn",
        "error_probes: report with wrong token",
        "error_probes: key reuse: replay",
        "error_probes: missing idempotency key",
        "error_probes: idempotency key too long",
    } <= names
    failed = {
        k: r["Failure Count"]
        for k, r in stats.items()
        if int(r["Failure Count"]) and k[1] != "Aggregated"
    }
    assert not failed, (failed, run.csv_rows("failures"))
    for journey in ("edge_probes", "error_probes"):
        row = journeys(run, journey)["All"]
        assert n(row, "succeeded") >= 1 and n(row, "failed") == 0, row
        # every probe that pays pays at once; the refused bad requests are not attempts to pay
        assert float(row["attempts_per_payment"]) == 1.0, row
        assert n(row, "duplicate_charges") == 0, row
    # the replays named their payments and charged nothing new: one charge per key, and the
    # generator's books (which do not count a replay again) hold exactly what was charged
    assert not service.query(
        "SELECT idempotency_key FROM payments GROUP BY idempotency_key HAVING count(*) > 1"
    )
    booked = sum(int(r["payments"]) for r in run.csv_rows("ledger"))
    assert booked == service.query("SELECT count(*) FROM payments")[0][0] > 0
    # one journey id per probe journey: an edge journey's seven payments are one group
    groups = service.query(
        "SELECT count(*) FROM payments WHERE json_extract(metadata, '$.journey') = "
        "'edge_probes' GROUP BY json_extract(metadata, '$.journey_id')"
    )
    assert groups and max(size for (size,) in groups) == 7, groups


@pytest.fixture(scope="module")
def clock_runs(request):
    def service_args(params):
        return "--clock-offset-s", str(params["days"] * 86400)

    def locust_args(folder, params):
        personas = write_personas(folder, PROBER)
        return ("--seed", "11"), {"personas": personas, "users": 1, "run_time": "2s"}

    yield from own_service_runs(
        request, "test_probes_follow_the_services_clock", service_args, locust_args
    )


@pytest.mark.parametrize("days", [45, -800])
def test_probes_follow_the_services_clock(request, clock_runs, days):
    """A service whose clock runs off (``--clock-offset-s``, set on purpose) judges expiry by
    its own month: 45 days ahead it refuses this machine's "this month", 800 days behind it
    takes this machine's "last year". The probes read the service's clock from its answers'
    ``created`` and expect what that clock makes right, so they still pass."""
    run = case_result(clock_runs, request).locust_run()
    assert run.csv_rows("failures") == [], run.output[-2000:]
    for journey in ("edge_probes", "error_probes"):
        row = journeys(run, journey)["All"]
        assert n(row, "succeeded") >= 1 and n(row, "failed") == 0, row


def test_a_replay_charged_again_is_a_duplicate_charge(request, journey_runs):
    """A service that forgets what a key paid (``--replay-charges``) charges the error probes'
    replay again: the run fails with one stable failure message, counts every duplicate, logs
    the payment ids of the first few, and books only the first charge of each key."""
    service, run = journey_run(request)
    assert run.returncode == 1, run.output[-3000:]
    twice = service.query(
        "SELECT idempotency_key, count(*), count(DISTINCT id) FROM payments "
        "GROUP BY idempotency_key HAVING count(*) > 1"
    )
    assert twice and all(c == d == 2 for _, c, d in twice), twice
    row = journeys(run, "error_probes")["All"]
    assert n(row, "duplicate_charges") == len(twice), (row, twice)
    assert n(row, "failed") == len(twice), row
    failures = {(r["Name"], r["Error"]) for r in run.csv_rows("failures")}
    duplicate = "duplicate charge: the idempotency key named another payment"
    assert (
        "error_probes: key reuse: replay",
        f"CatchResponseError('{duplicate}')",
    ) in (failures)
    assert sum(duplicate in error for _, error in failures) == 2, (
        failures
    )  # request, journey
    assert "pay_" not in " ".join(error for _, error in failures), failures
    assert "duplicate charge: idempotency key (sha256 " in run.output
    assert ", now pay_" in run.output
    booked = sum(int(r["payments"]) for r in run.csv_rows("ledger"))
    charged = service.query("SELECT count(*) FROM payments")[0][0]
    assert booked == charged - len(twice), (booked, charged, twice)
    assert "SLO verdict: FAIL" in run.output


#: every role, with think times far below the run time (the default file's 2-5 s could
#: leave a 2 s run on a busy machine without a single probe)
TAGS_SHOPPER = "shopper,customer,1,visa|mastercard,USD|EUR,5,80,0.1,2,,en_US,0,0.05"


@pytest.fixture(scope="module")
def tag_runs(request):
    def locust_args(folder, params):
        personas = write_personas(folder, TAGS_SHOPPER, OPERATOR, PROBER)
        args = (*params["args"], "--seed", "11")
        return args, {"personas": personas, "users": 6, "run_time": "2s"}

    yield from own_service_runs(
        request, "test_tags_select_journeys", lambda params: (), locust_args
    )


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["--tags", "operator"], ("batch_report",)),
        (["--tags", "edge"], ("edge_probes",)),
        (["--exclude-tags", "errors", "probes"], ("checkout", "batch_report")),
    ],
)
def test_tags_select_journeys(request, tag_runs, args, allowed):
    case = case_result(tag_runs, request)
    service, run = case.context, case.locust_run()
    names = {name for (kind, name) in run.stats() if name != "Aggregated"}
    assert names, run.output[-3000:]
    assert all(name.split(":")[0] in allowed for name in names), names
    journeys_seen = {
        json.loads(m)["journey"]
        for (m,) in service.query("SELECT metadata FROM payments")
    }
    assert journeys_seen and journeys_seen <= set(allowed)


def test_persona_name_is_a_tag(request, journey_runs):
    """``--tags <persona>`` runs that persona only; the role tag still runs every persona of it."""
    service, run = journey_run(request)
    assert run.returncode == 0, run.output[-3000:]
    personas_seen = {
        json.loads(m)["persona"]
        for (m,) in service.query("SELECT metadata FROM payments")
    }
    assert personas_seen == {"other_shopper"}
    assert {
        r["persona"] for r in run.csv_rows("persona_mix") if int(r["users"] or 0)
    } == {"other_shopper"}


def test_exclude_tags_leaves_out_a_persona(request, journey_runs):
    """``--exclude-tags <persona>`` runs every persona but that one."""
    service, run = journey_run(request)
    personas_seen = {
        json.loads(m)["persona"]
        for (m,) in service.query("SELECT metadata FROM payments")
    }
    assert personas_seen == {"other_shopper"}, run.output[-3000:]


def test_excluding_error_probes_keeps_the_edge_probes_think_time(request, journey_runs):
    """With ``--exclude-tags errors`` the prober still thinks 0.5 s before each edge journey."""
    _, run = journey_run(request)
    assert run.returncode == 0, run.output[-3000:]
    edge = journeys(run, "edge_probes")["All"]
    assert 1 <= n(edge, "started") <= 7, edge  # 3 s / 0.5 s, not a hot loop
    assert "error_probes" not in {r["journey"] for r in run.csv_rows("journeys")}


def test_probes_wait_out_a_rate_limit(request, journey_runs):
    """A 429 says nothing about the probe's input: the probe waits as Retry-After asks and sends
    again, so a rate-limited service is not reported as refusing bad input wrongly."""
    _, run = journey_run(request)
    limited = [
        r for r in run.csv_rows("failures") if "got 429 rate limited" in r["Error"]
    ]
    assert limited, run.csv_rows(
        "failures"
    )  # the limit was hit, each 429 a failed request
    row = journeys(run, "error_probes")["All"]
    assert n(row, "succeeded") >= 1 and n(row, "failed") == 0, (
        row,
        run.csv_rows("failures"),
    )


@pytest.mark.parametrize(
    "now",
    [
        "2026-11-30T23:30:00+00:00",
        "2026-12-31T20:00:00+00:00",
        "2027-01-01T05:00:00+00:00",
    ],
)
def test_expiry_probes_hold_in_every_time_zone(now):
    """The contract does not say in which zone "this month" is: a service may read its clock in
    any. The card "expiring this month" is the past in none (it was the generator's local month:
    at 18:30 in New York on 30 November the reference, on UTC, refused it as expired) and the
    "expired" card's year is the past in all (last year by the local clock was not, at New Year)."""
    moment = dt.datetime.fromisoformat(now)
    year, month = month_somewhere(moment)
    expired = year_past_everywhere(moment)
    for hours in range(-12, 15):
        there = moment + dt.timedelta(hours=hours)
        assert (year, month) >= (there.year, there.month), hours
        assert (expired, 12) < (there.year, there.month), hours
    # away from a month's end it is this month everywhere
    assert month_somewhere(dt.datetime(2026, 12, 6, 4, tzinfo=dt.UTC)) == (2026, 12)
