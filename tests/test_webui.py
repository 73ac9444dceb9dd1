"""The web UI's Journeys tabs in a real headless Chromium, during a real run against the real service.

Locust runs with its web UI (``--autostart``, not headless); while it runs, the browser opens
``/``, clicks the Journeys tab and finds the run's rows; a screenshot lands in the test's tmp dir.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
import urllib.request

import pytest

from journeys.results.stats import FINISHED_OUTCOMES
from tests.conftest import (
    end_process,
    free_port,
    get_text,
    locust_command,
    locust_process,
    locust_processes,
    master_args,
    post_form,
    run_locust,
    start_web_ui,
    wait_http,
    write_personas,
)

CHROMIUM = "/usr/bin/chromium"
SHOPPER = "shopper,customer,3,visa|mastercard,USD|EUR,5,80,0.3,2,,en_US,0,0.05"
OPS = "ops,operator,1,visa|amex,USD|JPY,1,500,0.2,0,4,en_US,0,0.05"
PROBER = "probe,prober,1,visa,USD,1,100,0,0,,en_US,0,0.05"

# The browser runs in its own process: pytest may have imported Locust, whose gevent
# monkey-patching does not mix with Playwright's sync API.
BROWSER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from playwright.sync_api import sync_playwright

    url, shots = sys.argv[1], sys.argv[2]
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    seen = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=sys.argv[3], args=args)
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.goto(url)
        for tab, needle in (("Journeys", "checkout"), ("SLO", "verdict"),
                            ("Funnel", "checkout"), ("Personas", "shopper")):
            page.get_by_role("tab", name=tab, exact=True).click(timeout=20000)
            page.locator("table tbody tr", has_text=needle).first.wait_for(timeout=15000)
            page.wait_for_timeout(500)
            table = page.locator("table").first
            seen[tab] = {
                # the columns shown (a test without a journey rate hides Asked and Dropped)
                "headers": table.locator("thead th:visible").all_inner_texts(),
                "rows": [r.locator("td:visible").all_inner_texts()
                         for r in table.locator("tbody tr").all()],
            }
            page.screenshot(path=f"{shots}/{tab.lower().replace(' ', '-')}.png")
        # a 1280 px laptop screen: every tab in view, none behind MUI's scroll arrow
        page.set_viewport_size({"width": 1280, "height": 800})
        page.wait_for_timeout(500)
        boxes = [t.bounding_box() for t in page.get_by_role("tab").all()]
        seen["tab right edges at 1280"] = [round(b["x"] + b["width"]) for b in boxes]
        page.get_by_role("tab", name="Journeys", exact=True).click()
        page.wait_for_timeout(500)
        seen["journeys header right edges at 1280"] = {
            th.inner_text().replace("\\n", " "): round(box["x"] + box["width"])
            for th in page.locator("table thead th:visible").all()
            for box in [th.bounding_box()]
        }
        page.screenshot(path=f"{shots}/tabs-at-1280.png")
        # with workers Locust adds its Workers tab (~100 px): it must fit at 1280 px as well
        page.set_viewport_size({"width": 1170, "height": 800})
        page.wait_for_timeout(500)
        seen["tab overflow at 1170"] = page.evaluate(
            "(s => s.scrollWidth - s.clientWidth)(document.querySelector('.MuiTabs-scroller'))")
        # a 1000 px window: the Journeys table scrolls sideways; scrolled to its alarms and
        # rates, each row still says which journey and persona it is
        page.set_viewport_size({"width": 1000, "height": 800})
        page.get_by_role("tab", name="Journeys", exact=True).click()
        page.wait_for_timeout(500)
        seen["journeys scrolled right at 1000"] = page.evaluate('''() => {
            const box = document.querySelector('table').parentElement;
            box.scrollLeft = box.scrollWidth;
            const view = box.getBoundingClientRect();
            const row = box.querySelector('tbody tr');
            const seen = cell => { const r = cell.getBoundingClientRect();
                return r.left >= view.left && r.right <= view.right + 1 &&
                    document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)
                        .closest('td, th') === cell ? cell.innerText : null; };
            return {scrolled: box.scrollLeft,
                    cells: [...row.cells].map(seen).filter(t => t !== null)};
        }''')
        # ... and the header's buttons (Edit, Stop, Reset, the theme) are all in the window
        seen["header buttons right of 1000"] = [
            b.inner_text() or "theme" for b in page.locator("header button").all()
            if b.is_visible() and b.bounding_box()["x"] + b.bounding_box()["width"] > 1000
        ]
        page.screenshot(path=f"{shots}/journeys-at-1000.png")
        browser.close()
    print(json.dumps(seen))
    """
)


needs_chromium = pytest.mark.skipif(
    not shutil.which(CHROMIUM),
    reason="needs Debian's chromium (apt-get install chromium)",
)


def run_browser(script: str, *args: str) -> subprocess.CompletedProcess:
    """``script`` (Playwright) in a Python process of its own, with ``args`` and Chromium's path."""
    return subprocess.run(
        [sys.executable, "-c", script, *args, CHROMIUM],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@needs_chromium
def test_journeys_tab_shows_the_live_run(tmp_path, service):
    personas = write_personas(tmp_path, SHOPPER, OPS)
    port = free_port()
    result = {}
    locust = threading.Thread(
        target=lambda: result.update(
            run=run_locust(
                tmp_path,
                service.url,
                "--autostart",
                "--autoquit",
                "1",
                "--web-host",
                "127.0.0.1",
                "--web-port",
                str(port),
                "--seed",
                "51",
                personas=personas,
                users=4,
                # the page is read live after the browser: a slow VM's browser took over
                # 11 s once (a CI clone at 05:25), and the web UI of a 10 s run had quit
                run_time="15s",
                headless=False,
            )
        )
    )
    locust.start()
    try:
        ui = f"http://127.0.0.1:{port}/"
        wait_http(ui, timeout=30)
        browser = run_browser(BROWSER_SCRIPT, ui, str(tmp_path))
        with urllib.request.urlopen(ui + "journeys/csv", timeout=5) as r:
            live_csv = r.read().decode()
            saved_as = r.headers["Content-Disposition"]
        with urllib.request.urlopen(ui + "journeys/ledger/csv", timeout=5) as r:
            live_ledger = list(csv.DictReader(io.StringIO(r.read().decode())))
    finally:
        locust.join(timeout=60)
    run = result["run"]
    assert browser.returncode == 0, browser.stderr[-3000:] + "\n" + run.output[-3000:]
    seen = json.loads(browser.stdout.strip().splitlines()[-1])
    journeys = seen["Journeys"]
    # the durations next to Started: a narrow window cuts off the payment figures instead
    assert journeys["headers"][:5] == [
        "Journey",
        "Persona",
        "Started",
        "p50 ms",
        "p95 ms",
    ]
    by_key = {(r[0], r[1]): r for r in journeys["rows"]}
    assert ("checkout", "shopper") in by_key and ("checkout", "All") in by_key, (
        journeys["rows"]
    )
    assert int(by_key[("checkout", "All")][2]) > 0
    assert any(r[0] == "batch_report" for r in journeys["rows"])
    assert any("%" in cell for r in seen["Funnel"]["rows"] for cell in r)
    assert seen["Funnel"]["headers"][-1] == "Interrupted", seen["Funnel"]["headers"]
    assert {r[0] for r in seen["Personas"]["rows"]} == {"shopper", "ops"}
    edges = seen["tab right edges at 1280"]
    assert len(edges) == 11 and max(edges) <= 1280, edges
    assert seen["tab overflow at 1170"] <= 0, seen["tab overflow at 1170"]
    narrow = seen["journeys scrolled right at 1000"]
    assert narrow["scrolled"] > 0, narrow  # the columns do not all fit at 1000 px
    assert narrow["cells"][:2] == ["batch_report", "ops"], narrow
    assert len(narrow["cells"]) > 4, narrow
    assert seen["header buttons right of 1000"] == [], seen
    # the alarms are in view without scrolling sideways; the rates may be off to the right
    columns = seen["journeys header right edges at 1280"]
    assert columns["Dup. charges"] <= 1280 < columns["Declines observed"], columns
    assert (
        seen["SLO"]["rows"][0][0] in ("PASS", "FAIL")
        and seen["SLO"]["rows"][0][2] == "verdict"
    )
    assert live_csv.startswith("journey,persona,started,")
    # named as Locust names its downloads: the test's start, the locustfile and the host
    host = service.url.replace(":", "_").replace("/", "_")
    assert re.fullmatch(
        rf"attachment;filename=Locust_\d{{4}}-\d\d-\d\d-\d\dh\d\d_locustfile\.py_{re.escape(host)}_journeys\.csv",
        saved_as,
    ), saved_as
    # the ledger, downloadable while the run goes on: the payments confirmed so far
    assert live_ledger and {r["currency"] for r in live_ledger} <= {"USD", "EUR", "JPY"}
    assert sum(int(r["payments"]) for r in live_ledger) > 0, live_ledger
    assert (tmp_path / "journeys.png").stat().st_size > 10_000

    # the UI showed the run live; the end-of-run CSV has at least what the UI showed
    final = {(r["journey"], r["persona"]): r for r in run.csv_rows("journeys")}
    assert int(final[("checkout", "All")]["started"]) >= int(
        by_key[("checkout", "All")][2]
    )
    assert run.returncode == 0, run.output[-3000:]


def test_statistics_and_journey_tabs_show_the_same_moment(tmp_path, service):
    """Locust caches ``/stats/requests`` for 2 s; the journey rows riding on it must come from the
    same moment, or a tab shows journeys Locust's own table does not have yet (and after a reset,
    an empty Journeys tab beside the old Statistics)."""
    port = free_port()
    result = {}
    locust = threading.Thread(
        target=lambda: result.update(
            run=run_locust(
                tmp_path, service.url, "--autostart", "--autoquit", "1",
                "--web-host", "127.0.0.1", "--web-port", str(port), "--seed", "52",
                personas=write_personas(tmp_path, SHOPPER), users=4, run_time="8s",
                headless=False,
            )
        )
    )  # fmt: skip
    locust.start()
    compared = 0
    try:
        ui = f"http://127.0.0.1:{port}"
        wait_http(ui + "/", timeout=30)
        for i in range(20):  # 5 s of an 8 s run
            if i == 8:
                urllib.request.urlopen(urllib.request.Request(ui + "/stats/reset", method="POST"), timeout=5)  # fmt: skip
            with urllib.request.urlopen(ui + "/stats/requests", timeout=5) as r:
                payload = json.loads(r.read())
            locust_rows = {
                s["name"]: s["num_requests"] for s in payload["stats"] if s["method"] == "journey"
            }  # fmt: skip
            tab = next(
                t for t in payload.get("extended_stats", []) if t["key"] == "journeys"
            )
            ours = {
                row["journey"]: sum(int(row[o] or 0) for o in FINISHED_OUTCOMES)
                for row in tab["data"]
                if row["persona"] == "All"
            }  # fmt: skip
            assert ours.get("checkout", 0) == locust_rows.get("checkout", 0), (
                i,
                ours,
                locust_rows,
            )
            compared += bool(locust_rows)
            time.sleep(0.25)
    finally:
        locust.join(timeout=60)
    assert compared >= 8, "too few answers with journeys to compare"
    assert result["run"].returncode == 0, result["run"].output[-3000:]


def test_the_start_form_refuses_a_missing_or_unreachable_target(tmp_path, service):
    """The web UI's start form brings the host: an empty field (even with --host given: Locust
    takes the field) or a closed port gets the headless preflight's message in the form, and no
    test starts; the service's host does, once the SLO fields hold targets too. An edit of the
    running test is not checked again.

    With --class-picker, an edit keeps the personas picked at the start (the edit form posts
    every class after a page reload), the Profile field drives the run even with the Shape
    Class left at "Default" (its phases then in Download Data), and the picker leaves out
    personas the tags leave no journey. --slo-targets rows of journeys the test leaves out (by
    the tags, by the pick) are not run, saying which left them out."""
    port = free_port()
    targets = tmp_path / "slo-targets.csv"
    targets.write_text("name,p95_ms\nbatch_report,2500\nerror_probes,2500\n")
    locust = locust_process(
        locust_command(
            tmp_path, "--web-host", "127.0.0.1", "--web-port", str(port), "--class-picker",
            "--exclude-tags", "probes", "--slo-targets", str(targets),
            personas=write_personas(tmp_path, SHOPPER, OPS, PROBER), headless=False,
        ),
        service.url,
    )  # fmt: skip
    ui = f"http://127.0.0.1:{port}"

    def swarm(host: str, users: int = 2, **form) -> dict:
        return post_form(
            ui + "/swarm", user_count=users, spawn_rate=2, host=host, **form
        )

    closed = f"http://127.0.0.1:{free_port()}"
    try:
        wait_http(ui + "/", timeout=30)
        # the picker offers no persona the tags leave without a journey
        assert '"available_user_classes": ["Ops", "Shopper"]' in get_text(ui + "/")
        empty = swarm("")
        assert not empty["success"] and "No target: type the host" in empty["message"]
        unreachable = swarm(closed)
        assert not unreachable["success"], unreachable
        assert "cannot be reached" in unreachable["message"], unreachable
        # the SLO fields are judged as the flags are (a test judged against 'abc' had started)
        bad_slo = swarm(service.url, slo_p50_ms="abc", slo_error_rate="5")
        assert not bad_slo["success"], bad_slo
        assert "--slo-p50-ms must be a number, got 'abc'" in bad_slo["message"], bad_slo
        assert "--slo-error-rate must be a fraction" in bad_slo["message"], bad_slo
        assert service.query("SELECT count(*) FROM payments") == [(0,)]
        started = swarm(service.url, user_classes=["Shopper"])
        assert started["success"], started
        service.wait_for_payments(timeout=15)
        slo = get_text(ui + "/journeys/slo/csv")
        not_run = {
            r["scope"]: r["message"]
            for r in csv.DictReader(io.StringIO(slo))
            if r["actual"] == "not run" and r["passed"] == "true"
        }
        assert not_run == {
            "batch_report": "not run: journey 'batch_report' is not in this run (left out "
            "by the personas picked in the start form): its --slo-targets row (line 2) "
            "judged nothing",
            "error_probes": "not run: journey 'error_probes' is not in this run (left out "
            "by --exclude-tags probes): its --slo-targets row (line 3) judged nothing",
        }, slo
        # lowering the load of a running test is never refused, whatever the target does
        edited = swarm(closed, users=1, user_classes=["Ops", "Shopper"])
        assert edited["success"], edited
        mix = list(
            csv.DictReader(io.StringIO(get_text(ui + "/journeys/persona-mix/csv")))
        )
        assert [(r["persona"], r["share_configured"]) for r in mix] == [
            ("shopper", "1.0")
        ]
        post_form(ui + "/stop")
        spike = swarm(
            service.url, run_time="6s", profile="spike", shape_class="Default"
        )
        assert "shape class 'LoadProfile'" in spike["message"], spike
        # its phases so far, downloadable as --csv writes them at the end
        deadline = time.monotonic() + 5
        while "\nbaseline,0.0," not in (
            phases := get_text(ui + "/journeys/profile/csv")
        ):
            assert time.monotonic() < deadline, phases
            time.sleep(0.2)
        assert phases.startswith("phase,start_s,end_s,target_users,"), phases
        # the profile sets the user count: an edit is refused (it dropped the shape and
        # stopped the test)
        edited = swarm(closed, users=3, user_classes=["Ops", "Shopper"])
        assert not edited["success"] and "stop the test" in edited["message"], edited
        time.sleep(1.2)  # a tick of the shape
        assert json.loads(get_text(ui + "/stats/requests"))["state"] == "running"
        # the next test is steady: it has no phases, and the spike's are not its own
        post_form(ui + "/stop")
        steady = swarm(service.url, profile="steady", shape_class="Default")
        assert steady["success"] and "shape class" not in steady["message"], steady
        steady_phases = get_text(ui + "/journeys/profile/csv")
        assert (
            steady_phases.strip()
            == "phase,start_s,end_s,target_users,requests,failures,error_rate,p50_ms,p95_ms"
        ), steady_phases
        # LoadProfile picked as the Shape Class, no profile: steady, plain Locust all the same
        post_form(ui + "/stop")
        picked = swarm(service.url, shape_class="LoadProfile")
        assert picked["success"] and "shape class" not in picked["message"], picked
        # (an edit down to 1 user: Ops, running since this start, is left without one)
        edited = swarm(service.url, users=1, user_classes=["Shopper"])
        assert edited["success"], edited
        assert get_text(ui + "/journeys/profile/csv").strip() == steady_phases.strip()
        # a test the form starts with too few users for every persona says so, as -u does
        post_form(ui + "/stop")
        one = swarm(service.url, users=1, user_classes=["Ops", "Shopper"])
        assert one["success"], one
    finally:
        output = end_process(locust)
    assert "Traceback" not in output, output[-3000:]
    assert (
        "WARNING/journeys.profiles.hooks: The spike profile sets the user count"
        in output
    )
    idle = "-u 1 (the start form's users) leaves 1 of the 2 personas without a user"
    assert output.count(idle) == 1, output[-3000:]
    edit = (
        "-u 1 (the edit of the running test) leaves 1 of the 2 personas without a user"
    )
    assert output.count(edit) == 1, output[-3000:]
    assert "so it sends nothing: ops." in output, output[-3000:]


def test_a_worker_leaving_a_web_ui_test_fails_it_not_the_next(tmp_path, service):
    """A worker that leaves a test started from the web UI (SIGTERM to it) fails that test's
    verdict with ``workers_left``, naming it, in the SLO tab's CSV while the test runs and
    after Stop; the next test started in the same web UI, on the worker that stayed, has no
    such check (no stale departure). The page's last answer after Stop counts the worker that
    stayed, so its form's Start is enabled."""
    port = free_port()
    personas = write_personas(tmp_path, SHOPPER)
    master, leaving, staying = locust_processes(
        locust_command(
            tmp_path, "--web-host", "127.0.0.1", "--web-port", str(port),
            "--stop-timeout", "1", personas=personas, run_time="60s", headless=False,
        ),
        service.url, workers=2, personas=personas,
    )  # fmt: skip
    ui = f"http://127.0.0.1:{port}"

    def slo_rows() -> dict[str, dict]:
        text = get_text(ui + "/journeys/slo/csv")
        return {r["metric"]: r for r in csv.DictReader(io.StringIO(text))}

    def start_test_with(workers: int) -> None:
        # a stopped worker is ready again --stop-timeout after the stop; /worker-count is not
        # cached as /stats/requests is
        deadline = time.monotonic() + 20
        while json.loads(get_text(ui + "/worker-count"))["worker_count"] != workers:
            assert time.monotonic() < deadline, f"not {workers} workers ready"
            time.sleep(0.1)
        paid = service.query("SELECT count(*) FROM payments")[0][0]
        started = post_form(
            ui + "/swarm", user_count=4, spawn_rate=50, host=service.url, run_time=""
        )
        assert started["success"], started
        while service.query("SELECT count(*) FROM payments")[0][0] == paid:
            assert time.monotonic() < deadline + 10, "the test paid nothing"
            assert master.poll() is None, "the master ended"
            time.sleep(0.1)
        # each worker runs its users: one worker's payment is not the other's start (a worker
        # still building its data when told to leave leaves with no users, so with no
        # departure to report: failed so in 1 of ~10 full suite runs)
        while (
            sum(
                w["state"] == "running" and w["user_count"] > 0
                for w in json.loads(get_text(ui + "/stats/requests"))["workers"]
            )
            < workers
        ):
            assert time.monotonic() < deadline + 20, "not every worker runs users"
            time.sleep(0.2)

    try:
        wait_http(ui + "/", timeout=30)
        start_test_with(workers=2)
        leaving.send_signal(signal.SIGTERM)
        leaver_output = leaving.communicate(timeout=15)[0]
        deadline = time.monotonic() + 5  # the master may not have read its message yet
        while "workers_left" not in (during := slo_rows()):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        # a worker leaving within END_GRACE_S (1 s) of the stop left with the end of the test
        time.sleep(1.5)
        post_form(ui + "/stop")
        # the page's last poll after Stop: its worker count enables the next test's Start
        after_stop = json.loads(get_text(ui + "/stats/requests"))
        first = slo_rows()
        start_test_with(workers=1)  # all 4 users on the worker that stayed
        running = slo_rows()
        post_form(ui + "/stop")
        second = slo_rows()
    finally:
        output = end_process(master)
        end_process(leaving)
        end_process(staying)
    assert leaving.returncode == 0, leaver_output[-3000:]
    name = re.search(r"Worker (\S+) leaves the run", leaver_output)
    assert name, leaver_output[-3000:]
    worker = re.escape(name[1])
    # while the test runs ...
    assert "workers_left" in during, (during, output[-3000:])
    left = during["workers_left"]
    assert (left["actual"], left["passed"]) == ("1", "false"), left
    into = rf"Worker {worker} left \d+ s into the run: "
    assert re.match(into, left["message"]), left
    # ... and after Stop: the verdict fails, the worker is named, its journeys counted
    left = first["workers_left"]
    assert (left["actual"], left["passed"]) == ("1", "false"), left
    assert re.match(
        rf"Worker {worker} left at \d+ s of the \d+ s run: its journeys are counted, but "
        r"its 2 users stopped, so the load was lower than asked until Locust started them "
        r"again on the other workers \(run\)",
        left["message"],
    ), left
    assert first["verdict"]["passed"] == "false", first["verdict"]
    assert "workers_lost" not in first, first["workers_lost"]
    # the next test: the departure was the first test's, not its own
    assert "workers_left" not in running, (running["workers_left"], output[-3000:])
    assert "workers_left" not in second, (second["workers_left"], output[-3000:])
    # the worker that stayed counts, though it waits --stop-timeout before it is ready again
    # (Locust's page polls no more after a stop: it said 0 workers, its Start disabled)
    assert (after_stop["state"], after_stop["worker_count"]) == ("stopped", 1), (
        after_stop
    )
    assert "workers_lost" not in second, second["workers_lost"]
    assert "Traceback" not in output, output[-3000:]


def test_the_start_form_says_when_no_worker_is_ready(tmp_path, service):
    """A master with no worker ready (none connected, or right after a stop, until its workers
    report ready again) answers the start form with why: Locust itself answers success, logs
    "can't start a distributed test" and starts nothing, so the page shows a test that never
    runs."""
    port = free_port()
    master = locust_process(
        locust_command(
            tmp_path, "--web-host", "127.0.0.1", "--web-port", str(port),
            personas=write_personas(tmp_path, SHOPPER), headless=False,
        ) + master_args(free_port(), 1),
        service.url,
    )  # fmt: skip
    ui = f"http://127.0.0.1:{port}"
    try:
        wait_http(ui + "/", timeout=30)
        answer = post_form(ui + "/swarm", user_count=2, spawn_rate=2, host=service.url)
    finally:
        output = end_process(master)
    assert answer is not None and not answer["success"], (answer, output[-3000:])
    assert answer["message"].startswith("No worker is ready to run the test"), answer
    assert "Traceback" not in output, output[-3000:]
    assert service.query("SELECT count(*) FROM payments") == [(0,)]


# Starts a test from the form with a p95 target typed into its "Custom parameters" and reads
# the SLO tab at once, before the first journey's think time is over.
FORM_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from playwright.sync_api import sync_playwright

    url, chromium = sys.argv[1], sys.argv[2]
    seen = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        page.get_by_text("Custom parameters").click()
        seen["fields"] = [f.get_attribute("name")
                          for f in page.locator("input[name^=slo]").all()]
        page.set_viewport_size({"width": 1280, "height": 900})
        page.wait_for_timeout(300)
        # each field's label ("Slo P9 5Ms (<the option's help>)"), and whether MUI cut it
        seen["labels cut at 1280"] = page.evaluate('''() =>
            [...document.querySelectorAll("input[name^=slo], input[name=journeyRate]")]
            .map(i => document.querySelector(`label[for="${i.id}"]`))
            .filter(l => l.scrollWidth > l.clientWidth).map(l => l.innerText)''')
        page.set_viewport_size({"width": 1400, "height": 900})
        page.locator("input[name=sloP95Ms]").fill("0.5")
        page.get_by_role("button", name="Start").click()
        page.get_by_role("tab", name="SLO", exact=True).click(timeout=20000)
        page.locator("table tbody tr").first.wait_for(timeout=10000)
        seen["slo"] = [r.locator("td").all_inner_texts()
                       for r in page.locator("table tbody tr").all()]
        browser.close()
    print(json.dumps(seen))
    """
)


@needs_chromium
def test_the_start_form_sets_the_slo_targets(tmp_path, service):
    """The SLO targets are fields of the start form, and a value typed there is the test's
    target (the fields were missing, and once shown, Locust dropped their values: the form
    sends ``slo_p9_5ms`` for ``slo_p95_ms``); an edit of the running test keeps them. Before
    the test's first request the SLO tab waits instead of failing the run."""
    slow = "slow,customer,1,visa,USD,5,80,0,0,,en_US,4,4"  # first request after 4 s
    locust, ui = start_web_ui(
        tmp_path, service.url, "--users", "1", "--run-time", "9s",
        personas=write_personas(tmp_path, slow),
    )  # fmt: skip
    try:
        browser = run_browser(FORM_SCRIPT, ui + "/")
        # the edit form after a page reload: the command line's target, under the form's name
        post_form(ui + "/swarm", user_count=1, spawn_rate=1, slo_p9_5ms="500")
        report = get_text(ui + "/stats/report")
    finally:
        output = end_process(locust)
    assert browser.returncode == 0, browser.stderr[-3000:] + "\n" + output[-3000:]
    assert "SLO targets: p50 < 100 ms, p95 < 0.5 ms," in output, output[-3000:]
    assert "Targets: p50 &lt; 100 ms, p95 &lt; 0.5 ms," in report, report[-3000:]
    seen = json.loads(browser.stdout.strip().splitlines()[-1])
    assert sorted(seen["fields"]) == [
        "sloErrorRate", "sloJourneyP95Ms", "sloP50Ms", "sloP95Ms"
    ], seen["fields"]  # fmt: skip
    assert [r[:2] for r in seen["slo"]] == [["WAIT", "run"]], seen["slo"]
    # each field's help, its default or what empty means last, is whole in its label
    assert seen["labels cut at 1280"] == [], seen["labels cut at 1280"]
    assert "Traceback" not in output, output[-3000:]


def test_each_test_of_one_seed_sends_the_same_data(tmp_path, service):
    """A second test with the seed of the first sends its data again, as a headless run of
    that seed does (its users were numbered on from the first test's, so no payment was
    alike). A seed posted to /swarm is the test's: an empty one draws a new seed, one that is
    no whole number is refused (Locust's int() of it was a 500 that started nothing)."""
    steady = "steady,customer,1,visa|amex,USD|EUR,5,80,0.2,2,,de_DE,0,0"
    locust, ui = start_web_ui(
        tmp_path, service.url, "--seed", "7",
        personas=write_personas(tmp_path, steady),
    )  # fmt: skip

    def one_test(**form) -> list[tuple]:
        return _first_payments_of_a_test(ui, service, **form)

    try:
        first = one_test()
        assert one_test() == first
        assert one_test(seed="7") == first
        assert one_test(seed="8") != first
        drawn = one_test(seed=" ")
        bad = post_form(ui + "/swarm", user_count=1, spawn_rate=1, seed="7x")
    finally:
        output = end_process(locust)
    assert drawn != first
    assert not bad["success"], bad
    assert "--seed must be a whole number, got '7x'" in bad["message"], bad
    seeds = re.findall(r"data seed: (\d+)", output)
    assert seeds[:6] == ["7", "7", "7", "7", "8", seeds[5]] and seeds[5] not in (
        "7",
        "8",
    ), seeds
    assert "Traceback" not in output and "resulted in a 500" not in output, output[
        -3000:
    ]


def _first_payments_of_a_test(ui: str, service, **form) -> list[tuple]:
    """Start a one-user test from the web UI (``form``: more fields to post), stop it after
    its sixth payment, and return those six payments' data."""
    paid = "SELECT amount, currency, last4, customer_id, status FROM payments"
    before = service.query("SELECT count(*) FROM payments")[0][0]
    started = post_form(
        ui + "/swarm", user_count=1, spawn_rate=1, host=service.url, **form
    )
    assert started["success"], started
    deadline = time.monotonic() + 10
    while service.query("SELECT count(*) FROM payments")[0][0] < before + 6:
        assert time.monotonic() < deadline, "no traffic"
        time.sleep(0.1)
    post_form(ui + "/stop")
    return service.query(f"{paid} ORDER BY created_at LIMIT 6 OFFSET ?", (before,))


def test_without_a_seed_each_test_draws_its_own(tmp_path, service):
    """Started without --seed, the run's seed is drawn, and each web UI test draws one of its
    own: a second test sends new data, as a second headless run does (it repeated the first's),
    and logs the seed that repeats it."""
    steady = "steady,customer,1,visa|amex,USD|EUR,5,80,0.2,2,,de_DE,0,0"
    locust, ui = start_web_ui(
        tmp_path, service.url, personas=write_personas(tmp_path, steady)
    )

    try:
        first = _first_payments_of_a_test(ui, service)
        second = _first_payments_of_a_test(ui, service)
    finally:
        output = end_process(locust)
    assert first != second
    seeds = re.findall(r"data seed: (\d+)", output)
    assert len(seeds) == 3 and len(set(seeds)) == 3, (
        seeds
    )  # the run's, then each test's


# Starts a test from the form, stops it with the Stop button after its first payments and reads
# the SLO tab of that same page (Locust's page polls no more once the test has stopped).
STOP_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from playwright.sync_api import sync_playwright

    url, chromium = sys.argv[1], sys.argv[2]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        page.get_by_role("button", name="Start").click()
        page.get_by_role("tab", name="SLO", exact=True).click(timeout=20000)
        page.locator("table tbody tr", has_text="p95_ms").first.wait_for(timeout=15000)
        page.get_by_role("button", name="Stop").click()
        page.get_by_role("button", name="New").wait_for(timeout=15000)
        try:
            page.locator("table tbody tr", has_text="books").first.wait_for(timeout=8000)
        except Exception:
            pass  # the rows as the page shows them
        rows = [r.locator("td").all_inner_texts() for r in page.locator("table tbody tr").all()]
        browser.close()
    print(json.dumps(rows))
    """
)


@needs_chromium
def test_the_slo_tab_shows_the_books_check_after_stop(tmp_path, service):
    """With --reconcile-run the books check is asked for once the test stops; Locust's page
    polls no more then, and the SLO tab it showed had no books row: a verdict without the check
    that the downloads and the HTML report (with it) could contradict."""
    locust, ui = start_web_ui(
        tmp_path, service.url, "--users", "4", "--spawn-rate", "4", "--reconcile-run",
        personas=write_personas(tmp_path, SHOPPER),
    )  # fmt: skip
    try:
        browser = run_browser(STOP_SCRIPT, ui + "/")
    finally:
        output = end_process(locust)
    assert browser.returncode == 0, browser.stderr[-3000:] + "\n" + output[-3000:]
    rows = json.loads(browser.stdout.strip().splitlines()[-1])
    books = [r for r in rows if r[2] == "books"]
    assert books and books[0][0] == "pass", rows
    assert "holds the" in books[0][5], books
    # stopped before its run time: the verdict fails on that (run_time) alone
    assert rows[0][5] == "SLO verdict: FAIL (1 of 11 checks failed)", rows
    assert "Traceback" not in output, output[-3000:]


# Starts a test at a journey rate from the form's field and reads the Journeys tab while it runs
# at 1280 px (its columns' right edges).
RATE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from playwright.sync_api import sync_playwright

    url, shots, chromium = sys.argv[1], sys.argv[2], sys.argv[3]
    seen = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        page.get_by_text("Custom parameters").click()
        field = page.locator("input[name=journeyRate]")
        seen["prefilled"] = field.input_value()
        field.fill("10")
        page.locator("input[name=userCount]").fill("2")
        page.get_by_role("button", name="Start").click()
        page.get_by_role("tab", name="Journeys", exact=True).click(timeout=20000)
        page.locator("table tbody tr", has_text="All").first.wait_for(timeout=15000)
        page.wait_for_timeout(2500)
        seen["right edges"] = {
            th.inner_text().replace("\\n", " "): round(box["x"] + box["width"])
            for th in page.locator("table thead th:visible").all()
            for box in [th.bounding_box()]
        }
        seen["rows"] = [r.locator("td:visible").all_inner_texts()
                        for r in page.locator("table tbody tr").all()]
        page.screenshot(path=f"{shots}/journeys-paced-at-1280.png")
        browser.close()  # the test ends at its run time (4 s)
    print(json.dumps(seen))
    """
)


@needs_chromium
def test_a_paced_test_shows_asked_and_dropped_beside_the_alarms(
    tmp_path, start_service
):
    """A test started at 10 journeys/s from the form's Journey Rate field (Locust started
    without --journey-rate: the field is empty) against a service too slow for its 2 users: the
    Journeys tab shows Asked and Dropped after Started, and at 1280 px its alarms (Failed,
    Mismatch, Dup. charges) are still in view (the two columns pushed Dup. charges out). The
    verdict's journey_rate check names the form's fields to change, not -u and --journey-rate."""
    slow = start_service("--latency-ms", "400")
    locust, ui = start_web_ui(
        tmp_path, slow.url, personas=write_personas(tmp_path, SHOPPER)
    )
    try:
        browser = run_browser(RATE_SCRIPT, ui + "/", str(tmp_path))
    finally:
        output = end_process(locust)
    assert browser.returncode == 0, browser.stderr[-3000:] + "\n" + output[-3000:]
    seen = json.loads(browser.stdout.strip().splitlines()[-1])
    assert seen["prefilled"] == "", seen
    edges = seen["right edges"]
    assert list(edges)[:5] == ["Journey", "Persona", "Started", "Asked", "Dropped"], (
        edges
    )
    assert edges["Dup. charges"] <= 1280, edges
    (all_row,) = [r for r in seen["rows"] if r[1] == "All"]
    assert int(all_row[4]) > 0, seen[
        "rows"
    ]  # dropped starts: 0.4 s journeys every 0.2 s
    assert "Journey rate: 10 journeys/s over 2 users" in output, output[-3000:]
    # the fix named in the form's words: the test's rate and users are its fields
    assert "journey rate not held:" in output, output[-3000:]
    assert (
        "raise Number of users (or lower Journey Rate) in the start form" in output
    ), output[-3000:]


def test_the_page_s_last_poll_after_stop_has_the_final_figures(tmp_path, start_service):
    """Locust's page polls ``/stats/requests`` until an answer says the test is no longer
    running. While users finish their journeys (``--stop-timeout``; a master waiting for its
    workers) the answer said "stopping": the page kept that moment's figures, tables and
    verdict, short of the journeys still finishing (a distributed run: 29 checkouts shown, 35 in
    the CSV). The answer now waits for the stop to end; so do the HTML report and the CSV
    files downloaded meanwhile (they had the journeys still finishing as started, not as
    succeeded)."""
    service = start_service("--latency-ms", "1500")
    locust, ui = start_web_ui(
        tmp_path, service.url, "--stop-timeout", "5",
        personas=write_personas(tmp_path, SHOPPER),
    )  # fmt: skip
    try:
        started = post_form(ui + "/swarm", user_count=4, spawn_rate=4, host=service.url)
        assert started["success"], started
        service.wait_for_payments(locust, timeout=15)
        stopping = threading.Thread(target=post_form, args=(ui + "/stop",))
        stopping.start()
        time.sleep(0.3)  # the users are finishing their journeys (1.5 s a payment)
        during = {}  # Download Data meanwhile: the report, our CSV and Locust's
        downloads = [
            threading.Thread(target=lambda p=path: during.update({p: get_text(ui + p)}))
            for path in (
                "/stats/report?download=1",
                "/journeys/csv",
                "/stats/requests/csv",
            )
        ]
        for download in downloads:
            download.start()
        answer = json.loads(get_text(ui + "/stats/requests"))
        stopping.join(timeout=15)
        for download in downloads:
            download.join(timeout=15)
        final_csv = get_text(ui + "/journeys/csv")
        final = list(csv.DictReader(io.StringIO(final_csv)))
        final_requests = get_text(ui + "/stats/requests/csv")
    finally:
        output = end_process(locust)
    assert answer["state"] == "stopped", (answer["state"], output[-3000:])
    shown = next(t for t in answer["extended_stats"] if t["key"] == "journeys")["data"]
    assert [
        (r["journey"], r["persona"], r["started"], r["succeeded"]) for r in shown
    ] == [
        (r["journey"], r["persona"], int(r["started"]), int(r["succeeded"]))
        for r in final
    ], (shown, final)
    in_report = [
        (r["journey"], r["persona"], r["started"], r["succeeded"])
        for r in _journey_rows_of_report(during["/stats/report?download=1"])
    ]
    assert in_report == [
        (r["journey"], r["persona"], r["started"], r["succeeded"]) for r in final
    ], (in_report, final)
    assert during["/journeys/csv"] == final_csv, (during["/journeys/csv"], final_csv)
    assert during["/stats/requests/csv"] == final_requests, during[
        "/stats/requests/csv"
    ]
    assert "Traceback" not in output, output[-3000:]


def _journey_rows_of_report(html: str) -> list[dict[str, str]]:
    """The Journeys table of an HTML report's journeys section, as rows keyed by column."""
    from journeys.results.tables import JOURNEY_TITLES

    section = html[
        html.index("<h2>Journeys</h2>") : html.index("<h2>Journey funnels</h2>")
    ]
    body = section[section.index("<tbody>") : section.index("</tbody>")]
    return [
        dict(
            zip(
                [c for c, _ in JOURNEY_TITLES],
                re.findall(r"<td[^>]*>([^<]*)</td>", row),
            )
        )
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body)
    ]


def test_quitting_after_a_reset_judges_nothing(tmp_path, service):
    """Reset statistics after a test stopped, then quit (Ctrl-C, SIGTERM, ``--autoquit``): the
    verdict failed for "no HTTP requests were recorded", as if a test had sent nothing, beside
    the run_time check of the test the reset had cleared. It says NOT JUDGED and why, exit 1,
    alike in the console, ``_slo.csv``, the HTML report and the SLO tab's download; and so
    does a web UI quit before any test was started."""
    personas = write_personas(tmp_path, SHOPPER)
    (tmp_path / "idle").mkdir()
    locust, ui = start_web_ui(tmp_path, service.url, personas=personas)
    idle, _ = start_web_ui(tmp_path / "idle", service.url, personas=personas)

    def slo_rows() -> list[dict]:
        return list(csv.DictReader(io.StringIO(get_text(ui + "/journeys/slo/csv"))))

    try:
        started = post_form(
            ui + "/swarm", user_count=2, spawn_rate=2, host=service.url, run_time="30s"
        )
        assert started["success"], started
        service.wait_for_payments(locust, timeout=15)
        post_form(ui + "/stop")
        stopped = slo_rows()
        post_form(ui + "/stats/reset")
        reset = slo_rows()
    finally:
        output = end_process(locust)
        idle_output = end_process(idle)
    # the test was judged: stopped before its run time
    assert {r["metric"] for r in stopped} >= {"verdict", "p95_ms", "run_time"}, stopped
    cleared = re.compile(
        r"no test ran since the statistics were reset at \d\d:\d\d:\d\d, after the last "
        r"test had stopped \(the reset cleared its figures\): nothing to judge \(run\)"
    )
    written = (tmp_path / "run_slo.csv").read_text()
    for rows in (reset, list(csv.DictReader(io.StringIO(written)))):
        assert [(r["metric"], r["actual"], r["passed"]) for r in rows] == [
            ("verdict", "not judged", "false"),
            ("requests", "0", "false"),
        ], rows
        assert cleared.fullmatch(rows[1]["message"]), rows
        assert rows[0]["message"] == (
            f"SLO verdict: NOT JUDGED (no test to judge) - {rows[1]['message']}"
        ), rows
    assert locust.returncode == 1, output[-3000:]
    assert "SLO verdict: NOT JUDGED (no test to judge) - targets: " in output
    assert cleared.search(output.split("  NOT JUDGED: ")[-1]), output[-3000:]
    report = (tmp_path / "report.html").read_text()
    assert '<div class="verdict fail">SLO verdict: NOT JUDGED (no test to judge)<' in (
        report
    )
    assert "run_time" not in report.split('id="journey-results"')[1]
    assert idle.returncode == 1, idle_output[-3000:]
    assert (
        "  NOT JUDGED: no test was started in the web UI: nothing to judge (run)"
        in idle_output
    ), idle_output[-3000:]
    assert "Traceback" not in output + idle_output, output[-3000:]
