"""``make run`` (scripts/demo.sh): the reference service and Locust against it, as a user runs it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from tests.conftest import ROOT, free_port, locust_env


def start_demo(
    port: int, env: dict | None = None
) -> tuple[subprocess.Popen, list[str]]:
    """scripts/demo.sh headless in a process group of its own, as a terminal runs it; its
    output lines are collected into the list as they come. Its reports go to a folder of its
    own (REPORTS_DIR), not into the user's reports/."""
    demo = subprocess.Popen(
        ["bash", "scripts/demo.sh"], cwd=ROOT, text=True,
        env=locust_env(f"http://127.0.0.1:{port}", {
            "PAYMENT_PORT": str(port), "LOCUST_WEB_PORT": str(free_port()),
            "LOCUST_HEADLESS": "true", "REPORTS_DIR": tempfile.mkdtemp(prefix="demo-"),
            **(env or {}),
        }),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        # as in a terminal, also when pytest itself runs with SIGINT ignored (a background job)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )  # fmt: skip
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(demo.stdout), daemon=True).start()
    return demo, lines


def finish(demo: subprocess.Popen, lines: list[str], timeout: float) -> str:
    try:
        demo.wait(timeout=timeout)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGTERM)
            demo.wait(timeout=30)
    time.sleep(0.2)  # the reader's last lines
    return "".join(lines)


def test_ctrl_c_stops_locust_and_leaves_the_service_up_for_its_report():
    """A terminal's Ctrl-C reaches its whole process group. Locust ignored it (a script's
    background job does) and the service died at once: the run went on to its end against a
    dead service, every payment failed and the report of the run never came."""
    demo, lines = start_demo(free_port(), {"LOCUST_RUN_TIME": "60s"})
    deadline = time.monotonic() + 60
    while not any("All users spawned" in line for line in lines):
        if time.monotonic() > deadline or demo.poll() is not None:
            finish(demo, lines, 0)
            raise AssertionError("".join(lines))
        time.sleep(0.1)
    time.sleep(3)
    os.killpg(demo.pid, signal.SIGINT)
    output = finish(demo, lines, 30)
    assert "FAILED: stopped after" in output, output[-3000:]
    assert "ok: the service's report of the run holds" in output, output[-3000:]
    assert "Connection refused" not in output, output[-3000:]


def test_it_drives_its_own_service_whatever_locust_host_says(idle_service):
    """README's "Running it your way" exports LOCUST_HOST; make run in that shell, moved to
    another port, loaded the service there (and asked it for the report of the run) instead
    of the one it had started and announced."""
    port = free_port()
    demo, lines = start_demo(
        port, {"LOCUST_RUN_TIME": "4s", "LOCUST_HOST": idle_service.url}
    )
    output = finish(demo, lines, 60)
    assert demo.returncode == 0, output[-3000:]
    assert "LOCUST_HOST is set, but make run loads the service it starts" in output
    assert f"asking http://127.0.0.1:{port}/internal/generate-report" in output, output
    assert idle_service.query("SELECT count(*) FROM payments") == [(0,)]


def test_a_taken_port_is_named_before_anything_runs(idle_service):
    """With the service's port taken, the service it started died unseen ("address already in
    use" in its log only) and Locust loaded whatever held the port, or stopped on its token.
    ``PAYMENT_SERVICE_PORT=8001 make run`` (the service's name, not make run's variable) was
    ignored without a word: it is named, with the variable make run reads."""
    demo, lines = start_demo(
        idle_service.port, {"LOCUST_RUN_TIME": "4s", "PAYMENT_SERVICE_PORT": "8001"}
    )
    output = finish(demo, lines, 60)
    assert demo.returncode == 2, output[-3000:]
    assert (
        "make run: PAYMENT_SERVICE_PORT=8001 is ignored: make run reads PAYMENT_PORT (the "
        f"service goes on port {idle_service.port}; e.g. PAYMENT_PORT=8001 make run)"
    ) in output, output[-3000:]
    assert (
        f"make run: port {idle_service.port} is taken: stop what holds it, or move the "
        "payment service with PAYMENT_PORT (e.g. PAYMENT_PORT=8001 make run)"
    ) in output, output[-3000:]
    assert idle_service.query("SELECT count(*) FROM payments") == [(0,)]


def test_a_port_that_is_no_number_is_named_before_anything_runs():
    """``PAYMENT_PORT=abc make run``: the service died of it unseen (in its log only) and Locust
    stopped on a host it had not been given: "--host 'http://127.0.0.1:abc' is not a URL"."""
    demo, lines = start_demo("abc", {"LOCUST_RUN_TIME": "4s"})
    output = finish(demo, lines, 60)
    assert demo.returncode == 2, output[-3000:]
    assert "make run: PAYMENT_PORT=abc is not a port number (1-65535)" in output, output
    assert "Starting Locust" not in output, output[-3000:]


def test_a_python_older_than_3_11_is_named_before_the_install(tmp_path):
    """``make run`` with a python3 older than 3.11 (Locust 2.47 and pandas 3 need 3.11) made
    .venv with it, then pip failed with "No matching distribution found for locust==2.47.0"."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "venv.sh", tmp_path / "scripts")
    shutil.copy(ROOT / "requirements.txt", tmp_path)
    old = tmp_path / "python3.10"
    old.write_text(
        '#!/bin/sh\ncase "$1" in --version) echo "Python 3.10.12" ;; *) exit 1 ;; esac\n'
    )
    old.chmod(0o755)
    run = subprocess.run(
        ["bash", "scripts/venv.sh"], cwd=tmp_path, env={"PATH": os.environ["PATH"],
        "PYTHON": str(old)}, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    assert "needs Python 3.11 or newer" in run.stderr, run.stderr
    assert "Python 3.10.12" in run.stderr and "PYTHON=python3.11 make run" in run.stderr
    assert not (tmp_path / ".venv").exists()
