"""Start-up behaviour of real Locust runs: personas file errors, persona mix, seeds, token, host."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from journeys.idle_personas import idle_personas
from journeys.preflight import token_problem
from journeys.setup_stop import NOTHING_SENT
from tests.conftest import (
    ROOT,
    TOKEN,
    OwnServices,
    RunPlan,
    case_result,
    empty_tables,
    free_port,
    locust_command,
    locust_env,
    locust_process,
    processes_args,
    run_cases,
    run_locust,
    run_processes,
    write_personas,
)

MIX = (
    "alpha_shopper,customer,6,visa,USD,5,50,0,1,,en_US,0.5,1",
    "beta_shopper,customer,3,mastercard,EUR,5,50,0,1,,de_DE,0.5,1",
    "gamma_shopper,customer,1,amex,GBP,5,50,0,1,,en_GB,0.5,1",
)


def test_bad_personas_file_exits_2_before_any_request(tmp_path, idle_service):
    service = idle_service
    personas = write_personas(
        tmp_path,
        "good_one,customer,1,visa,USD,5,50,0,1,,en_US,0,1",
        "bad_one,customer,-1,visa,USDD,5,50,0,1,,en_US,0,1",
        name="broken.csv",
    )
    # a previous run's reports in the same places (a CI workspace kept between builds): its
    # stats and its PASS stayed, the personas being read before Locust empties its CSVs
    stale = [
        "run_stats.csv",
        "run_slo.csv",
        "run_journeys.csv",
        "report.html",
        "junit.xml",
    ]
    for name in stale:
        (tmp_path / name).write_text("from the previous run: verdict PASS\n")
        # a run that ended a minute ago, not one still writing them
        os.utime(tmp_path / name, (time.time() - 60,) * 2)
    run = run_locust(
        tmp_path, service.url, "--junit-xml", str(tmp_path / "junit.xml"),
        personas=personas, run_time="3s",
    )  # fmt: skip
    assert run.returncode == 2, run.output[-2000:]
    assert "broken.csv" in run.output
    assert (
        re.search(r"line 3\b", run.output)
        and "weight" in run.output
        and "currencies" in run.output
    )
    assert "Traceback" not in run.output
    assert service.query("SELECT count(*) FROM payments") == [(0,)]
    assert not [name for name in stale if (tmp_path / name).exists()], stale
    assert "the previous run's reports" in run.output, run.output[-2000:]


def test_a_stopped_run_leaves_the_reports_a_live_run_is_writing(tmp_path, service):
    """A run stopped at start (a bad personas file, a master port a live run holds) beside a
    run still going with the same ``--csv`` prefix: the stop removed that run's open CSV files,
    and it wrote on into unlinked files, ending with no stats, history or failures CSV."""
    live = locust_process(
        locust_command(tmp_path, "--tags", "customer", users=1, run_time="6s"),
        service.url,
    )
    history = tmp_path / "run_stats_history.csv"
    deadline = time.monotonic() + 20
    while not (history.exists() and history.read_text().count("\n") > 1):
        assert live.poll() is None and time.monotonic() < deadline, "no history written"
        time.sleep(0.2)
    bad = write_personas(tmp_path, "bad_one,customer,-1,visa,USD,5,50,0,1,,en_US,0,1")
    stopped = run_locust(tmp_path, service.url, personas=bad, run_time="3s")
    out = live.communicate(timeout=30)[0]
    assert stopped.returncode == 2, stopped.output[-2000:]
    assert live.returncode in (0, 1), out[-2000:]
    for name in ("run_stats.csv", "run_stats_history.csv", "run_failures.csv"):
        assert (tmp_path / name).exists(), (name, stopped.output[-2000:])
    assert "Aggregated" in (tmp_path / "run_stats.csv").read_text()
    assert "still being written" in stopped.output, stopped.output[-2000:]


def test_user_counts_follow_the_persona_weights(tmp_path, service):
    personas = write_personas(tmp_path, *MIX)
    run = run_locust(tmp_path, service.url, personas=personas, users=10, run_time="2s")
    spawned = re.search(r"All users spawned: (\{.*?\})", run.output)
    assert spawned, run.output[-3000:]
    assert json.loads(spawned.group(1)) == {
        "AlphaShopper": 6,
        "BetaShopper": 3,
        "GammaShopper": 1,
    }
    # the data pools of every persona are built before the first user starts, not mid-test
    ready = run.output.find("data pools ready for 3 personas (3 locales)")
    assert 0 <= ready < run.output.index("Ramping to"), run.output[-3000:]


def test_persona_class_can_be_picked_by_name(tmp_path, service):
    personas = write_personas(tmp_path, *MIX)
    run = run_locust(
        tmp_path, service.url, "BetaShopper", personas=personas, users=2, run_time="3s"
    )
    currencies = {c for (c,) in service.query("SELECT DISTINCT currency FROM payments")}
    assert currencies == {"EUR"}, run.output[-2000:]


@pytest.mark.parametrize(
    "how,given,hint",
    [
        ("argument", "beta_shopper", "did you mean BetaShopper?"),
        ("argument", "BetaShoper", "did you mean BetaShopper?"),
        ("env", "BetaShoper", "did you mean BetaShopper?"),
        ("config", "BetaShoper", "did you mean BetaShopper?"),
        # a comma, as most tools list things: "did you mean BetaShopper?" named one of the two
        (
            "argument",
            "AlphaShopper,BetaShopper",
            "several classes are separate words: AlphaShopper BetaShopper",
        ),
    ],
)
def test_an_unknown_persona_class_names_the_classes(
    tmp_path, idle_service, how, given, hint
):
    """``locust beta_shopper`` (the persona's name, not its class) ended with Locust's bare
    "Unknown User(s): beta_shopper", exit 1; now the classes there are and the fix, exit 2.
    The same line whichever way the class is named: ``LOCUST_USER_CLASSES`` still got Locust's
    bare error, and a config file's ``user-classes`` (which Locust does not read) got
    "unrecognized arguments: --user-classes=BetaShoper"."""
    personas = write_personas(tmp_path, *MIX)
    args, env = [], None
    if how == "argument":
        args = [given]
    elif how == "env":
        env = {"LOCUST_USER_CLASSES": f"AlphaShopper {given}"}
    else:
        config = tmp_path / "classes.conf"
        config.write_text(f"user-classes = {given}\n")
        args = ["--config", str(config)]
    run = run_locust(
        tmp_path, idle_service.url, *args, personas=personas, env=env, timeout=25
    )
    assert run.returncode == 2, run.output[-2000:]
    [line] = [l for l in run.output.splitlines() if "persona class" in l]
    assert f"unknown persona class '{given}' ({hint})" in line, run.output[-2000:]
    assert "AlphaShopper, BetaShopper, GammaShopper" in line
    source = {
        "argument": "",
        "env": f"(set by LOCUST_USER_CLASSES='AlphaShopper {given}'",
        "config": f"(set by user-classes = {given} in {tmp_path / 'classes.conf'}",
    }[how]
    assert source in line, line
    if how == "config":
        assert "a config file cannot name user classes" in line, line
    assert "Traceback" not in run.output and "Unknown User" not in run.output
    assert idle_service.query("SELECT COUNT(*) FROM payments") == [(0,)]


@pytest.fixture(scope="module")
def misspelled_option_runs(request, idle_service):
    """test_a_misspelled_option_is_named_not_its_value's runs, two at once (each only starts
    up and stops)."""

    def start(folder, params):
        personas = write_personas(folder, *MIX)
        command = locust_command(folder, *params["args"], personas=personas)
        if params["args"] == ["-uabc"]:  # the users from LOCUST_USERS, not --users
            at = command.index("--users")
            del command[at : at + 2]
        return command, locust_env(idle_service.url, {"LOCUST_USERS": "10"}), None

    return run_cases(request, "test_a_misspelled_option_is_named_not_its_value", start)


@pytest.mark.parametrize(
    "args,needle",
    [
        (
            ["--junitxml", "reports/junit.xml"],
            (
                "unknown option --junitxml (did you mean --junit-xml?): its value "
                "'reports/junit.xml' was read as a persona class"
            ),
        ),
        (
            ["-users", "5"],
            (
                "unknown option -users (did you mean --users?): a long option takes two "
                "dashes. Locust's options are in locust --help, this tool's in the README's tables"
            ),
        ),
        (["-x", "5"], "unknown option -x. Locust's options are in locust --help"),
        # a short option with its value stuck to it is the command line's, not LOCUST_USERS'
        (
            ["-uabc"],
            "argument -u/--users: invalid int value: 'abc'. No traffic was sent.\n",
        ),
    ],
    ids=["two-dashes", "one-dash", "one-letter", "stuck-value"],
)
def test_a_misspelled_option_is_named_not_its_value(
    request, misspelled_option_runs, idle_service, args, needle
):
    """``--junitxml reports/junit.xml`` (pytest's spelling of ``--junit-xml``): argparse set
    the option it does not know aside and gave its value to the user classes, and the run
    stopped on "unknown persona class 'reports/junit.xml'", naming neither the option nor
    the fix. With one dash, ``-users 5`` was "-u/--users: invalid int value: 'sers' (set by
    users = 10 in locust.conf ...)" and ``-x 5`` "unknown persona class '5'". ``-uabc`` with
    ``LOCUST_USERS=10`` was "invalid int value: 'abc' (set by LOCUST_USERS='10' ...)"."""
    run = case_result(misspelled_option_runs, request)
    assert run.returncode == 2, run.output[-2000:]
    assert needle in run.output, run.output[-2000:]
    assert "persona class '" not in run.output and "(set by" not in run.output
    assert idle_service.query("SELECT COUNT(*) FROM payments") == [(0,)]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["-users=5"], "unknown option -users (did you mean --users?)"),
        (["-spawnrate", "3"], "unknown option -spawnrate (did you mean --spawn-rate?)"),
        (["-x=5"], "unknown option -x."),
        # short options with their values stuck to them, a negative number
        (["-u5", "-t5s", "-Lwarning", "-flocustfile", "-5"], None),
        (["--tags", "a", "--", "-users"], None),  # after --, a value
    ],
)
def test_one_dash_typos_are_told_from_short_options(args, named):
    """What ``-users=5`` or ``-spawnrate 3`` is named, and which words are no typo: a short
    option with its value stuck to it, a negative number, anything after ``--``."""
    from locust.argument_parser import get_empty_argument_parser, setup_parser_arguments

    from journeys.option_typos import one_dash_typo

    parser = get_empty_argument_parser()
    setup_parser_arguments(parser)
    problem = one_dash_typo(parser, args)
    assert (problem and problem.split(":")[0].split(". ")[0]) == (
        named and named.rstrip(".")
    ), problem


def test_a_class_after_tags_is_named_as_a_class(tmp_path, idle_service):
    """``--tags`` takes every word after it: ``locust --tags checkout BetaShopper`` read the
    class as a tag, and the message listed tags only, leaving the user to find out why."""
    personas = write_personas(tmp_path, *MIX)
    run = run_locust(
        tmp_path, idle_service.url, "--tags", "checkout", "BetaShopper",
        personas=personas, timeout=25,
    )  # fmt: skip
    assert run.returncode == 2, run.output[-2000:]
    assert (
        "--tags: no journey carries the tag 'BetaShopper'. Tags are roles (customer), journey "
        "tags (checkout) and persona names (alpha_shopper, beta_shopper, gamma_shopper). "
        "BetaShopper is a persona class, not a tag: name classes before --tags, which takes "
        "every word after it (locust BetaShopper --tags ...). No traffic was sent."
    ) in run.output, run.output[-2000:]
    assert idle_service.query("SELECT COUNT(*) FROM payments") == [(0,)]


def test_a_tag_of_a_persona_left_out_says_so(tmp_path, idle_service):
    """``locust AlphaShopper --tags beta_shopper``: the tag is a persona's name, but not of a
    class this run has; the message listed the run's tags only, as if ``beta_shopper`` did
    not exist."""
    personas = write_personas(tmp_path, *MIX)
    run = run_locust(
        tmp_path, idle_service.url, "AlphaShopper", "--tags", "beta_shopper",
        personas=personas, timeout=25,
    )  # fmt: skip
    assert run.returncode == 2, run.output[-2000:]
    assert (
        "--tags: no journey carries the tag 'beta_shopper'. Tags are roles (customer), journey "
        "tags (checkout) and persona names (alpha_shopper). 'beta_shopper' is a tag of "
        "BetaShopper, left out of this run by the classes named: name it too, or no classes to "
        "run every persona. No traffic was sent."
    ) in run.output, run.output[-2000:]
    assert idle_service.query("SELECT COUNT(*) FROM payments") == [(0,)]


def test_a_config_file_cannot_name_user_classes(tmp_path, idle_service):
    """Locust reads no user classes from a config file: a right name there is refused too,
    saying where to name it instead (not "unrecognized arguments: --user-classes=...")."""
    personas = write_personas(tmp_path, *MIX)
    config = tmp_path / "classes.conf"
    config.write_text("user-classes = [BetaShopper, GammaShopper]\n")
    run = run_locust(
        tmp_path,
        idle_service.url,
        "--config",
        str(config),
        personas=personas,
        timeout=25,
    )
    assert run.returncode == 2, run.output[-2000:]
    assert (
        "a config file cannot name user classes: Locust reads them from the command line "
        "(locust BetaShopper GammaShopper) or LOCUST_USER_CLASSES" in run.output
    ), run.output[-2000:]
    assert "unknown persona class" not in run.output
    assert idle_service.query("SELECT COUNT(*) FROM payments") == [(0,)]


def _first_payments(service, count=6):
    return service.query(
        "SELECT amount, currency, brand, last4, json_extract(metadata, '$.persona') FROM payments "
        "ORDER BY created_at, rowid LIMIT ?",
        (count,),
    )


def test_seed_repeats_the_data(request):
    """Also against a failing service: the resends' backoff jitter has a stream of its own, so
    a baseline run and a fault run with one seed send the same payments."""
    solo = "solo,customer,1,visa|mastercard|amex,USD|EUR|JPY,5,900,0.3,1,,fr_FR,0,0"
    failing = ("--error-rate", "0.5", "--error-phase", "before", "--fault-seed", "3")
    # a service of its own each: the run's first payments are the first in its database
    services = OwnServices()

    def starter(seed, seconds, *flags):
        return services.starter(
            lambda folder: RunPlan(
                flags, ("--seed", seed),
                personas=write_personas(folder, solo), users=1, run_time=seconds,
            )
        )  # fmt: skip

    try:  # the four runs two at once, each against its own service
        done = run_processes(
            request,
            [
                ("failing", starter("21", "3s", *failing)),
                ("first", starter("21", "1s")),
                ("again", starter("21", "1s")),
                ("other seed", starter("22", "1s")),
            ],
            timeout=120,
        )
        runs = {}
        for key, case in done.items():
            if isinstance(case, BaseException):
                raise case
            runs[key] = _first_payments(case.context)
    finally:
        services.stop()
    run = done["failing"].locust_run()
    assert len(runs["first"]) == 6
    assert runs["first"] == runs["again"], "the same seed must repeat the same payments"
    assert runs["first"] != runs["other seed"], "another seed must give other payments"
    assert "(resend same key)" in run.output, (
        "the failing service made the client resend"
    )
    assert runs["failing"] == runs["first"], (
        "resends must not change the data that follows"
    )


def test_seed_repeats_a_probers_data(request):
    """A prober has two journeys (edge and error probes) and each pass picks one: Locust picked
    it with the process's unseeded ``random``, so two runs with one seed took different journeys
    after the first few passes, and with them different amounts, cards and customers."""
    prober = "solo_prober,prober,1,visa|amex|jcb,USD|JPY,1,100,0,0,,ja_JP,0,0.02"
    services = OwnServices()
    starter = services.starter(
        lambda folder: RunPlan(
            (), ("--seed", "31"),
            personas=write_personas(folder, prober), users=1, run_time="2s",
        )
    )  # fmt: skip
    try:
        done = run_processes(request, [("first", starter), ("again", starter)])
        runs = {}
        for key, case in done.items():
            if isinstance(case, BaseException):
                raise case
            runs[key] = case.context.query(
                "SELECT amount, currency, brand, last4, json_extract(metadata, '$.journey'), "
                "json_extract(metadata, '$.probe') FROM payments ORDER BY created_at, rowid "
                "LIMIT 60"
            )
    finally:
        services.stop()
    assert len(runs["first"]) == 60, done["first"].output[-2000:]
    journeys = {row[4] for row in runs["first"]}
    assert journeys == {"edge_probes", "error_probes"}, journeys
    assert runs["first"] == runs["again"], (
        "the same seed must repeat the prober's payments"
    )


def test_missing_token_with_operators_stops_before_traffic(tmp_path, idle_service):
    service = idle_service
    personas = write_personas(tmp_path, "ops,operator,1,visa,USD,1,50,0,0,3,en_US,0,1")
    run = run_locust(
        tmp_path, service.url, personas=personas, env={"PAYMENT_INTERNAL_TOKEN": ""}
    )
    assert run.returncode == 2
    assert "PAYMENT_INTERNAL_TOKEN is not set" in run.output and "ops" in run.output
    assert service.query("SELECT count(*) FROM payments") == [(0,)]


def test_a_card_number_in_the_personas_file_is_not_quoted(tmp_path, idle_service):
    """A test card's number typed where a brand goes (``visa|4242...``), or in any cell: the
    problem quoted the cell whole on stderr. In a persona's name it was taken, and carried into
    every output of the run."""
    card = "4242424242424242"
    dashed = "4242-4242-4242-4242"
    personas = write_personas(
        tmp_path,
        f"shop,customer,1,visa|{card},USD,1,50,0,1,,en_US,0,1",
        f"shop_two,customer,{dashed},visa,USD,1,50,0,1,,{card},0,1",
        f"shop_{card},customer,1,visa,USD,1,50,0,1,,en_US,0,1",
    )
    run = run_locust(tmp_path, idle_service.url, personas=personas)
    assert run.returncode == 2, run.output[-2000:]
    assert "unknown card brand '[card redacted]'" in run.output, run.output[-2000:]
    assert "'shop_[card redacted]' holds a card number" in run.output
    assert card not in run.output.replace("-", ""), run.output[-2000:]


def test_a_host_with_a_trailing_slash_works(tmp_path, idle_service):
    """``http://svc:8000/`` is how many people write a base URL; ``/pay`` must not become
    ``//pay`` (an invalid request target: every payment failed with a traceback)."""
    service = empty_tables(idle_service)
    personas = write_personas(
        tmp_path, "fast,customer,1,visa,USD,5,60,0,0,,en_US,0,0.05"
    )
    run = run_locust(tmp_path, service.url + "/", personas=personas, run_time="2s")
    assert run.returncode == 0, run.output[-3000:]
    assert "Traceback" not in run.output
    assert service.query("SELECT count(*) FROM payments")[0][0] > 0


@pytest.mark.parametrize(
    "persona",
    [
        "ops,operator,1,visa,USD,1,50,0,0,3,en_US,0,1",
        "shopper,customer,1,visa,USD,1,50,0,0,,en_US,0,1",  # no token check to catch it
    ],
    ids=["operators", "customers only"],
)
def test_a_host_with_a_wrong_base_path_stops_before_traffic(
    tmp_path, idle_service, persona
):
    """``--host http://svc:8000/api`` when the API is at the root: ``POST /pay`` answers 404 to
    the preflight, so the run stops with exit 2 instead of failing every request."""
    service = empty_tables(idle_service)
    run = run_locust(
        tmp_path, service.url + "/api", personas=write_personas(tmp_path, persona)
    )
    assert run.returncode == 2, run.output[-3000:]
    assert (
        f"The target has no payment endpoint: POST {service.url}/api/pay answered 404. "
        "Check --host" in run.output
    ), run.output[-2000:]
    assert "No traffic was sent." in run.output and "Traceback" not in run.output
    assert service.query("SELECT count(*) FROM payments") == [(0,)]


def test_unreachable_host_stops_at_once(tmp_path):
    from tests.conftest import free_port

    # a previous run's reports in the same place (a CI workspace kept between builds)
    stale = ["run_stats.csv", "run_slo.csv", "run_journeys.csv", "run_ledger.csv"]
    for name in [*stale, "report.html", "junit.xml"]:
        (tmp_path / name).write_text("from the previous run: verdict PASS\n")
    run = run_locust(
        tmp_path, f"http://127.0.0.1:{free_port()}", "--junit-xml",
        str(tmp_path / "junit.xml"), run_time="30s", timeout=25,
    )  # fmt: skip
    assert run.returncode == 2
    assert "cannot be reached" in run.output and "--wait-for-host" in run.output
    # Locust's --csv files were created before the check, empty: a run that never ran leaves
    # none, and no earlier run's verdict or report for a CI job to archive as this one's
    assert not list(tmp_path.glob("run_*.csv")), list(tmp_path.iterdir())
    assert not (tmp_path / "report.html").exists()
    assert not (tmp_path / "junit.xml").exists()  # a test report of passed checks
    assert "the previous run's reports" in run.output, run.output[-2000:]


def test_an_unreachable_host_after_waiting_says_to_wait_longer(tmp_path):
    """The message told a user who had passed --wait-for-host to pass it."""
    from tests.conftest import free_port

    host = f"http://127.0.0.1:{free_port()}"
    run = run_locust(tmp_path, host, "--wait-for-host", "1", timeout=25)
    assert run.returncode == 2, run.output[-2000:]
    assert (
        f"The target {host} cannot be reached after waiting 1s (Connection refused). Start the "
        "payment service or fix --host / LOCUST_HOST; raise --wait-for-host to wait for it to "
        "come up."
    ) in run.output, run.output[-2000:]


def test_a_taken_web_ui_port_stops_at_once(tmp_path, idle_service):
    """Locust found out after start-up: a traceback, exit 1, and CSV and HTML reports of a
    run that never was, failed for "no HTTP requests were recorded". The port is usually a
    live web UI's (a second start of one command): its CSVs at the same prefix, which Locust
    emptied as it opened this run's before the check, stay whole."""
    import socket

    live = ["run_stats.csv", "run_stats_history.csv", "run_failures.csv"]
    for name in live:  # as a live run keeps them: written a moment ago
        (tmp_path / name).write_text("Type,Name\nGET,/live\n")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        run = run_locust(
            tmp_path, idle_service.url, "--web-host", "127.0.0.1", "--web-port", str(port),
            headless=False, timeout=25,
        )  # fmt: skip
    assert run.returncode == 2, run.output[-2000:]
    assert (
        f"The web UI cannot listen on 127.0.0.1:{port} (Address already in use): stop what "
        "holds the port or choose another with --web-port (LOCUST_WEB_PORT). No traffic was sent."
    ) in run.output, run.output[-2000:]
    assert "Traceback" not in run.output, run.output[-2000:]
    for name in live:
        assert "/live" in (tmp_path / name).read_text(), (name, run.output[-2000:])


def test_web_login_without_a_login_check_stops_at_once(tmp_path, idle_service):
    """``--web-login`` (LOCUST_WEB_LOGIN, listed for compose's ``up``) with only our locustfile:
    Locust has no login check of its own, so every page answered "Locust auth exception: ...
    no secret key was set" and logged a RuntimeError traceback, for the whole run."""
    from tests.conftest import free_port

    run = run_locust(
        tmp_path, idle_service.url, "--web-host", "127.0.0.1", "--web-port",
        str(free_port()), headless=False, env={"LOCUST_WEB_LOGIN": "true"}, timeout=15,
    )  # fmt: skip
    assert run.returncode == 2, run.output[-2000:]
    assert (
        "--web-login (LOCUST_WEB_LOGIN) puts a login page in front of the web UI, but no login "
        "check is registered"
    ) in run.output, run.output[-2000:]
    assert "Traceback" not in run.output, run.output[-2000:]


def test_a_taken_master_port_stops_before_workers_fork(tmp_path, idle_service):
    """``--processes`` with its master port taken: Locust found out after forking its workers,
    with a traceback and exit 1, and left the workers running for good (they never heard a
    master, so they never gave up)."""
    import socket
    import subprocess

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        args = ("--processes", "2", "--master-bind-port", port, "--master-port", port)
        run = run_locust(tmp_path, idle_service.url, *args, timeout=25)
        pattern = f"--master-bind-port {port} "
        left = subprocess.run(
            ["pgrep", "-f", "--", pattern], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in left:  # the forked workers Locust left behind
            os.kill(int(pid), signal.SIGKILL)
    assert run.returncode == 2, run.output[-2000:]
    assert (
        f"The master cannot listen for its workers on 0.0.0.0:{port} (Address already in use): "
        "stop what holds the port or choose another with --master-bind-port"
    ) in run.output, run.output[-2000:]
    assert "Traceback" not in run.output, run.output[-2000:]
    assert not left, "forked workers left running"


@pytest.mark.parametrize(
    "env,args",
    [
        ({}, ["--master-bind-port", "{port}"]),
        ({"LOCUST_MASTER_BIND_PORT": "{port}", "LOCUST_MASTER_PORT": "{port}"}, []),
    ],
    ids=["flag", "env-var-of-another-name"],
)
def test_processes_whose_workers_would_dial_another_port_stop_before_forking(
    tmp_path, idle_service, env, args
):
    """With --processes, Locust's forked workers dial --master-port (LOCUST_MASTER_NODE_PORT),
    5557 unless told, whatever --master-bind-port the master listens on: the headless master
    waited for them forever (a CI job hung 10 minutes until killed, no report)."""
    from tests.conftest import free_port

    port = str(free_port())
    env = {k: v.format(port=port) for k, v in env.items()}
    args = [a.format(port=port) for a in args]
    run = run_locust(
        tmp_path, idle_service.url, "--processes", "2", *args, env=env, timeout=25
    )
    assert run.returncode == 2, run.output[-2000:]
    assert (
        f"--processes: the forked workers would connect to port 5557 (--master-port, "
        f"LOCUST_MASTER_NODE_PORT), but the master listens on {port} (--master-bind-port"
    ) in run.output, run.output[-2000:]
    assert "Traceback" not in run.output and "Waiting for workers" not in run.output


@pytest.mark.parametrize(
    "stop", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"]
)
def test_stopped_while_waiting_for_the_target_ends_at_once(tmp_path, stop):
    """Ctrl-C was a KeyboardInterrupt traceback; SIGTERM came before any handler, which as a
    container's PID 1 (`docker stop`) is ignored, so it waited out all of --wait-for-host."""
    from tests.conftest import end_process, free_port, locust_command, locust_process

    host = f"http://127.0.0.1:{free_port()}"
    proc = locust_process(
        locust_command(tmp_path, "--wait-for-host", "60", run_time="30s"), host
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any("data seed:" in line for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            time.sleep(0.1)
        time.sleep(1)  # in the wait for the target
        proc.send_signal(stop)
        assert proc.wait(timeout=10) == 1, "".join(lines)
    finally:
        end_process(proc)
    reader.join(timeout=5)
    output = "".join(lines)
    name = "Ctrl-C" if stop == signal.SIGINT else "SIGTERM"
    assert f"{name} while checking the target: stopped. No traffic was sent." in output
    assert "Traceback" not in output, output
    assert not list(tmp_path.glob("run_*.csv")), list(tmp_path.iterdir())


@pytest.mark.parametrize("variable", ["LOCUST_SEED", "LOCUST_SLO_P95_MS"])
def test_the_token_in_the_wrong_variable_is_not_quoted(
    tmp_path, idle_service, variable
):
    """A CI job that maps its secret to the wrong variable: the bad value's message quoted it
    (argparse's "invalid ... value: '<token>'" and the tool's "set by LOCUST_SEED='<token>'")
    into the job's log. Now the bad value is named, the token redacted."""
    run = run_locust(tmp_path, idle_service.url, env={variable: TOKEN}, timeout=25)
    assert run.returncode == 2, run.output[-2000:]
    assert f"{variable}='[token redacted]'" in run.output, run.output[-2000:]
    assert TOKEN not in run.output
    assert idle_service.query("SELECT count(*) FROM payments") == [(0,)]


@pytest.mark.parametrize(
    "variable", ["LOCUST_TAGS", "LOCUST_EXCLUDE_TAGS", "LOCUST_PERSONAS"]
)
def test_the_token_as_a_tag_or_personas_path_is_not_quoted(
    tmp_path, idle_service, variable
):
    """The same slip into a variable whose value a setup check quotes: 'no journey carries the
    tag '<token>'' and '<token>: 1 problem' went to the job's log whole."""
    run = run_locust(tmp_path, idle_service.url, env={variable: TOKEN}, timeout=25)
    assert run.returncode == 2, run.output[-2000:]
    assert "[token redacted]" in run.output, run.output[-2000:]
    assert TOKEN not in run.output
    assert idle_service.query("SELECT count(*) FROM payments") == [(0,)]


def test_a_host_with_credentials_is_never_printed_with_them(tmp_path):
    run = run_locust(tmp_path, "http://user:s3cret-pw@127.0.0.1:9", timeout=25)
    assert run.returncode == 2, run.output[-2000:]
    assert "http://127.0.0.1:9 cannot be reached" in run.output
    assert "s3cret-pw" not in run.output


def test_no_host_stops_with_one_clear_line(tmp_path):
    run = run_locust(tmp_path, "", run_time="30s", timeout=25)
    assert run.returncode == 2, run.output[-2000:]
    assert "No target" in run.output and "--host" in run.output, run.output[-2000:]
    assert "LOCUST_HOST" in run.output and "python -m payment_service" in run.output
    assert "Traceback" not in run.output and "SLO verdict" not in run.output


def test_a_locust_variable_nothing_reads_is_named(tmp_path):
    """A CI job's typo (LOCUST_RUNTIME) left a headless run without a run time, never ending,
    and a worker's name on a master (LOCUST_MASTER_PORT) left --processes workers dialling 5557:
    Locust ignored both without a word."""
    env = {
        "LOCUST_RUNTIME": "5s",
        "LOCUST_MASTER_PORT": "19999",
        "LOCUST_FOO": "1",
        "LOCUST_SERVICE_HOST": "10.0.0.1",  # Kubernetes sets these for a service "locust"
    }
    run = run_locust(tmp_path, "", run_time="30s", timeout=25, env=env)
    assert run.returncode == 2, run.output[-2000:]
    out = run.output
    assert "LOCUST_RUNTIME is set, but no Locust or tool option reads it" in out, out
    assert "did you mean LOCUST_RUN_TIME?" in out, out
    assert (
        "LOCUST_MASTER_PORT" in out and "did you mean LOCUST_MASTER_NODE_PORT?" in out
    )
    assert (
        "LOCUST_FOO is set" in out
        and "LOCUST_FOO is set, but no Locust or tool option reads it: it is ignored (Locust's"
        in out
    )
    assert "LOCUST_SERVICE_HOST" not in out and "LOCUST_HOST is set" not in out
    # Locust's --help lists no LOCUST_* name: the warning sent users there for nothing
    assert "locust --help" not in out, out
    assert "https://docs.locust.io/en/stable/configuration.html" in out, out


def test_wrong_token_stops_before_traffic(tmp_path, idle_service):
    service = idle_service
    personas = write_personas(tmp_path, "ops,operator,1,visa,USD,1,50,0,0,3,en_US,0,1")
    wrong = "not-the-service-token-4b1d"
    run = run_locust(
        tmp_path,
        service.url,
        personas=personas,
        run_time="30s",
        timeout=25,
        env={"PAYMENT_INTERNAL_TOKEN": wrong},
    )
    assert run.returncode == 2, run.output[-2000:]
    assert "refused PAYMENT_INTERNAL_TOKEN: 403 invalid_token" in run.output
    assert wrong not in run.output and "Traceback" not in run.output
    assert service.query("SELECT count(*) FROM payments") == [(0,)]


def test_a_host_with_user_and_password_stops_a_run_that_needs_the_token(
    tmp_path, idle_service
):
    """Locust sends --host's user:password as every request's Authorization header, in place
    of the internal token: each operator's report was refused (401 missing_token) while the
    token check, which leaves credentials out, passed. Such a run now stops before traffic,
    naming the clash and never the password."""
    service = idle_service
    personas = write_personas(tmp_path, "ops,operator,1,visa,USD,1,50,0,0,3,en_US,0,1")
    host = service.url.replace("http://", "http://gateway:s3cret-pw@")
    run = run_locust(
        tmp_path, host, personas=personas, run_time="30s", timeout=25
    )  # fmt: skip
    assert run.returncode == 2, run.output[-2000:]
    assert "--host carries a user and password" in run.output, run.output[-2000:]
    assert "s3cret-pw" not in run.output and "Traceback" not in run.output
    assert service.query("SELECT count(*) FROM payments") == [(0,)]


def test_a_customers_run_keeps_the_hosts_password_out_of_the_html_report(
    tmp_path, service
):
    """Customers need no token, so their run may keep --host's user:password (a gateway's
    basic auth): Locust's HTML report wrote the host whole, password included, where every
    other output of the tool leaves it out."""
    personas = write_personas(
        tmp_path, "shop,customer,1,visa,USD,1,50,0,0,,en_US,0,0.1"
    )
    # an @ in the password too: the host is what follows the last @, as the client reads it
    host = service.url.replace("http://", "http://gateway:s3cret@pw@")
    run = run_locust(tmp_path, host, personas=personas, users=1, run_time="2s")
    assert run.returncode == 0, run.output[-2000:]
    assert service.query("SELECT count(*) FROM payments")[0][0] > 0
    html = run.html_path.read_text()
    assert f'"host": "{service.url}"' in html, html[:2000]
    assert "s3cret" not in html and "s3cret" not in run.output


def test_wrong_token_is_not_checked_without_operators_or_probers(tmp_path, service):
    personas = write_personas(tmp_path, *MIX)
    run = run_locust(
        tmp_path,
        service.url,
        personas=personas,
        run_time="2s",
        env={"PAYMENT_INTERNAL_TOKEN": "not-the-service-token-4b1d"},
    )
    assert run.returncode != 2, run.output[-2000:]
    assert service.query("SELECT count(*) FROM payments")[0][0] > 0


def _all_outputs(run) -> str:
    """The run's output, its CSVs and its HTML report, as one text."""
    files = sorted(run.csv_prefix.parent.glob("run_*.csv")) + [run.html_path]
    return run.output + "".join(f.read_text() for f in files if f.exists())


def test_a_token_with_a_line_end_is_sent_without_it_and_never_shown(tmp_path, service):
    """A token read from a file keeps its line end (``\\r\\n`` from Windows): the service
    strips it, and so must the generator. Sent as it was, every report request failed with the
    HTTP client's error, which quoted the whole Authorization header, token included, in the
    failures and exceptions CSVs and the verdict."""
    personas = write_personas(tmp_path, "ops,operator,1,visa,USD,1,50,0,0,3,en_US,0,1")
    run = run_locust(
        tmp_path,
        service.url,
        "--reconcile-run",
        users=2,
        run_time="3s",
        personas=personas,
        env={"PAYMENT_INTERNAL_TOKEN": TOKEN + "\r\n"},
    )
    assert run.returncode == 0, run.output[-2000:]
    assert TOKEN not in _all_outputs(run)


def test_a_token_a_header_cannot_carry_stops_the_run_unquoted(tmp_path, idle_service):
    # a run of this module may have paid into it
    idle_service = empty_tables(idle_service)
    bad = "tok-\t-" + TOKEN
    personas = write_personas(tmp_path, "ops,operator,1,visa,USD,1,50,0,0,3,en_US,0,1")
    run = run_locust(
        tmp_path,
        idle_service.url,
        personas=personas,
        env={"PAYMENT_INTERNAL_TOKEN": bad},
    )
    assert run.returncode == 2, run.output[-2000:]
    assert "an Authorization header cannot carry" in run.output
    assert TOKEN not in run.output and "Traceback" not in run.output
    assert idle_service.query("SELECT count(*) FROM payments") == [(0,)]


@pytest.mark.parametrize("answer", [200, 500, 302, "slow", "closed"])
def test_token_check_stops_only_on_401_403_or_no_endpoint(answer):
    """A service that speaks the contract but is slow or flaky must still be load-tested."""

    followed = []  # requests that followed a redirect: they would carry the token elsewhere

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            followed.append((self.path, self.headers.get("Authorization")))
            self.do_POST()

        def do_POST(self):
            if answer == 302 and self.command == "POST":
                self.send_response(302)
                self.send_header("Location", "/login")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if answer == "slow":
                time.sleep(2)
            if answer == "closed":
                self.close_connection = True
                return
            self.send_response(answer if isinstance(answer, int) else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"http://127.0.0.1:{server.server_address[1]}"
        assert token_problem(host, "some-token", timeout=0.5) is None
        assert followed == []
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("host", ["127.0.0.1:9511", "ftp://127.0.0.1:21", "http://"])
def test_a_host_that_is_not_a_url_gets_a_whole_sentence(host):
    """It is followed by "No traffic was sent." (and shown in the web UI's start form)."""
    from journeys.preflight import wait_for_host

    problem = wait_for_host(host, 0)
    assert "is not a URL like http://127.0.0.1:8000." in problem, problem


@pytest.mark.parametrize(
    "host,why",
    [
        ("http://127.0.0.1:abc", "'abc'"),
        ("http://127.0.0.1:99999", "out of range"),
        ("http://127.0.0.1:8000 ", "'8000 '"),  # a line end or space pasted with it
        ("http://admin:s3cret@[::1:8000", "IPv6"),
    ],
)
def test_a_host_whose_port_or_address_cannot_be_read_is_named(host, why):
    """urllib's own words came alone, naming neither --host nor the fix, the sentence run into
    "No load was sent." ("Port could not be cast to integer value as 'abc' No load was sent.")."""
    from journeys.preflight import wait_for_host

    problem = wait_for_host(host, 0)
    assert problem.startswith("--host "), problem
    assert "is not a URL like http://127.0.0.1:8000" in problem, problem
    assert why in problem and problem.endswith("."), problem
    assert "s3cret" not in problem, problem


@pytest.mark.parametrize("host", ["127.0.0.1:9511", "localhost:9511", "svc.internal"])
def test_a_host_without_a_scheme_is_named_with_one(host):
    """``--host localhost:8000``, the scheme left out: the message said what a URL looks like,
    not the one meant."""
    from journeys.preflight import wait_for_host

    problem = wait_for_host(host, 0)
    assert problem.endswith(f"Did you mean http://{host}?"), problem


def test_a_host_without_a_scheme_is_never_shown_with_its_password():
    """Without ``://`` the credentials were not told from the host, and shown whole."""
    from journeys.preflight import wait_for_host

    problem = wait_for_host("admin:s3cret@localhost:9511", 0)
    assert "s3cret" not in problem, problem
    assert problem.endswith("Did you mean http://localhost:9511?"), problem


@pytest.mark.parametrize("picker", [False, True])
def test_class_picker_leaves_the_token_to_the_start_form(tmp_path, monkeypatch, picker):
    """Without a token, ``locust --class-picker`` must still open the web UI, where a tester may
    pick customers only (the start form refuses operators and probers then); without the
    picker the web UI runs every persona, so a missing token stops Locust at once."""
    from types import SimpleNamespace

    from locust.env import Environment

    from journeys.run_checks import _check_run
    from journeys.users import persona_user_classes

    personas = write_personas(
        tmp_path,
        "shop,customer,1,visa,USD,5,50,0,1,,en_US,0,1",
        "ops,operator,1,visa,USD,1,50,0,0,3,en_US,0,1",
    )
    env = Environment(user_classes=list(persona_user_classes(personas).values()))
    options = SimpleNamespace(
        num_users=1, headless=False, autostart=False, seed=1, tags=None,
        exclude_tags=None, class_picker=picker, reconcile_run=False, wait_for_host=0,
    )  # fmt: skip
    monkeypatch.delenv("PAYMENT_INTERNAL_TOKEN", raising=False)
    if picker:
        _check_run(env, options)
    else:
        with pytest.raises(SystemExit) as stopped:
            _check_run(env, options)
        assert stopped.value.code == 2


def test_a_missing_token_names_one_persona_in_the_singular():
    from journeys.run_checks import missing_token

    assert "persona ops calls the internal report endpoint" in missing_token(["ops"])
    assert "leave that persona out" in missing_token(["ops"])
    assert "personas a, b call the internal report endpoint" in missing_token(
        ["a", "b"]
    )
    assert "leave those personas out" in missing_token(["a", "b"])
    # picked in the web UI's start form (--class-picker): untick, not --tags
    assert "leave that persona out (untick it in the form)" in missing_token(
        ["ops"], picked=True
    )


@pytest.mark.parametrize(
    ("run_time", "needle"),
    [
        ("0", "-t/--run-time: 0 is no run time: Locust would run without a limit"),
        ("0s", "-t/--run-time: 0s is no run time: Locust would run without a limit"),
        ("", "-t/--run-time: it is empty: give a run time such as 20s, 3m or 1h30m"),
    ],
)
def test_a_run_time_of_0_is_refused_not_a_run_that_never_ends(
    tmp_path, idle_service, run_time, needle
):
    """``-t 0`` (or ``LOCUST_RUN_TIME=0``) read as "no run time": a headless CI run that never
    ended. An empty value was refused without saying what a run time looks like."""
    run = run_locust(tmp_path, idle_service.url, run_time=run_time, timeout=20)
    assert run.returncode == 2, run.output[-2000:]
    assert needle in run.output, run.output[-2000:]
    assert idle_service.query("SELECT count(*) FROM payments") == [(0,)]


def test_https_to_a_plain_http_service_stops_before_traffic(tmp_path, idle_service):
    """``https://`` to a service that speaks plain HTTP: the checks warned "no answer (SSL:
    WRONG_VERSION_NUMBER); not checked" and the run went on, every request failing with an
    SSLError, exit 1 as if the service had broken its SLOs."""
    host = idle_service.url.replace("http://", "https://")
    run = run_locust(tmp_path, host, run_time="10s", timeout=25)
    assert run.returncode == 2, run.output[-2000:]
    assert (
        f"The target {host} does not speak TLS: it answers plain HTTP there. Use "
        f"{idle_service.url} in --host / LOCUST_HOST."
    ) in run.output, run.output[-2000:]
    assert "SLO verdict" not in run.output


def test_personas_left_without_a_user_are_named(tmp_path, service):
    """``-u 1`` with three personas: Locust gives the one user to the heaviest, the other two
    send nothing, and the verdict passed without a word about them."""
    personas = write_personas(tmp_path, *MIX)
    run = run_locust(tmp_path, service.url, users=1, run_time="2s", personas=personas)
    assert (
        "-u 1 leaves 2 of the 3 personas without a user, so they send nothing: "
        "beta_shopper, gamma_shopper. Locust shares the users by weight: from -u 5 on "
        "every persona gets one."
    ) in run.output, run.output[-3000:]
    run = run_locust(tmp_path, service.url, users=5, run_time="2s", personas=personas)
    assert "without a user" not in run.output, run.output[-3000:]


def test_personas_left_without_a_user_are_named_when_u_is_not_given(tmp_path, service):
    """No ``-u`` and no ``locust.conf`` (``locust`` run outside this folder): Locust runs its
    default of 1 user, which went to the heaviest persona, and no warning named the others."""
    personas = write_personas(tmp_path, *MIX)
    command = locust_command(tmp_path, run_time="1s", personas=personas)
    at = command.index("--users")
    del command[at : at + 2]
    run = subprocess.run(
        command, cwd=tmp_path, env=locust_env(service.url), capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert (
        "No -u: Locust's default of 1 user leaves 2 of the 3 personas without a user, so "
        "they send nothing: beta_shopper, gamma_shopper. Locust shares the users by weight: "
        "from -u 5 on every persona gets one."
    ) in output, output[-3000:]


def test_many_personas_left_without_a_user_are_counted_not_all_named():
    """A file of 1,000 personas run with -u 20: the warning named all 980 left out, one line
    of over 6,000 characters; ten are named, and the persona mix lists them all."""
    classes = [type(f"P{i:04d}", (), {"weight": 1}) for i in range(1000)]
    warning = idle_personas(classes, 20)
    named = warning.split("nothing: ")[1].split(" and 970 more")[0]
    assert (
        named == "P0020, P0021, P0022, P0023, P0024, P0025, P0026, P0027, P0028, P0029,"
    )
    assert warning.startswith("-u 20 leaves 980 of the 1000 personas without a user, ")
    assert (
        " and 970 more (the persona mix lists every persona and its users). " in warning
    )
    assert len(warning) < 400, warning


def test_tags_name_the_personas_they_leave_instead_of_locusts_warnings(
    tmp_path, service
):
    """``--tags`` leaving journeys out of personas: Locust logged "... had no tasks left after
    filtering, instantiating it will fail!" for each journey and persona left out (14 lines
    for ``--tags operator`` with the shipped personas), alarming and harmless; one line now
    says which personas run."""
    personas = write_personas(
        tmp_path, *MIX, "ops,operator,1,visa,USD,1,500,0,0,2,en_US,0.5,1"
    )
    run = run_locust(
        tmp_path, service.url, "--tags", "operator", personas=personas, run_time="2s"
    )
    assert "had no tasks left after filtering" not in run.output, run.output[-3000:]
    assert (
        "--tags operator: 1 of the 4 personas has journeys left and runs: ops"
        in run.output
    ), run.output[-3000:]
    run = run_locust(
        tmp_path, service.url, "--exclude-tags", "customer", "operator",
        personas=personas, run_time="2s",
    )  # fmt: skip
    assert run.returncode == 2, run.output[-3000:]
    assert "had no tasks left after filtering" not in run.output, run.output[-3000:]


def test_a_processes_run_ending_during_its_ramp_up_stops_its_workers(tmp_path, service):
    """``--processes 2 -t 3s`` with 10 users at 2/s: the run time ends mid-ramp. Locust's master
    stop left its spawning going, so the workers started the rest of the users after the stop
    and ran them until the master gave up waiting for them ("Timeout waiting for all workers to
    stop", 60 s later): a 3 s run of 63 s, its load after the run time counted, exit 0.
    (With a --stop-timeout the workers were still stopping when the spawn messages came.)"""
    personas = write_personas(
        tmp_path, "shopper,customer,1,visa,USD,5,50,0,1,,en_US,0.5,1"
    )
    started = time.monotonic()
    run = run_locust(
        tmp_path, service.url, *processes_args(), "--stop-timeout", "0", users=10,
        spawn_rate=2, run_time="3s", personas=personas, timeout=90,
    )  # fmt: skip
    took = time.monotonic() - started
    assert "Timeout waiting for all workers to stop" not in run.output, run.output[
        -3000:
    ]
    assert took < 30, f"{took:.0f} s for a 3 s run"
    after_stop = run.output.split("--run-time limit reached", 1)[1]
    assert "All users spawned" not in after_stop, after_stop[-3000:]


LEAKY_LOCUSTFILE = """
import logging, os, sys
from locust import events
from locust.runners import MasterRunner
from journeys.base import JourneyRun

@events.test_start.add_listener
def _log_secrets(environment, **_):
    if isinstance(environment.runner, MasterRunner):
        return  # its workers' users raise, as in any run
    token = os.environ["PAYMENT_INTERNAL_TOKEN"]
    logging.getLogger("locust.leaky").warning("card %s, token %s", "4242 4242 4242 4242", token)
    try:
        raise ValueError(f"body had 5555555555554444 and {token}")
    except ValueError as e:
        logging.getLogger("leaky").exception("a library failed")
        environment.events.user_error.fire(user_instance=None, exception=e, tb=sys.exc_info()[2])
    environment.events.request.fire(
        request_type="POST", name="leaky", response_time=1, response_length=0, context={},
        exception=Exception(f"answer echoed 4242-4242-4242-4242 with {token}"),
    )
    try:
        with JourneyRun("leaky", "nobody"):
            raise KeyError("5555 5555 5555 4444")
    except KeyError:
        pass
"""


@pytest.mark.parametrize("distributed", [False, True])
def test_no_log_line_or_exception_row_carries_a_card_number_or_the_token(
    tmp_path, service, distributed
):
    """Our own messages scrub at their source; whatever else logs (Locust, a library, a
    listener someone adds) goes through the scrubbing log records, message and traceback, and
    an exception a user raises reaches Locust's Exceptions table scrubbed (on the master too)."""
    leaky = tmp_path / "leaky.py"
    leaky.write_text(LEAKY_LOCUSTFILE)
    locustfiles = f"{ROOT / 'locustfile.py'},{leaky}"
    forked = (
        processes_args(1) if distributed else []
    )  # its worker forked with both files
    run = run_locust(
        tmp_path, service.url, "-f", locustfiles, *forked, users=1, run_time="2s"
    )
    logs = run.output
    assert "card [card redacted], token [token redacted]" in logs, logs[-3000:]
    assert "ValueError: body had [card redacted] and [token redacted]" in logs
    exceptions = run.csv_rows("exceptions")
    assert [row["Message"] for row in exceptions] == [
        "body had [card redacted] and [token redacted]"
    ], exceptions
    failures = {(r["Method"], r["Name"]): r["Error"] for r in run.csv_rows("failures")}
    assert failures[("POST", "leaky")] == (
        "Exception('answer echoed [card redacted] with [token redacted]')"
    ), failures
    assert failures[("journey", "leaky")] == "failed: KeyError: '[card redacted]'"
    html = run.html_path.read_text()
    for secret in (
        TOKEN,
        "4242 4242 4242 4242",
        "5555555555554444",
        "5555 5555 5555 4444",
    ):
        assert secret not in logs
        assert secret not in html
    # an exception in the users' code fails the verdict: its results cannot be trusted
    assert "the generator raised 1 unexpected exception" in run.output, run.output[
        -2000:
    ]
    assert run.returncode == 1


#: Each way a run stops before any traffic: (arguments, environment, what the message names);
#: "{port}" is a free port. One reason per place that stops a run: the others go through the
#: same call (no target, an unreadable --host: the target's; an unknown option, a bad -u value:
#: argparse's; -u 0, an unknown tag, the tracing settings: run_checks'; a taken web UI port:
#: the master port's), each run costs a second.
STOP_REASONS = {
    "no-token": ((), {"PAYMENT_INTERNAL_TOKEN": ""}, "PAYMENT_INTERNAL_TOKEN is not set"),
    "wrong-token": ((), {"PAYMENT_INTERNAL_TOKEN": "wrong-7f3a"}, "refused PAYMENT_INTERNAL_TOKEN"),
    "unreachable-target": ((), {"LOCUST_HOST": "http://127.0.0.1:{port}"}, "cannot be reached"),
    "bad-env-value": ((), {"LOCUST_PROFILE": TOKEN}, "see docs/profiles.md) (set by LOCUST_PROFILE="),
    "unknown-class": (("NoSuchPersona",), {}, "unknown persona class 'NoSuchPersona'"),
    "no-journey-left": (("--exclude-tags", "customer", "operator", "prober"), {}, "No persona has a journey left after --exclude-tags customer operator prober: ask for other tags (--tags, LOCUST_TAGS) or exclude fewer"),
    "personas-file": (("--config", "{card_personas_conf}"), {}, "  The path is set by personas = "),
    "slo-targets-file": ((), {"LOCUST_SLO_TARGETS": "missing.csv"}, "  The path is set by LOCUST_SLO_TARGETS='missing.csv': fix it there"),
    "baseline-file": (("--config", "{baseline_conf}"), {}, "keep the last good build's).\n  The path is set by baseline = missing/run in "),
    "profile": (("--profile", "spike", "--spike-at", "10s"), {}, "The spike window (10s + 1s)"),
    "master-ports-differ": (("--processes", "2", "--master-bind-port", "{port}", "--master-port", "{port2}"), {}, "the forked workers would connect to port"),
}  # fmt: skip

#: A card number typed where a personas file's brands go.
CARD = "4242424242424242"


@pytest.fixture(scope="module")
def stop_reason_runs(request, idle_service):
    """test_every_stop_before_traffic_ends_alike's runs, side by side (each only starts up)."""

    def start(folder, params):
        args, env, _ = STOP_REASONS[params["reason"]]
        card_personas = write_personas(folder, MIX[0].replace(",visa,", f",{CARD},"))
        conf = folder / "run.conf"  # where a path set long ago hides
        conf.write_text(f"personas = {card_personas}\n")
        baseline_conf = folder / "baseline.conf"
        baseline_conf.write_text("baseline = missing/run\n")
        values = {
            "port": free_port(),
            "port2": free_port(),
            "card_personas_conf": conf,
            "baseline_conf": baseline_conf,
        }
        args = [a.format(**values) for a in args]
        env = {k: v.format(**values) for k, v in env.items()}
        command = locust_command(folder, *args, users=2, run_time="2s")
        return command, locust_env(idle_service.url, env), None

    # four at a time: each stops at start
    return run_cases(
        request, "test_every_stop_before_traffic_ends_alike", start, parallel=4
    )


@pytest.mark.parametrize("reason", list(STOP_REASONS))
def test_every_stop_before_traffic_ends_alike(
    request, stop_reason_runs, idle_service, reason
):
    """A CI job greps its log for why a run sent nothing: each stop before any traffic ends
    with exit 2 and one closing sentence, on its last line. Some said "No load was sent."
    (the target's checks), some "no traffic was sent" in the middle (the personas and
    --slo-targets files), some nothing (the missing token, an option argparse refused, no
    journey left after --tags). A file's path set in a config file or a LOCUST_* variable is
    named as such. Never a traceback, the token or a card number."""
    run = case_result(stop_reason_runs, request)
    needle = STOP_REASONS[reason][2]
    assert run.returncode == 2, run.output[-2000:]
    assert needle in run.stderr, run.stderr[-2000:]
    assert run.stderr.rstrip().endswith(NOTHING_SENT), run.stderr[-2000:]
    assert (
        "No load was sent" not in run.output and "no traffic was sent" not in run.output
    )
    assert "Traceback" not in run.output, run.output[-3000:]
    assert TOKEN not in run.output and CARD not in run.output
    assert not re.search(r"\d{13,19}", run.output), run.output[-2000:]
    assert idle_service.query("SELECT COUNT(*) FROM payments") == [(0,)]


def test_a_file_this_user_may_not_read_is_worded_alike_everywhere(
    tmp_path, monkeypatch
):
    """The personas and --slo-targets files, --tls-cert/--tls-key and the --baseline files each
    worded "this user may not read" and its fix their own way: one wording, one fix. Root reads
    every file, so the refusals here are the calls' own; tests/docker/verify.sh sees real ones."""
    import argparse
    from pathlib import Path

    import pandas as pd

    from journeys import argtypes, persona_csv
    from journeys.results import baseline_csv

    fix = (
        "Make it readable: chmod a+r on the file and a+rX on its folders (in Docker, for the "
        "container's user), or run with --user"
    )
    uid = f"this user (uid {os.getuid()})"

    def refused(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    private = (
        tmp_path / "private_stats.csv"
    )  # a personas file, a key, a baseline's file
    private.write_text("name\n")
    with monkeypatch.context() as patch:
        patch.setattr(Path, "read_bytes", refused)
        with pytest.raises(persona_csv.PersonaFileError) as personas:
            persona_csv.read_text(private)
    assert f"{private}: {uid} may not read it. {fix}" in str(personas.value)
    with monkeypatch.context() as patch:
        patch.setattr(argtypes, "open", refused, raising=False)
        with pytest.raises(argparse.ArgumentTypeError) as tls_key:
            argtypes.readable_file(str(private))
    assert str(tls_key.value) == f"cannot read {private}: {uid} may not read it. {fix}"
    with monkeypatch.context() as patch:
        patch.setattr(pd, "read_csv", refused)
        with pytest.raises(baseline_csv.BaselineError) as baseline:
            baseline_csv.read(str(tmp_path / "private"))
    assert str(baseline.value) == f"cannot read {private}: {uid} may not read it. {fix}"
    # a folder on the way this user may not open (a 0700 folder mounted into a container)
    closed = tmp_path / "closed"
    stat, access = os.stat, os.access

    def closed_stat(path, *args, **kwargs):
        if str(path).startswith(f"{closed}/"):
            raise PermissionError(13, "Permission denied")
        return stat(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "stat", closed_stat)
        patch.setattr(os, "access", lambda p, m: p != str(closed) and access(p, m))
        with pytest.raises(baseline_csv.BaselineError) as baseline:
            baseline_csv.read(f"{closed}/last-good")
    assert str(baseline.value) == (
        f"cannot read {closed}/last-good_stats.csv: {uid} may not open the folder "
        f"{closed} on its way. {fix}"
    )
