"""Journey statistics and the SLO verdict as data: merging, bounds, the checks' wording.

The end-to-end behaviour (real Locust, real service) is in test_results.py / test_slo.py; these
pin down the arithmetic those runs rely on, in milliseconds.
"""

from __future__ import annotations

import csv
import random
from types import SimpleNamespace

import pytest
from locust.rpc.protocol import Message
from locust.stats import RequestStats

from journeys.events import JourneyResult
from journeys.results import csv_report, html_report, summary, webui
from journeys.results.slo import (
    NO_REQUESTS_METRIC,
    Check,
    SloConfigError,
    SloTargets,
    Verdict,
    decline_interval,
    evaluate,
)
from journeys.results.snapshot import Snapshot
from journeys.results.stats import Histogram, JourneyBook, JourneyCounters
from journeys.results.tables import funnel_stages_of_row, journey_rows


def _result(outcome="succeeded", ms=10.0, persona="shopper", journey="checkout", **kw):
    return JourneyResult(
        journey, persona, outcome, ms, **{"attempts": 1, "payments": 1, **kw}
    )


def test_histogram_is_bounded_and_its_percentiles_are_close():
    h = Histogram()
    rng = random.Random(1)
    samples = [rng.lognormvariate(4, 1.2) for _ in range(50_000)]
    for ms in samples:
        h.add(ms)
    assert len(h.buckets) < 3000, "durations must live in rounded buckets, not samples"
    exact = sorted(samples)[int(len(samples) * 0.95)]
    assert abs(h.percentile(0.95) - exact) / exact < 0.005  # three significant digits
    assert h.max == max(samples) and h.count == len(samples)


def test_percentiles_stay_within_the_exact_min_and_max():
    """1047 ms lands in the 1050 bucket: the percentiles must still not pass the max of 1047;
    1144 ms lands in the 1140 bucket: they must not go below the min of 1144 either."""
    book = JourneyBook()
    for ms in [1040.0] * 50 + [1047.0] * 50:
        book.finished(_result(ms=ms, persona="budget_shopper"))
    assert book.total().durations.percentile(0.99) == 1047
    for row in journey_rows(book, {}):
        percentiles = [row["p50_ms"], row["p95_ms"], row["p99_ms"]]
        assert max(percentiles) <= row["max_ms"] == 1047, row
    one = Histogram()
    one.add(34449.0)  # the 34400 bucket, below the only sample
    assert one.percentile(0.5) == one.percentile(0.99) == 34449
    fast = JourneyBook()
    for ms in [1144.0] * 60 + [1160.0] * 40:
        fast.finished(_result(ms=ms))
    assert fast.total().durations.percentile(0.5) == 1144
    # merged from workers, the min is the fastest of all
    merged = Histogram()
    for part in ([1300.0, 1420.0], [], [1144.0, 1900.0]):
        h = Histogram()
        for ms in part:
            h.add(ms)
        merged.merge(Histogram.from_dict(h.to_dict()))
    assert (merged.min, merged.max, merged.count) == (1144.0, 1900.0, 4)
    assert merged.percentile(0.01) == 1144  # the 1140 bucket, below the fastest sample


def test_worker_books_merge_to_what_one_process_would_count():
    rng = random.Random(2)
    results = [
        _result(
            rng.choice(
                ["succeeded", "recovered", "abandoned", "failed", "interrupted"]
            ),
            rng.uniform(1, 900),
            persona=rng.choice(["a", "b"]),
            declined_payments=rng.choice([0, 1]),
            attempts=rng.choice([1, 2]),
        )
        for _ in range(500)
    ]
    single, master, workers = (
        JourneyBook(),
        JourneyBook(),
        [JourneyBook(), JourneyBook()],
    )
    for i, r in enumerate(results):
        single.started(r.journey, r.persona)
        single.finished(r)
        workers[i % 2].started(r.journey, r.persona)
        workers[i % 2].finished(r)
        if i % 7 == 0:  # --journey-rate's dropped starts travel with the rest
            single.dropped(r.journey, r.persona, 2)
            workers[i % 2].dropped(r.journey, r.persona, 2)
        if i % 97 == 0:  # a report every now and then: send the delta, start afresh
            for w in workers:
                wire = Message.unserialize(
                    Message("stats", {"journeys": w.serialize()}, "w").serialize()
                )
                master.merge(wire.data["journeys"])
                w.clear()
    for w in workers:
        master.merge(w.serialize())
    assert master.entries == single.entries
    assert master.total().started == 500
    assert master.total().dropped == 2 * 72 and master.total().asked == 500 + 2 * 72


def test_a_reset_counts_journeys_in_flight_here_and_on_workers_as_started():
    local, master, worker = JourneyBook(), JourneyBook(), JourneyBook()
    for book in (local, worker):
        for _ in range(3):
            book.started("checkout", "a")
        book.finished(_result(persona="a"))  # one done before the reset, two in flight
    master.merge(worker.serialize(), worker.in_flight_report(), source="w1")
    worker.clear()
    for book in (local, master):
        book.reset()
        assert book.get("checkout", "a").started == 2
        assert book.get("checkout", "a").finished == 0
    for _ in range(2):
        local.finished(_result(persona="a"))
        worker.finished(_result(persona="a"))
    master.merge(worker.serialize(), worker.in_flight_report(), source="w1")
    for book in (local, master):
        counters = book.get("checkout", "a")
        assert (counters.started, counters.finished) == (2, 2)
    master.reset()  # nothing in flight any more: nothing carried
    assert master.get("checkout", "a").started == 0
    # a worker that vanished with journeys in flight: its gauge is dropped, not carried forever
    master.merge([], [["checkout", "a", 3]], source="w2")
    master.forget_workers_except({"w1"})
    master.reset()
    assert master.get("checkout", "a").started == 0
    local.restart()
    assert not local and not local.in_flight


def test_a_lost_workers_journeys_in_flight_count_as_interrupted():
    """Their starts reached the master, their outcomes never will: without this the outcomes
    fell short of the journeys started (35 started, 33 outcomes in a real run)."""
    worker, master = JourneyBook(), JourneyBook()
    for _ in range(3):
        worker.started("checkout", "a")
    worker.finished(_result(persona="a"))
    master.merge(worker.serialize(), worker.in_flight_report(), source="w1")
    shown = master.with_lost_workers(["w1"])
    counters = shown.get("checkout", "a")
    assert (counters.started, counters.outcomes["interrupted"]) == (3, 2)
    assert counters.finished == 1 and counters.durations.count == 1
    # a copy: a worker that comes back reports those outcomes itself
    assert master.get("checkout", "a").outcomes["interrupted"] == 0
    assert master.with_lost_workers([]) is master


def test_interrupted_journeys_stay_out_of_payment_figures_and_durations():
    book = JourneyBook()
    book.finished(_result("succeeded", declined_payments=0))
    book.finished(_result("interrupted", ms=5000.0, declined_payments=0))
    total = book.total("checkout")
    assert total.payments == 1 and total.outcomes["interrupted"] == 1
    assert total.durations.count == 1 and total.durations.max == 10.0
    assert total.finished == 1


def test_rows_have_an_all_row_with_a_payment_weighted_configured_rate():
    book = JourneyBook()
    for _ in range(3):
        book.finished(_result(persona="a", declined_payments=1))
    book.finished(_result(persona="b"))
    personas = {
        "a": SimpleNamespace(decline_rate=1.0),
        "b": SimpleNamespace(decline_rate=0.0),
    }
    rows = {r["persona"]: r for r in journey_rows(book, personas)}
    assert rows["All"]["decline_rate_configured"] == 0.75
    assert rows["All"]["decline_rate_observed"] == 0.75
    assert rows["a"]["funnel_declined"] == 3


def test_payments_without_a_verdict_stay_out_of_the_decline_rate():
    """A shopper configured at 50% declines, 40 payments declined and 40 paid, and 120 more that
    never got an answer (the service was down): 50% observed, within the interval; counted over
    every payment it read 20% and failed the decline check as well as the error rate."""
    book = JourneyBook()
    for _ in range(40):
        book.finished(_result(persona="shopper", declined_payments=1))
        book.finished(_result(persona="shopper"))
    for _ in range(120):
        book.finished(_result("failed", persona="shopper", unsettled_payments=1))
    total = book.total("checkout")
    assert (total.payments, total.settled_payments) == (200, 80)
    assert total.decline_rate == 0.5
    shopper = SimpleNamespace(name="shopper", decline_rate=0.5)
    verdict = evaluate(_environment(RequestStats(), [shopper]), book, SloTargets())
    (check,) = [c for c in verdict.checks if c.metric == "decline_rate"]
    assert check.passed and "n=80" in check.message, check
    merged = JourneyCounters.from_dict(total.to_dict())
    assert merged.unsettled_payments == 120


def test_decline_interval_is_five_sigma():
    low, high = decline_interval(0.3, 100)
    assert (round(low, 4), round(high, 4)) == (0.0709, 0.5291)
    assert decline_interval(0.0, 50) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"slo_p50_ms": "abc"}, "--slo-p50-ms must be a number"),
        ({"slo_p95_ms": "-5"}, "--slo-p95-ms must be a positive number"),
        ({"slo_p50_ms": "0"}, "--slo-p50-ms must be a positive number"),
        (
            {"slo_error_rate": "5"},
            "--slo-error-rate must be a fraction between 0 and 1",
        ),
        (
            {"slo_journey_p95_ms": "nan"},
            "--slo-journey-p95-ms must be a positive number",
        ),
        ({"slo_p95_ms": "5%"}, "--slo-p95-ms must be a number, got '5%'. "),
        (  # a percentage: it said only "must be a number"
            {"slo_error_rate": "1%"},
            "--slo-error-rate must be a number, got '1%': write 0.01 for 1%",
        ),
        (  # the way to turn it off: it said only "must be a number"
            {"slo_journey_p95_ms": "off"},
            (
                "--slo-journey-p95-ms must be a number, got 'off': leave it unset or empty "
                "to judge no journey durations"
            ),
        ),
    ],
)
def test_bad_targets_are_named(values, needle):
    options = SimpleNamespace(
        **{
            "slo_p50_ms": "100",
            "slo_p95_ms": "500",
            "slo_error_rate": "0.01",
            "slo_journey_p95_ms": "",
            **values,
        }
    )
    with pytest.raises(SloConfigError, match="Invalid SLO target") as exc:
        SloTargets.from_options(options)
    assert needle in str(exc.value)


def _environment(stats: RequestStats, personas=()):
    classes = [SimpleNamespace(persona=p, weight=1, __name__=p.name) for p in personas]
    return SimpleNamespace(
        runner=SimpleNamespace(stats=stats), user_classes=classes, parsed_options=None
    )


def test_verdict_says_what_failed_and_by_how_much():
    stats = RequestStats()
    for ms in [20] * 90 + [612] * 10:
        stats.log_request("POST", "checkout: pay", ms, 0)
    stats.log_request("journey", "checkout", 5000, 0)  # journeys are not requests
    book = JourneyBook()
    book.finished(_result("succeeded", persona="dup", duplicate_charges=1))
    book.finished(_result("mismatch", journey="batch_report", persona="ops"))
    shopper = SimpleNamespace(name="shopper", decline_rate=0.5)
    for _ in range(40):
        book.finished(_result(persona="shopper", declined_payments=0))
    verdict = evaluate(_environment(stats, [shopper]), book, SloTargets())
    failed = {c.message for c in verdict.failures}
    assert "p95 612 ms > 500 ms (checkout, 112 ms over)" in failed
    assert "p95 612 ms > 500 ms (http, 112 ms over)" in failed
    assert "1 duplicate charges (checkout)" in failed
    assert "1 reconciliation mismatches (batch_report)" in failed
    assert any(
        m.startswith("decline rate 0.000 outside 0.105..0.895") for m in failed
    ), failed
    assert not any("p50" in m for m in failed), (
        "p50 is 20 ms: the 5 s journey entry must not count"
    )
    assert verdict.exit_code == 1


def test_verdict_passes_a_clean_run_and_judges_declines_only_from_30_payments():
    stats = RequestStats()
    for _ in range(50):
        stats.log_request("POST", "checkout: pay", 12, 0)
    book = JourneyBook()
    for _ in range(29):
        book.finished(
            _result(declined_payments=1)
        )  # configured 0, but only 29 payments
    verdict = evaluate(
        _environment(stats, [SimpleNamespace(name="shopper", decline_rate=0.0)]),
        book,
        SloTargets(),
    )
    assert verdict.passed, [c.message for c in verdict.failures]
    assert not any(c.metric == "decline_rate" for c in verdict.checks)


def test_probes_pay_with_good_cards_so_no_decline_rate_applies():
    stats = RequestStats()
    stats.log_request("POST", "edge_probes: smallest amount", 5, 0)
    book = JourneyBook()
    for _ in range(40):
        book.finished(_result(journey="edge_probes", persona="prober", payments=7))
    prober = SimpleNamespace(name="prober", decline_rate=0.5)
    verdict = evaluate(_environment(stats, [prober]), book, SloTargets())
    assert verdict.passed, [c.message for c in verdict.failures]
    rows = journey_rows(book, {"prober": prober})
    assert all(r["decline_rate_configured"] is None for r in rows)


def _snapshot(book: JourneyBook) -> Snapshot:
    return Snapshot(journey_rows(book, {}), [], Verdict(SloTargets()))


def test_summary_shows_every_name_and_number_whole_and_aligned():
    book = JourneyBook()
    for persona in ("eu_shopper_long_name_a", "eu_shopper_long_name_b"):
        book.started("checkout_for_a_long_while", persona)
        book.finished(
            _result(journey="checkout_for_a_long_while", persona=persona, ms=1_234_567)
        )
    table = summary.lines(_snapshot(book))[:5]  # header, rule, 2 personas, All
    text = "\n".join(table)
    assert "…" not in text, text
    for persona in ("eu_shopper_long_name_a", "eu_shopper_long_name_b"):
        assert f"checkout_for_a_long_while {persona} " in text, text
    assert "1234567" in text, text
    assert len({len(line) for line in table}) == 1, text
    assert table[0].split()[-1] == "max" and summary.lines(_snapshot(book))[
        5
    ].startswith("ok = succeeded")


def test_journeys_csv_names_operator_funnel_ends_for_what_they_are():
    book = JourneyBook()
    for journey, persona, outcomes in (
        ("batch_report", "ops", ["reconciled"] * 3 + ["mismatch"]),
        ("checkout", "shopper", ["recovered"] * 2 + ["abandoned"]),
    ):
        for outcome in outcomes:
            book.started(journey, persona)
            book.finished(_result(outcome, journey=journey, persona=persona))
    rows = journey_rows(book, {})
    text = csv_report.as_text(csv_report.write_journeys, rows)
    csv_rows = {
        (r["journey"], r["persona"]): r for r in csv.DictReader(text.splitlines())
    }
    funnel = (
        "funnel_recovered",
        "funnel_abandoned",
        "funnel_reconciled",
        "funnel_mismatch",
    )

    def ends(row: dict) -> tuple[str, ...]:
        return tuple(row[column] for column in funnel)

    assert ends(csv_rows[("batch_report", "ops")]) == ("", "", "3", "1")
    assert ends(csv_rows[("checkout", "shopper")]) == ("2", "1", "", "")
    # the HTML funnel and the web UI's funnel tab still show each journey's own ends
    ops = next(r for r in rows if r["persona"] == "ops")
    assert funnel_stages_of_row(ops)[3:5] == [("reconciled", 3), ("mismatch", 1)]
    tab = next(
        t for t in webui.extended_stats(_snapshot(book)) if t["key"] == "journey-funnel"
    )
    ops_ui = next(r for r in tab["data"] if r["persona"] == "ops")
    assert (ops_ui["recovered"], ops_ui["abandoned"]) == ("3 (75%)", "1 (25%)")


def test_the_funnel_shows_journeys_interrupted_by_the_end_of_the_run():
    """Interrupted journeys are the funnel's last stage (CSV, web UI tab, HTML report): the
    funnel accounts for every journey started, not only the ones that reached an outcome."""
    book = JourneyBook()
    for journey, persona, outcomes in (
        ("checkout", "shopper", ["succeeded", "recovered"] + ["interrupted"] * 2),
        ("batch_report", "ops", ["reconciled", "interrupted"]),
    ):
        for outcome in outcomes:
            book.started(journey, persona)
            book.finished(_result(outcome, journey=journey, persona=persona))
    rows = journey_rows(book, {})
    text = csv_report.as_text(csv_report.write_journeys, rows)
    header = text.splitlines()[0].split(",")
    assert header[-1] == "funnel_interrupted", (
        header
    )  # the older columns keep their place
    csv_rows = {
        (r["journey"], r["persona"]): r for r in csv.DictReader(text.splitlines())
    }
    assert csv_rows[("checkout", "All")]["funnel_interrupted"] == "2"
    assert csv_rows[("batch_report", "ops")]["funnel_interrupted"] == "1"
    shopper = next(r for r in rows if r["persona"] == "shopper")
    assert funnel_stages_of_row(shopper)[-1] == ("interrupted", 2)
    svg = html_report.funnel_svg(shopper)
    assert ">interrupted</text>" in svg
    # as the web UI's tab writes it ("2 50%" was read as 250%)
    assert ">2 (50%)</text>" in svg, svg
    # it shrinks to a narrow screen instead of losing its counts off the right edge
    assert 'viewBox="0 0 500 ' in svg and "max-width: 100%" in svg, svg[:300]
    tab = next(
        t for t in webui.extended_stats(_snapshot(book)) if t["key"] == "journey-funnel"
    )
    ui = {r["persona"]: r for r in tab["data"]}
    assert (ui["shopper"]["interrupted"], ui["ops"]["interrupted"]) == (
        "2 (50%)",
        "1 (50%)",
    )
    assert webui.FUNNEL_TITLES[-1] == ("interrupted", "Interrupted")


def test_the_slo_tab_names_no_failure_in_its_verdict_row_and_waits_for_requests():
    """The web UI's SLO tab: the verdict's row says how many checks failed, each failed check
    being its own row right below (the whole list there made that row a page high on a narrow
    window); a test without a request yet waits until it stops, instead of failing."""
    slow = Check("http", "p95_ms", "< 500", "612", False, "p95 612 ms > 500 ms (http)")
    verdict = Verdict(
        SloTargets(), [Check("http", "p50_ms", "< 100", "2", True, "p50"), slow]
    )
    rows = webui.slo_rows(verdict, live=True)
    assert rows[0]["message"] == "SLO verdict: FAIL (1 of 2 checks failed)", rows[0]
    assert rows[1]["message"] == slow.message  # failed first
    none = Check("http", NO_REQUESTS_METRIC, "> 0", "0", False, "no HTTP requests")
    waiting = webui.slo_rows(Verdict(SloTargets(), [none]), live=True)
    assert [(r["result"], r["metric"]) for r in waiting] == [("WAIT", "verdict")]
    # once the test stopped, a run without requests fails
    ended = webui.slo_rows(Verdict(SloTargets(), [none]), live=False)
    assert [r["result"] for r in ended] == ["FAIL", "FAIL"], ended
    # a failure beside it is not hidden by the wait
    both = webui.slo_rows(Verdict(SloTargets(), [none, slow]), live=True)
    assert [r["result"] for r in both] == ["FAIL", "FAIL"], both
    # an --slo-targets row whose request has not come yet waits too, named (its check fails
    # at the end: "no request named ...")
    report = "request POST batch_report: report"
    row = Check(report, NO_REQUESTS_METRIC, "> 0", "0", False, "no request named ...")
    pending = webui.slo_rows(Verdict(SloTargets(), [row]), live=True)[0]
    assert (pending["result"], pending["message"]) == (
        "WAIT",
        f"SLO verdict: waiting for the first request of each --slo-targets row: {report}",
    ), pending


def test_locusts_per_second_counts_keep_a_window_not_the_whole_run(monkeypatch):
    """Locust counts requests and failures per second in a dict per stats entry (and
    ``Aggregated``) for its current RPS, which reads the last 12 s, and never forgets a second:
    a 5-minute run of 35 entries grew the generator by some 12 MB an hour, ~290 MB a day.
    Two simulated hours of a request and a failure a second, standalone and on a master
    adding up a worker's reports, keep a window, and the current RPS is still right."""
    import locust.stats

    from journeys.results import rps_window

    now = [1_800_000_000.0]
    monkeypatch.setattr(locust.stats, "time", SimpleNamespace(time=lambda: now[0]))
    stats, master = RequestStats(), RequestStats()  # made "now": their start
    for _ in range(2 * 3600):
        now[0] += 1
        stats.log_request("POST", "checkout: pay", 12, 0)
        stats.log_error("POST", "checkout: pay", "402 card_declined")
        worker = RequestStats(use_response_times_cache=False)
        worker.log_request("POST", "checkout: pay", 12, 0)
        master.get("checkout: pay", "POST").extend(worker.get("checkout: pay", "POST"))
        master.total.extend(worker.total)
    for entry in (stats.get("checkout: pay", "POST"), stats.total, master.total):
        assert len(entry.num_reqs_per_sec) <= 2 * rps_window.KEEP_S, entry.name
        assert len(entry.num_fail_per_sec) <= 2 * rps_window.KEEP_S, entry.name
        assert entry.current_rps == 1.0
    assert stats.total.current_fail_per_sec == 1.0
    assert master.get("checkout: pay", "POST").num_requests == 2 * 3600


def test_locusts_response_time_copies_are_kept_only_where_read(monkeypatch):
    """Each second Locust copies every entry's response-time counts and keeps 20 copies, for a
    *current* percentile that only ``Aggregated``'s is read for (charts, web UI, history CSV)
    unless ``--csv-full-history`` writes every entry's. With our 3-digit buckets a copy holds up
    to ~1,900 keys (times to the 10 s request timeout), 20 copies ~2.8 MB: 34 entries grew a
    standalone generator by ~8 MB an hour as slower times filled new buckets (bounded at ~95
    MB). Only the copies read are made: standalone and on a master, ``Aggregated``'s always and
    every entry's with full history; the current percentiles read stay right."""
    import locust.stats

    from journeys.results import rps_window

    now = [1_800_000_000.0]
    monkeypatch.setattr(locust.stats, "time", SimpleNamespace(time=lambda: now[0]))
    times = list(range(1, 1000, 7))
    # which copies a run makes: its options say (a library user's Locust has none: all)
    monkeypatch.setattr(rps_window, "_every_entry", rps_window._every_entry)
    for options, every_entry in (
        (SimpleNamespace(stats_history_enabled=False), False),
        (SimpleNamespace(stats_history_enabled=True), True),
        (None, True),
    ):
        rps_window._copies_read(SimpleNamespace(parsed_options=options))
        assert rps_window._every_entry is every_entry, options

    def seconds_of_requests(full_history: bool) -> tuple[RequestStats, RequestStats]:
        monkeypatch.setattr(rps_window, "_every_entry", full_history)
        stats, master = RequestStats(), RequestStats()
        for _ in range(60):
            now[0] += 1
            worker = RequestStats(use_response_times_cache=False)
            for ms in times:
                stats.log_request("POST", "checkout: pay", ms, 0)
                worker.log_request("POST", "checkout: pay", ms, 0)
            master.get("checkout: pay", "POST").extend(
                worker.get("checkout: pay", "POST")
            )
            master.total.extend(worker.total)
        return stats, master

    for stats in seconds_of_requests(full_history=False):
        assert not stats.get("checkout: pay", "POST").response_times_cache
        assert len(stats.total.response_times_cache) == 20
        assert stats.total.get_current_response_time_percentile(0.5) == 498
    for stats in seconds_of_requests(full_history=True):
        entry = stats.get("checkout: pay", "POST")
        assert len(entry.response_times_cache) == 20
        assert entry.get_current_response_time_percentile(0.95) == 946


def test_the_csv_writer_stops_before_its_files_close(tmp_path):
    """Locust closes the ``--csv`` files at shutdown while its writer greenlet still runs: one
    that woke after (a --processes master waiting for its workers to exit) logged CRITICAL
    ``Unhandled exception in greenlet ... ValueError: I/O operation on closed file``."""
    import gevent
    import locust.stats
    from locust.env import Environment

    writer = locust.stats.StatsCSVFileWriter(
        Environment(), locust.stats.PERCENTILES_TO_REPORT, str(tmp_path / "run")
    )
    greenlet = gevent.spawn(writer.stats_writer)
    gevent.sleep(0.1)  # it wrote its headers and sleeps
    writer.close_files()
    gevent.sleep(locust.stats.CSV_STATS_INTERVAL_SEC + 0.2)
    assert greenlet.ready() and greenlet.exception is None, greenlet.exception
    # the header, the writer's row as it started, the final row close_files adds
    assert (tmp_path / "run_stats_history.csv").read_text().count("\n") == 3
