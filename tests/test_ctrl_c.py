"""Ctrl-C reaches Locust's main greenlet between requests, never a journey in the middle of one.

The end-to-end Ctrl-C run is in test_slo.py; there the signal lands in user code only now and
then. Here a real SIGINT arrives while a greenlet runs a journey's Python code, every time; and
a headless master still waiting for its workers is stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from journeys.results.stats import OUTCOMES
from tests.conftest import (
    ROOT,
    LocustRun,
    end_process,
    free_port,
    locust_command,
    locust_process,
    master_args,
    processes_args,
    run_locust,
    worker_command,
)

JOURNEY_INTERRUPTED = """
import os, signal, sys, time
import locust  # gevent's monkey-patching, as under the locust command
import gevent
from locust import events
if sys.argv[1] == "with-plugin":
    import journeys.ctrl_c
events.init.fire(environment=None, runner=None, web_ui=None)

finished = []
def journey():
    os.kill(os.getpid(), signal.SIGINT)
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:  # a journey's own work: no yield to gevent's loop
        pass
    finished.append("journey")
    gevent.sleep(5)

try:
    gevent.spawn(journey).join()
    print("never interrupted")
except KeyboardInterrupt:
    print("main greenlet interrupted; journey finished:", bool(finished))
"""


def run(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", JOURNEY_INTERRUPTED, mode],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.stdout + done.stderr


def test_ctrl_c_waits_for_the_journey_to_yield_then_stops_the_main_greenlet():
    output = run("with-plugin")
    assert "main greenlet interrupted; journey finished: True" in output, output
    assert "Traceback" not in output, output


def test_without_the_plugin_ctrl_c_breaks_into_the_journey():
    """The control: what Python and gevent do on their own (a traceback from the journey)."""
    output = run("without")
    assert "journey finished: False" in output and "KeyboardInterrupt" in output, output


@pytest.mark.parametrize(
    "stop", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"]
)
def test_a_master_stopped_while_waiting_for_workers_tells_them_to_quit(
    tmp_path, idle_service, stop
):
    """A headless master waiting for 2 workers, 1 connected: Ctrl-C was a traceback, SIGTERM a
    master killed at once, and either way the connected worker ran on for a master that was gone."""
    port = free_port()
    master = locust_process(
        locust_command(tmp_path, *master_args(port, 2)), idle_service.url
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(master.stdout), daemon=True)
    reader.start()
    worker = locust_process(worker_command(port), idle_service.url)
    try:
        deadline = time.monotonic() + 30
        while not any("1 workers connected" in line for line in lines):
            assert time.monotonic() < deadline and master.poll() is None, "".join(lines)
            time.sleep(0.1)
        master.send_signal(stop)
        assert master.wait(timeout=10) == 1, "".join(lines)
        assert worker.wait(timeout=10) == 0, "the worker went on running"
    finally:
        worker_output = end_process(worker)
        end_process(master)
    reader.join(timeout=5)
    output = "".join(lines)
    name = "Ctrl-C" if stop == signal.SIGINT else "SIGTERM"
    assert (
        f"{name} while waiting for workers (1 of 2 connected): the connected ones were "
        "told to quit. No traffic was sent." in output
    ), output[-2000:]
    assert "Traceback" not in output + worker_output, output[-2000:] + worker_output
    assert idle_service.query("SELECT count(*) FROM payments") == [(0,)]


def _processes_with(arg: str) -> list[int]:
    """Pids of the processes whose command line holds ``arg``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if arg in cmdline.read_bytes().replace(b"\0", b" ").decode(
                errors="replace"
            ):
                found.append(int(cmdline.parent.name))
        except OSError:
            pass  # gone meanwhile
    return found


def test_a_processes_master_stopped_at_start_up_lets_its_workers_go(
    tmp_path, idle_service
):
    """``--processes``: an exit 2 from a start-up check left the forked workers running (Locust's
    exit forgets live children); for five minutes they held the output pipe open (``| tee``
    hung), knocked at the master port, and the corrected rerun there counted them as workers
    lost, failing its verdict."""
    processes = processes_args()
    run = run_locust(
        tmp_path,
        idle_service.url,
        *processes,
        "--tags",
        "chekout",
        timeout=25,
    )
    assert run.returncode == 2, run.output[-2000:]
    deadline = time.monotonic() + 5
    while left := _processes_with(f"--master-port {processes[-1]}"):
        if time.monotonic() > deadline:
            for pid in left:
                os.kill(pid, signal.SIGTERM)
            raise AssertionError(f"forked workers left running: {left}")
        time.sleep(0.2)


#: A fork as ``locust --processes`` makes one: the child makes Locust's worker runner for a
#: master that never answers (Locust waits for it up to 5 minutes, inside the constructor);
#: the parent exits at once, as a master stopped by a start-up check before the worker
#: connected does.
FORKED_WORKER_WITHOUT_MASTER = """
import os, socket, sys, time
import locust  # gevent's monkey-patching, as under the locust command
import gevent
forking = os.getpid()
def wait_for_the_parent_to_exit():  # a busy machine's worst case: the parent exits first
    deadline = time.monotonic() + 5
    while os.getppid() == forking and time.monotonic() < deadline:
        time.sleep(0.01)
os.register_at_fork(after_in_child=wait_for_the_parent_to_exit)  # runs before lost_master's
import journeys.lost_master
from locust.env import Environment
probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]
probe.close()
child = gevent.fork()
if child == 0:
    Environment().create_worker_runner("127.0.0.1", port)
    sys.exit(0)
print(child, flush=True)
os._exit(2)
"""


def test_a_forked_worker_whose_master_is_gone_before_it_connected_quits():
    """A master that exited before its forked worker had connected (a start-up check's exit 2
    on a busy machine: the master gives them 3 s) left the worker in Locust's 5-minute wait
    for it, holding the output pipe open: a full suite run hung 300 s on it. Now the worker
    quits within a second or two of its master's exit."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", FORKED_WORKER_WITHOUT_MASTER],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    child = int(proc.stdout.readline())  # the parent names its worker, then exits
    try:
        # the pipe closes when the worker exits
        output = proc.communicate(timeout=20)[0]
    except subprocess.TimeoutExpired:
        os.kill(child, signal.SIGKILL)
        output = proc.communicate(timeout=10)[0]
        raise AssertionError(
            f"the worker ran on 20 s after its master: {output}"
        ) from None
    assert time.monotonic() - started < 10, output
    gone = "that forked this worker is gone before this worker reached it: quitting"
    assert gone in output, output


def test_a_forked_worker_whose_master_is_killed_mid_test_quits_at_once(
    tmp_path, service
):
    """``--processes`` master killed mid-test (SIGKILL, OOM): its forked workers went on
    sending load until their 10 s without a heartbeat. They watch the process that forked
    them now, and stop within a second or two of its death, with why."""
    proc = locust_process(
        locust_command(tmp_path, *processes_args(1), run_time="30s"), service.url
    )
    try:
        service.wait_for_payments(proc)
        proc.kill()  # the master alone: its worker is a process of its own
        killed = time.monotonic()
        # the pipe closes when the worker exits
        output = proc.communicate(timeout=30)[0]
        took = time.monotonic() - killed
    finally:
        end_process(proc)
    assert took < 5, (took, output[-3000:])
    assert (
        "that forked this worker is gone: stopping this worker's 4 users" in output
    ), output[-3000:]


def test_sigterm_stops_a_profile_started_with_ctrl_c_ignored(tmp_path, service):
    """``locust ... &`` in a script (a CI job) starts Locust with SIGINT ignored, as a shell does
    for its background jobs. The SIGTERM handler for a running load profile was set only when
    SIGINT had Python's own handler, so there ``kill`` ended a spike with exit 143: no phase
    report, no CSV, no HTML, and with ``--processes`` its workers orphaned."""
    command = locust_command(tmp_path, "--profile", "spike", users=2, run_time="20s")
    # as a shell starts `locust ... &`: SIGINT ignored, which exec keeps
    ignore_ctrl_c = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])"
    proc = locust_process([sys.executable, "-c", ignore_ctrl_c, *command], service.url)
    try:
        service.wait_for_payments(proc)
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0]
    finally:
        end_process(proc)
    assert proc.returncode == 1, output[-3000:]
    tail = output[-2000:]
    assert "stopped at" in tail and "never ran: peak, recovery" in tail, tail
    assert (tmp_path / "run_profile.csv").exists()
    assert (tmp_path / "report.html").exists()


@pytest.mark.parametrize("forked", [False, True], ids=["standalone", "processes"])
def test_a_second_ctrl_c_while_the_first_stops_the_users_still_writes_the_reports(
    tmp_path, start_service, forked
):
    """Ctrl-C pressed twice, as people do: the first stops the users (each gets its
    ``--stop-timeout`` grace to finish its 2 s request), the second came while Locust waited
    for them and was a ``KeyboardInterrupt`` traceback: no CSV, no HTML, no verdict, exit -2
    (with ``--processes``, in the master's wait for its workers). It now cuts the grace short,
    on the workers too (a terminal's Ctrl-C reaches them all), and the run ends as one Ctrl-C
    ends it, every journey counted."""
    service = start_service("--latency-ms", "2000")
    personas = tmp_path / "personas.csv"
    personas.write_text(
        "persona,role,weight,card_types,currencies,amount_min,amount_max,decline_rate,"
        "max_retries,batch_size,locale,wait_min,wait_max\n"
        "shopper,customer,1,visa,USD,5,80,0,0,,en_US,0,0.05\n"
    )
    command = locust_command(
        tmp_path, "--stop-timeout", "30", *(processes_args(1) if forked else []),
        personas=personas, users=2, run_time="60s",
    )  # fmt: skip
    locust = locust_process(command, service.url, group=True)
    try:
        service.wait_for_payments(locust)
        time.sleep(
            0.5
        )  # a request of each user in flight: the first Ctrl-C waits for them
        os.killpg(locust.pid, signal.SIGINT)  # as a terminal sends it: to every process
        time.sleep(0.3)
        os.killpg(locust.pid, signal.SIGINT)
        second = time.monotonic()
        output = locust.communicate(timeout=60)[0]
        took = time.monotonic() - second
    finally:
        if locust.poll() is None:
            os.killpg(locust.pid, signal.SIGKILL)
        end_process(locust, timeout=15)
    # (Locust's CSV writer may still tick once after Locust closed its files at exit, "I/O
    # operation on closed file", whatever the signals: its own race, not looked at here)
    assert "KeyboardInterrupt" not in output, output[-3000:]
    assert "Tried to stop User" not in output, output[-3000:]
    assert locust.returncode == 1, output[-3000:]
    assert "SLO verdict: FAIL" in output, output[-3000:]
    assert took < 10, f"the second Ctrl-C waited out the grace: {took:.1f} s"
    run = LocustRun(1, output, tmp_path / "run", tmp_path / "report.html")
    assert run.html_path.exists()
    (row,) = [r for r in run.csv_rows("journeys") if r["persona"] == "All"]
    assert int(row["started"]) == sum(int(row[o] or 0) for o in OUTCOMES), row
