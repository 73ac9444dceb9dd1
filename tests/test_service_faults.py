"""Each fault knob of the reference service, over real HTTP, checked against its database."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from tests.test_service import body, pay, report


def test_latency_and_jitter(start_service):
    service = start_service("--latency-ms", "300", "--jitter-ms", "100")
    started = time.monotonic()
    assert pay(service, body()).status_code == 201
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 2.0


def test_error_before_stores_nothing(start_service):
    service = start_service("--error-rate", "1", "--error-phase", "before")
    r = pay(service, body())
    assert r.status_code == 503 and r.json()["error"]["type"] == "api_error"
    assert service.query("SELECT COUNT(*) FROM payments") == [(0,)]


def test_error_after_stores_the_payment_and_a_resend_replays_it(start_service):
    service = start_service("--error-rate", "1", "--error-phase", "after")
    key = uuid.uuid4().hex
    assert pay(service, body(), key).status_code == 500
    assert service.query("SELECT COUNT(*) FROM payments") == [(1,)]
    replay = pay(
        service, body(), key
    )  # replays are answered from the books, before any fault
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert service.query("SELECT id FROM payments") == [(replay.json()["id"],)]


def test_error_rate_share(start_service):
    service = start_service("--error-rate", "0.5", "--fault-seed", "7")
    codes = [pay(service, body()).status_code for _ in range(60)]
    errors = sum(c >= 500 for c in codes)
    assert 15 <= errors <= 45, codes


def test_stall_commits_then_hangs_and_a_resend_with_the_key_replays(start_service):
    service = start_service("--stall-rate", "1", "--stall-s", "2")
    key = uuid.uuid4().hex
    with pytest.raises(requests.exceptions.ReadTimeout):
        pay(service, body(), key, timeout=0.5)
    time.sleep(0.1)
    assert service.query("SELECT COUNT(*) FROM payments") == [(1,)]
    started = time.monotonic()
    replay = pay(service, body(), key)
    assert replay.status_code == 201 and time.monotonic() - started < 1.0
    assert service.query("SELECT COUNT(*) FROM payments") == [(1,)]


def test_garbage_bodies(start_service):
    service = start_service("--garbage-rate", "1", "--fault-seed", "3")
    kinds = set()
    for _ in range(12):
        r = pay(service, body())
        assert r.status_code == 201
        try:
            parsed = json.loads(r.content)
        except ValueError:
            kinds.add("unparseable")
            continue
        assert "id" not in parsed
        kinds.add("wrong_shape")
    assert kinds == {"unparseable", "wrong_shape"}
    assert service.query("SELECT COUNT(*) FROM payments") == [(12,)]


def test_rate_limit_429_with_retry_after(start_service):
    service = start_service("--rate-limit-rps", "3")
    answers = [pay(service, body()) for _ in range(8)]
    limited = [r for r in answers if r.status_code == 429]
    assert limited and any(r.status_code == 201 for r in answers)
    assert all(
        r.json()["error"]["code"] == "rate_limited"
        and int(r.headers["Retry-After"]) >= 1
        for r in limited
    )
    time.sleep(1.1)
    assert pay(service, body()).status_code == 201
    assert service.query("SELECT COUNT(*) FROM payments") == [
        (sum(r.status_code == 201 for r in answers) + 1,)
    ]


def test_rate_limit_below_one_per_second_lets_one_through_every_so_often(start_service):
    service = start_service("--rate-limit-rps", "0.5")
    first, second = pay(service, body()), pay(service, body())
    assert (first.status_code, second.status_code) == (201, 429)
    assert int(second.headers["Retry-After"]) == 2  # 1 / 0.5 s, rounded up
    time.sleep(2.1)
    assert pay(service, body()).status_code == 201


def test_report_latency(start_service):
    service = start_service("--report-latency-ms", "600")
    started = time.monotonic()
    assert report(service).status_code == 200
    assert time.monotonic() - started >= 0.6


def test_report_tamper_leaves_one_payment_out(start_service):
    service = start_service("--report-tamper")
    batch = "batch_" + uuid.uuid4().hex[:6]
    for amount in (100, 200, 300):
        assert (
            pay(service, body(amount=amount, metadata={"batch_id": batch})).status_code
            == 201
        )
    got = report(service, {"batch_id": batch}).json()
    assert got["totals"]["USD"] == {"count": 2, "amount": 300}
    assert got["payments"]["succeeded"] == 2
    assert service.query(
        "SELECT COUNT(*), SUM(amount) FROM payments WHERE batch_id = ?", (batch,)
    ) == [(3, 600)]


def test_replay_charges_charges_a_replay_again(start_service):
    service = start_service("--replay-charges")
    key = uuid.uuid4().hex
    first, again = pay(service, body(), key), pay(service, body(), key)
    assert first.status_code == again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert first.json()["id"] != again.json()["id"]
    assert service.query(
        "SELECT count(*), count(DISTINCT id) FROM payments WHERE idempotency_key = ?",
        (key,),
    ) == [(2, 2)]
    # another body with the key is still refused
    reused = pay(service, body(amount=999), key)
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    health = requests.get(service.url + "/health", timeout=5).json()
    assert health["faults"] == ["replay_charges=True"]


def test_fault_env_twins(start_service):
    service = start_service(
        env={"PAYMENT_ERROR_RATE": "1", "PAYMENT_ERROR_PHASE": "before"}
    )
    assert pay(service, body()).status_code == 503
    assert (
        "error_rate=1.0"
        in requests.get(service.url + "/health", timeout=5).json()["faults"][0]
    )


def test_clock_offset_stamps_payments_and_reports_by_the_services_clock(start_service):
    """A service on another host may run its clock off: payments, ranges and ``generated_at``
    all follow it, and ``PUT /internal/faults`` moves it while the service runs."""
    import datetime as dt

    from tests.conftest import TOKEN

    service = start_service("--clock-offset-s", "-120")
    now = dt.datetime.now(dt.UTC)
    paid = pay(service, body()).json()
    assert -125 < paid["created"] - now.timestamp() < -115, paid[
        "created"
    ]  # Unix seconds
    since_now = {"from": now.isoformat()}
    assert report(service, since_now).json()["totals"] == {}  # stamped 2 minutes ago
    back = {"from": (now - dt.timedelta(seconds=125)).isoformat()}
    got = report(service, back).json()
    assert got["totals"]["USD"]["count"] == 1
    generated = dt.datetime.fromisoformat(got["generated_at"])
    assert -125 < (generated - dt.datetime.now(dt.UTC)).total_seconds() < -115
    headers = {"Authorization": f"Bearer {TOKEN}"}
    put = requests.put(
        service.url + "/internal/faults",
        json={"clock_offset_s": 0},
        headers=headers,
        timeout=5,
    )
    assert put.status_code == 200 and put.json()["clock_offset_s"] == 0
    assert report(service, since_now).json()["totals"] == {}
    assert pay(service, body()).status_code == 201
    assert report(service, since_now).json()["totals"]["USD"]["count"] == 1
    bad = requests.put(
        service.url + "/internal/faults", json={"clock_offset_s": "soon"}, headers=headers,
        timeout=5,
    )  # fmt: skip
    assert bad.status_code == 400, bad.text


def test_card_expiry_follows_the_services_clock(start_service):
    """Expiry is judged by the same clock as ``created``: it read the real clock, so a service
    45 days ahead still paid with a card that has expired by its own clock, and one 800 days
    behind refused a card it should still take."""
    import datetime as dt

    from tests.conftest import TOKEN

    now = dt.datetime.now(dt.UTC)
    ahead = now + dt.timedelta(days=45)
    service = start_service("--clock-offset-s", str(45 * 86400))
    refused = pay(service, body(card={"exp_month": now.month, "exp_year": now.year}))
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "expired_card"
    its_month = {"exp_month": ahead.month, "exp_year": ahead.year}
    assert pay(service, body(card=its_month)).status_code == 201
    put = requests.put(
        service.url + "/internal/faults", json={"clock_offset_s": -800 * 86400},
        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5,
    )  # fmt: skip
    assert put.status_code == 200, put.text
    last_year = {"exp_month": now.month, "exp_year": now.year - 1}
    paid = pay(service, body(card=last_year))
    assert paid.status_code == 201, paid.text


def test_fault_values_that_would_break_every_request_are_refused(start_service):
    """A knob the service cannot honour (a clock past the year 9999, a Retry-After of 1e320 s, a
    number too big for a float, an hour-long-plus latency) is a 400 naming it, not a 500 on
    every later request."""
    from tests.conftest import TOKEN

    service = start_service()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for knobs in (
        '{"clock_offset_s": 1e12}',
        '{"rate_limit_rps": 1e-320}',
        '{"latency_ms": 1' + "0" * 400 + "}",
        '{"latency_ms": 1e300}',
        '{"stall_s": 1e300}',
        '{"report_latency_ms": 3600001}',
        '{"error_phase": "during"}',
        '{"report_tamper": 1}',
        '{"error_rat": 0.1}',
    ):
        r = requests.put(
            service.url + "/internal/faults", data=knobs, headers=headers, timeout=5
        )
        assert r.status_code == 400, (knobs, r.text)
        error = r.json()["error"]
        # param names the knob, as a field error's does (it was null)
        knob = next(iter(json.loads(knobs)))
        assert (error["code"], error["param"]) == ("invalid_faults", knob), error
        assert knob in error["message"]
    assert requests.get(service.url + "/health", timeout=5).json()["faults"] == []
    assert pay(service, body()).status_code == 201
    assert "Traceback" not in service.log()


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--clock-offset-s", "1e12"),
        ("--rate-limit-rps", "1e-320"),
        ("--latency-ms", "1e300"),
        ("--stall-s", "1e300"),
    ],
)
def test_fault_flags_that_would_break_every_request_exit_2(tmp_path, flag, value):
    proc = run_service(tmp_path, flag, value)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert flag in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def run_service(tmp_path, *args, env=None, timeout=10):
    """``python -m payment_service ...`` to its end (a start-up that must fail)."""
    import subprocess
    import sys

    from tests.conftest import ROOT, TOKEN, free_port

    command = [sys.executable, "-m", "payment_service"]
    if "PAYMENT_SERVICE_PORT" not in (env or {}):
        command += ["--port", str(free_port())]
    if "--db" not in args:
        command += ["--db", str(tmp_path / "p.sqlite")]
    return subprocess.run(
        [*command, *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DD_TRACE_ENABLED": "false",
             "PAYMENT_INTERNAL_TOKEN": TOKEN, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "where", ["missing-dir", "a-directory", "not-sqlite", "another-apps-db"]
)
def test_a_database_that_cannot_be_opened_exits_2_with_one_line(tmp_path, where):
    import sqlite3

    db = {
        "missing-dir": "/proc/no-such-dir/payments.sqlite",
        "a-directory": str(tmp_path),
        "not-sqlite": str(tmp_path / "notes.txt"),
        "another-apps-db": str(tmp_path / "other.sqlite"),
    }[where]
    (tmp_path / "notes.txt").write_text("not a database, just text\n" * 40)
    # another application's payments table: every payment would be a 500
    other = sqlite3.connect(tmp_path / "other.sqlite")
    other.execute("CREATE TABLE payments (id INTEGER PRIMARY KEY, total REAL)")
    other.execute("CREATE TABLE idempotency_keys (key TEXT, created_at TEXT)")
    other.close()
    proc = run_service(tmp_path, "--db", db)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--db" in proc.stderr and db in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.parametrize(
    "env,flag",
    [
        ({"PAYMENT_SERVICE_PORT": "abc"}, "--port"),
        ({"PAYMENT_LATENCY_MS": "-3"}, "--latency-ms"),
        ({"PAYMENT_ERROR_PHASE": "during"}, "--error-phase"),
        ({"PAYMENT_DEV": "maybe"}, "--dev"),
    ],
)
def test_a_bad_env_twin_is_named_with_its_flag(tmp_path, env, flag):
    """Nothing on the command line was wrong: the line names the variable that set the value."""
    proc = run_service(tmp_path, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (name, value), line = next(iter(env.items())), proc.stderr.strip()
    assert flag in line and f"{name}='{value}'" in line, line
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in line


def test_the_token_in_the_wrong_env_twin_is_not_quoted(tmp_path):
    """The bad value's line quoted it twice (argparse's and "set by PAYMENT_X='...'"): the
    token mapped to the wrong variable went whole into a CI job's log."""
    token = "svc-token-5e8a1f0c"
    env = {"PAYMENT_INTERNAL_TOKEN": token, "PAYMENT_ERROR_RATE": token}
    proc = run_service(tmp_path, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = proc.stderr.strip()
    assert "PAYMENT_ERROR_RATE='[token redacted]'" in line and token not in line, line


def test_a_port_in_use_is_a_clear_error(start_service, tmp_path):
    """uvicorn's own line ("ERROR: [Errno 98] error while attempting to bind ...", exit 3) named
    no flag; a host not on this machine said "[Errno 99] ..." only."""
    taken = start_service()
    for args, flag, needle in [
        (("--port", str(taken.port)), "--port", "address already in use"),
        (("--host", "192.0.2.1"), "--host", "192.0.2.1"),  # TEST-NET-1: no host has it
    ]:
        proc = run_service(tmp_path, *args)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        line = proc.stderr.strip()
        assert len(line.splitlines()) == 1 and "Traceback" not in line, line
        assert flag in line and needle in line.lower(), line
    proc = run_service(
        tmp_path, env={"PAYMENT_SERVICE_PORT": str(taken.port)}
    )  # the variable that set it is named
    assert f"PAYMENT_SERVICE_PORT='{taken.port}'" in proc.stderr, proc.stderr


@pytest.mark.parametrize("token", ["s\u00e9cret", "two\nlines"])
def test_a_token_no_header_can_carry_exactly_exits_2(tmp_path, token):
    """HTTP headers are bytes: a non-ASCII token matched when a client sent it as Latin-1
    (requests) and failed with 403 as UTF-8 (curl); a control character cannot be sent at all."""
    proc = run_service(tmp_path, env={"PAYMENT_INTERNAL_TOKEN": token})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "PAYMENT_INTERNAL_TOKEN" in proc.stderr and token not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_token_too_short_to_redact_exits_2(tmp_path):
    """Answers and logs redact the token only from 6 characters on (a shorter one would redact
    ordinary words): a 5-character token started, and a 404 quoted it from the URL."""
    proc = run_service(tmp_path, env={"PAYMENT_INTERNAL_TOKEN": "ab3d5"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = proc.stderr.strip()
    assert "PAYMENT_INTERNAL_TOKEN" in line and "6" in line and "ab3d5" not in line
    assert len(line.splitlines()) == 1


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT"])
def test_a_stop_cuts_a_stall_short_with_a_503_and_exits_at_once(start_service, stop):
    """A stalled /pay (stored, answer held back) is answered 503 'retry with the same key' when
    the service is stopped, instead of holding the shutdown 5 s and ending in a traceback. Ctrl-C
    (SIGINT) ended in a KeyboardInterrupt traceback: uvicorn re-raises the signal after its
    shutdown, and only ``uvicorn.run`` catches it, not the ``Server.run`` the service calls."""
    import signal
    import threading

    service = start_service("--stall-rate", "1", "--stall-s", "30")
    key, answers = uuid.uuid4().hex, []
    caller = threading.Thread(target=lambda: answers.append(pay(service, body(), key)))
    caller.start()
    deadline = time.monotonic() + 5
    while service.query("SELECT COUNT(*) FROM payments") != [(1,)]:
        assert time.monotonic() < deadline, service.log()
        time.sleep(0.05)
    stopped = time.monotonic()
    service.proc.send_signal(getattr(signal, stop))
    code = service.proc.wait(10)
    caller.join(5)
    assert time.monotonic() - stopped < 2.5, service.log()
    assert answers and answers[0].status_code == 503, service.log()
    assert answers[0].json()["error"]["code"] == "service_unavailable"
    assert "Traceback" not in service.log()
    assert service.query("SELECT idempotency_key FROM payments") == [(key,)]
    assert code == (130 if stop == "SIGINT" else -signal.SIGTERM), service.log()
