"""Shared fixtures: the real reference service on a free 127.0.0.1 port, and real Locust runs.

``service`` starts ``python -m payment_service`` with a fresh SQLite file and waits for /health;
``start_service(**faults)`` starts one with fault flags. ``run_locust(...)`` runs real Locust
headless (standalone, or master + workers) against it and returns exit code, output and CSVs.
"""

from __future__ import annotations

# Some tests import Locust (which monkey-patches the standard library with gevent on import) and
# others import requests/ssl first; patching before anything else keeps the order irrelevant.
from gevent import monkey

monkey.patch_all()

import contextlib
import csv
import functools
import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "test-internal-token-7f3a9c"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    # a test service over HTTPS has a self-signed certificate
    unverified = ssl._create_unverified_context()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1, context=unverified) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout}s")
        time.sleep(0.1)


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM ``proc`` (if still running) and wait for it; SIGKILL it if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Service:
    """A running reference service; ``query`` reads its SQLite database."""

    url: str
    port: int
    db_path: Path
    proc: subprocess.Popen
    log_path: Path
    token: str = TOKEN

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        con = sqlite3.connect(self.db_path, timeout=10)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def has_payments(self) -> bool:
        """The service stored a payment: a run's users are at it."""
        return self.query("SELECT count(*) FROM payments")[0][0] > 0

    def wait_for_payments(
        self, run: subprocess.Popen | None = None, timeout: float = 20
    ) -> None:
        """Wait until the service stores a payment; ``run`` (its Locust) must not end first."""
        deadline = time.monotonic() + timeout
        while not self.has_payments():
            assert time.monotonic() < deadline, "no traffic"
            assert run is None or run.poll() is None, "the run ended before any payment"
            time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.proc)


def _clean_env() -> dict:
    """This process's environment without DD_*, LOCUST_* and PAYMENT_* variables, plus the
    test token and tracing off: a developer's own settings never leak into a test's run."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DD_", "PAYMENT_", "LOCUST_"))
    }
    env["PAYMENT_INTERNAL_TOKEN"] = TOKEN
    env["DD_TRACE_ENABLED"] = "false"
    return env


def _service_env(extra: dict | None = None) -> dict:
    return {**_clean_env(), **(extra or {})}


def launch_service(
    tmp_path: Path,
    *args: str,
    port: int | None = None,
    db_path: Path | None = None,
    env: dict | None = None,
    wait: bool = True,
) -> Service:
    port = port or free_port()
    db_path = db_path or tmp_path / f"payments-{port}.sqlite"
    log_path = tmp_path / f"service-{port}.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "payment_service",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            str(db_path),
            *args,
        ],
        cwd=ROOT,
        env=_service_env(env),
        stdout=open(log_path, "wb"),  # noqa: SIM115  (the service writes it for its whole life)
        stderr=subprocess.STDOUT,
    )
    svc = Service(f"http://127.0.0.1:{port}", port, db_path, proc, log_path)
    if wait:
        try:
            wait_http(svc.url + "/health")
        except TimeoutError:
            svc.stop()
            raise RuntimeError("payment service did not start:\n" + svc.log())
    return svc


def stop_services(services: list[Service]) -> None:
    """Stop ``services``, all signalled at once (each takes a moment to end)."""
    for svc in services:
        if svc.proc.poll() is None:
            svc.proc.send_signal(signal.SIGTERM)
    for svc in services:
        svc.stop()


@dataclass(frozen=True)
class RunPlan:
    """One Locust run against a reference service of its own: the service's flags, then what
    ``locust_command`` takes, and extra environment for Locust."""

    flags: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    personas: Path | None = None
    users: int = 4
    run_time: str = "4s"
    env: dict | None = None


class OwnServices:
    """A module's reference services, one per run, so each run's database holds only its own
    payments: ``starter`` turns a run's plan into a ``start`` for ``run_tests`` /
    ``run_cases`` / ``run_processes`` (the service is the run's context), ``stop`` ends them."""

    def __init__(self) -> None:
        self.services: list[Service] = []

    def starter(self, plan: Callable[..., RunPlan]) -> Callable:
        """``plan(folder)`` (``plan(folder, params=...)`` for a case) -> its ``RunPlan``."""

        def start(folder: Path, **params):
            run = plan(folder, **params)
            service = launch_service(folder, *run.flags)
            self.services.append(service)
            command = locust_command(
                folder, *run.args, personas=run.personas, users=run.users,
                run_time=run.run_time,
            )  # fmt: skip
            return command, locust_env(service.url, run.env), service

        return start

    def stop(self) -> None:
        stop_services(self.services)


@pytest.fixture
def start_service(tmp_path):
    """Factory: ``start_service("--error-rate", "0.2")`` -> a running Service, stopped after the test."""
    started: list[Service] = []

    def _start(*args: str, **kw) -> Service:
        svc = launch_service(tmp_path, *args, **kw)
        started.append(svc)
        return svc

    yield _start
    for svc in started:
        svc.stop()


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory) -> Service:
    """One fault-free reference service for a module's tests (a start and stop costs ~0.6 s)."""
    svc = launch_service(tmp_path_factory.mktemp("service"))
    yield svc
    svc.stop()


def empty_tables(svc: Service) -> Service:
    """``svc`` with no payments and no idempotency keys, as a fresh service has (between tests
    and runs it keeps nothing else: only the keys of requests in progress, and none are)."""
    assert svc.proc.poll() is None, svc.log()[-3000:]
    con = sqlite3.connect(svc.db_path, timeout=10)
    with con:
        con.execute("DELETE FROM payments")
        con.execute("DELETE FROM idempotency_keys")
    con.close()
    return svc


@pytest.fixture
def service(shared_service) -> Service:
    """A reference service with no faults and empty tables: each test sees only its own payments.

    Tests that need faults, latency or a log of their own start their own (``start_service``)."""
    return empty_tables(shared_service)


@pytest.fixture(scope="module")
def idle_service(tmp_path_factory) -> Service:
    """One service for a module's runs that must stop before any traffic: it never sees a payment
    unless one of them sent it (so its empty tables prove all of them stopped in time)."""
    svc = launch_service(tmp_path_factory.mktemp("idle-service"))
    yield svc
    svc.stop()


@dataclass
class LocustRun:
    """The outcome of a real Locust run: exit code, combined output, and the CSV/HTML it wrote."""

    returncode: int
    output: str
    csv_prefix: Path
    html_path: Path
    worker_outputs: list[str] = field(default_factory=list)
    #: each worker's exit code; -9 when it had not exited 15 s after the master and was killed
    worker_returncodes: list[int] = field(default_factory=list)

    def csv_rows(self, suffix: str) -> list[dict]:
        path = Path(f"{self.csv_prefix}_{suffix}.csv")
        with open(path, newline="") as f:
            return list(csv.DictReader(f))

    def stats(self) -> dict[tuple[str, str], dict]:
        """Locust's ``_stats.csv`` rows keyed by (Type, Name)."""
        return {(r["Type"], r["Name"]): r for r in self.csv_rows("stats")}


def locust_env(host: str, extra: dict | None = None) -> dict:
    return {
        **_clean_env(),
        "PYTHONUNBUFFERED": "1",
        "LOCUST_HOST": host,
        **(extra or {}),
    }


def locust_command(
    tmp_path: Path,
    *args: str,
    users: int = 4,
    spawn_rate: float = 50,
    run_time: str | None = "4s",
    personas: Path | str | None = None,
    headless: bool = True,
) -> list[str]:
    """``python -m locust`` with the project's locustfile, writing ``tmp_path/run_*.csv`` and
    ``tmp_path/report.html``, plus ``args`` (no ``--run-time`` when ``run_time`` is None)."""
    base = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "locustfile.py"),
        "--users",
        str(users),
        "--spawn-rate",
        str(spawn_rate),
        *(("--run-time", run_time) if run_time is not None else ()),
        "--csv",
        str(tmp_path / "run"),
        "--html",
        str(tmp_path / "report.html"),
        "--stop-timeout",
        "3",
        "--loglevel",
        "INFO",
    ]
    if headless:
        base.append("--headless")
    if personas is not None:
        base += ["--personas", str(personas)]
    return base + list(args)


def master_args(port: int, workers: int) -> list[str]:
    """A master on 127.0.0.1:``port`` that starts once ``workers`` workers are there."""
    return ["--master", "--expect-workers", str(workers), "--master-bind-port", str(port),
            "--master-bind-host", "127.0.0.1"]  # fmt: skip


def processes_args(workers: int = 2) -> list[str]:
    """``--processes`` with its master on a free port: Locust's default, 5557, is one port for
    every forked run on the machine, so two at once (or another tool's) collide."""
    port = str(free_port())
    return [
        "--processes",
        str(workers),
        "--master-bind-port",
        port,
        "--master-port",
        port,
    ]


def worker_command(master_port: int, personas: Path | str | None = None) -> list[str]:
    """``python -m locust --worker`` for a master on 127.0.0.1:``master_port``."""
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--worker",
               "--master-host", "127.0.0.1", "--master-port", str(master_port)]  # fmt: skip
    return command + (["--personas", str(personas)] if personas is not None else [])


def locust_processes(
    command: list[str],
    host: str,
    workers: int = 0,
    personas: Path | str | None = None,
    env: dict | None = None,
) -> list[subprocess.Popen]:
    """``command`` standalone, or (``workers > 0``) as a master plus that many workers on a
    free port: [master or standalone, *workers]."""
    if not workers:
        return [locust_process(command, host, env)]
    port = free_port()
    master = locust_process(command + master_args(port, workers), host, env)
    return [master] + [
        locust_process(worker_command(port, personas), host, env)
        for _ in range(workers)
    ]


def locust_process(
    command: list[str], host: str, env: dict | None = None, group: bool = False
) -> subprocess.Popen:
    """Start ``command`` (a Locust one) against ``host``, its output (text) on ``stdout``;
    with ``group``, in a process group of its own (``os.killpg`` signals it and the workers
    ``--processes`` forks at once, as a terminal's Ctrl-C does)."""
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=locust_env(host, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=group,
    )


def end_process(proc: subprocess.Popen, timeout: float = 30) -> str:
    """SIGTERM ``proc`` (if still running) and return its output; SIGKILL it if it hangs."""
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0]


def start_web_ui(
    tmp_path: Path, host: str, *args: str, personas: Path | str | None = None
) -> tuple[subprocess.Popen, str]:
    """Locust with its web UI on a free 127.0.0.1 port, no test started: (process, UI URL),
    once the UI answers. End the process with ``end_process``."""
    port = free_port()
    proc = locust_process(
        locust_command(
            tmp_path, "--web-host", "127.0.0.1", "--web-port", str(port), *args,
            personas=personas, headless=False,
        ),
        host,
    )  # fmt: skip
    ui = f"http://127.0.0.1:{port}"
    try:
        wait_http(ui + "/", timeout=30)
    except BaseException:
        end_process(proc)
        raise
    return proc, ui


def get_text(url: str) -> str:
    """GET ``url`` (a Locust web UI page or download) as text."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode()


def post_form(url: str, **form) -> dict | None:
    """POST ``form`` to ``url`` (a Locust web UI endpoint); its JSON answer, if any."""
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(form, doseq=True).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        body = r.read()
    return json.loads(body) if body.startswith(b"{") else None


def run_locust(
    tmp_path: Path,
    host: str,
    *args: str,
    users: int = 4,
    spawn_rate: float = 50,
    run_time: str | None = "4s",
    env: dict | None = None,
    workers: int = 0,
    timeout: float = 120,
    personas: Path | str | None = None,
    headless: bool = True,
    kill_a_worker_after_s: float | None = None,
    kill_a_worker_when: Callable[[], bool] | None = None,
    worker_signal: int = signal.SIGKILL,
    continue_the_worker_after_s: float | None = None,
) -> LocustRun:
    """Run real Locust against ``host``; ``workers > 0`` runs a master and that many workers
    (``kill_a_worker_after_s``: send the first worker ``worker_signal`` that long after
    starting them, or that long after ``kill_a_worker_when()`` first holds: it is polled from
    their start; ``continue_the_worker_after_s``: then SIGCONT it that much later, for a
    ``worker_signal`` of SIGSTOP)."""
    prefix = tmp_path / "run"
    html = tmp_path / "report.html"
    base = locust_command(
        tmp_path,
        users=users,
        spawn_rate=spawn_rate,
        run_time=run_time,
        personas=personas,
        headless=headless,
    )
    if not workers:
        proc = subprocess.run(
            base + list(args),
            cwd=ROOT,
            env=locust_env(host, env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return LocustRun(proc.returncode, proc.stdout + proc.stderr, prefix, html)
    master, *worker_procs = locust_processes(
        base + list(args), host, workers, personas, env
    )
    try:
        if kill_a_worker_when is not None:
            deadline = time.monotonic() + timeout
            while not kill_a_worker_when():
                assert master.poll() is None, (
                    "the master ended before it was time to kill"
                )
                assert time.monotonic() < deadline, "kill_a_worker_when() never held"
                time.sleep(0.1)
        if kill_a_worker_after_s is not None or kill_a_worker_when is not None:
            time.sleep(kill_a_worker_after_s or 0)
            worker_procs[0].send_signal(worker_signal)
            if continue_the_worker_after_s is not None:
                time.sleep(continue_the_worker_after_s)
                worker_procs[0].send_signal(signal.SIGCONT)
        out, _ = master.communicate(timeout=timeout)
    finally:
        if master.poll() is None:  # the test failed while it ran: end it
            end_process(master)
        worker_outs = []
        for w in worker_procs:
            try:
                worker_outs.append(w.communicate(timeout=15)[0])
            except subprocess.TimeoutExpired:
                w.kill()
                worker_outs.append(w.communicate()[0])
    return LocustRun(
        master.returncode,
        out,
        prefix,
        html,
        worker_outs,
        [w.returncode for w in worker_procs],
    )


PERSONA_HEADER = (
    "persona,role,weight,card_types,currencies,amount_min,amount_max,decline_rate,"
    "max_retries,batch_size,locale,wait_min,wait_max"
)


def write_personas(
    tmp_path: Path, *rows: str, header: str = PERSONA_HEADER, name: str = "personas.csv"
) -> Path:
    """Write a personas file from CSV row strings under the standard header."""
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


#: how many of a parametrized test's runs ``run_cases`` runs at once: the runs that stop at
#: start-up are bound by the CPU (Locust's import), and two cores run two at once
PARALLEL_CASES = 2


@dataclass
class CaseRun:
    """The outcome of one case's process, as ``run_cases`` ran it."""

    folder: Path  # the case's own empty folder
    returncode: int  # -9 when it had not ended by the timeout and was killed
    stdout: str
    stderr: str
    seconds: float  # from its start to its exit
    context: object = (
        None  # what ``start`` returned beside the command (a service, say)
    )

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def locust_run(self) -> LocustRun:
        """As ``run_locust`` returns it, for a Locust command from ``locust_command(folder)``."""
        return LocustRun(
            self.returncode,
            self.output,
            self.folder / "run",
            self.folder / "report.html",
        )


def run_cases(
    request: pytest.FixtureRequest,
    test_name: str,
    start: Callable[[Path, dict], tuple[list[str], dict, object]],
    parallel: int = PARALLEL_CASES,
    timeout: float = 60,
) -> dict[str, CaseRun | BaseException]:
    """Run the process of each case of the parametrized ``test_name`` (in ``request``'s module)
    this session selected, ahead of the tests and ``parallel`` at a time: ``{case id: CaseRun}``.

    ``start(folder, params)`` -> (command, environment, context) for a case: it runs in ROOT.
    Each test then checks its own case's real run (``case_result``); a case whose ``start``
    raised raises that in its own test only."""
    cases = [
        (item.callspec.id, functools.partial(start, params=item.callspec.params))
        for item in request.session.items
        if getattr(item, "originalname", None) == test_name
        and item.module is request.module
    ]
    return run_processes(request, cases, parallel, timeout)


def run_tests(
    request: pytest.FixtureRequest,
    starts: dict[str, Callable[[Path], tuple[list[str], dict, object]]],
    parallel: int = PARALLEL_CASES,
    timeout: float = 60,
) -> dict[str, CaseRun | BaseException]:
    """``run_cases`` for tests that are not parametrized: ``starts`` maps a test's name (in
    ``request``'s module) to ``start(folder)``; the tests this session selected run theirs
    ahead, ``parallel`` at a time: ``{test name: CaseRun}`` (``case_result`` finds its own)."""
    selected = {
        item.name for item in request.session.items if item.module is request.module
    }
    cases = [(name, start) for name, start in starts.items() if name in selected]
    return run_processes(request, cases, parallel, timeout)


def run_processes(
    request: pytest.FixtureRequest,
    cases: list[tuple[str, Callable[[Path], tuple[list[str], dict, object]]]],
    parallel: int = PARALLEL_CASES,
    timeout: float = 60,
) -> dict[str, CaseRun | BaseException]:
    """Start each ``(key, start)``'s process, ``parallel`` at a time, each in a folder of its
    own (``start(folder)`` -> command, environment, context), and wait for them all:
    ``{key: CaseRun}``, or what its ``start`` raised. The processes are started and waited for
    from this greenlet alone (a fork while another greenlet works can hang the child before
    its exec)."""
    factory = request.getfixturevalue("tmp_path_factory")
    results: dict[str, CaseRun | BaseException] = {}
    running: dict[str, tuple] = {}
    cases = list(cases)

    def finish(key: str, killed: bool = False) -> None:
        proc, folder, context, began, out, err = running.pop(key)
        if killed:
            proc.kill()
        proc.wait()
        seconds = time.monotonic() - began
        out.close(), err.close()
        results[key] = CaseRun(
            folder, proc.returncode,
            (folder / "case.stdout").read_text(errors="replace"),
            (folder / "case.stderr").read_text(errors="replace"),
            seconds, context,
        )  # fmt: skip

    while cases or running:
        while cases and len(running) < parallel:
            key, start = cases.pop(0)
            folder = factory.mktemp("case", numbered=True)
            try:
                command, env, context = start(folder)
            except Exception as e:  # noqa: BLE001  (raised again in the case's own test)
                results[key] = e
                continue
            out = open(folder / "case.stdout", "wb")  # noqa: SIM115  (closed in finish)
            err = open(folder / "case.stderr", "wb")  # noqa: SIM115
            proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)
            running[key] = (proc, folder, context, time.monotonic(), out, err)
        time.sleep(0.02)
        for key, (proc, _, _, began, _, _) in list(running.items()):
            if proc.poll() is not None:
                finish(key)
            elif time.monotonic() - began > timeout:
                finish(key, killed=True)
    return results


def case_result(results: dict[str, CaseRun | BaseException], request) -> CaseRun:
    """The ``CaseRun`` ``run_cases`` (or ``run_tests``) got for the running test's case (what
    it raised, raised)."""
    callspec = getattr(request.node, "callspec", None)
    result = results[callspec.id if callspec else request.node.name]
    if isinstance(result, BaseException):
        raise result
    return result


def paid_answer(sent: dict, **fields) -> dict:
    """The contract's 201 body for the ``/pay`` body ``sent`` (id ``pay_1``), with ``fields``
    added or replaced (``created=None`` leaves it out): what a fake service in a test answers."""
    from payment_contract import brand_of

    number = sent["card"]["number"]
    paid = {
        "id": "pay_1", "status": "succeeded", "amount": sent["amount"],
        "currency": sent["currency"], "created": int(time.time()),
        "card": {"brand": brand_of(number), "last4": number[-4:]},
    }  # fmt: skip
    paid.update(fields)
    return {k: v for k, v in paid.items() if v is not None}


@contextlib.contextmanager
def customer_api(app, policy=None, role="customer"):
    """(a ``PaymentApi`` of a customer, its ``PaymentData``) against the WSGI ``app`` served on
    127.0.0.1 for the ``with`` block; no token. ``role``: the first persona of another role."""
    import random

    from gevent.pywsgi import WSGIServer
    from locust import events
    from locust.contrib.fasthttp import FastHttpSession

    from journeys.client import PaymentApi
    from journeys.data import PaymentData, build_pools
    from journeys.personas import load_personas

    persona = next(p for p in load_personas(ROOT / "personas.csv") if p.role == role)
    build_pools(persona, 1)
    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    try:
        session = FastHttpSession(
            f"http://127.0.0.1:{server.server_port}", events.request, user=None
        )
        api = PaymentApi(session, random.Random(1), None, policy)
        yield api, PaymentData(persona, 1, 0)
    finally:
        server.stop()
