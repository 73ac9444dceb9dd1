"""docker/entrypoint.sh's choices without Docker: the script runs with ``sh`` here, and a stand-in
``locust`` on PATH prints the command line and ``LOCUST_EXPECT_WORKERS`` it was handed.

(tests/docker/verify.sh runs the real image when a Docker daemon is there.)
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def entrypoint(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run the entrypoint with ``args`` and ``env`` (DD_* tracing off: no agent lookup); the
    stand-in ``locust`` prints ``locust ARGS`` and ``EXPECT=...``."""
    fake = tmp_path / "bin" / "locust"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(
        '#!/bin/sh\necho "locust $*"\necho "EXPECT=${LOCUST_EXPECT_WORKERS-unset}"\n'
    )
    fake.chmod(0o755)
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "DD_"))
    }
    clean.update(
        PATH=f"{fake.parent}:{os.environ['PATH']}", DD_TRACE_ENABLED="false", **env
    )
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args], cwd=tmp_path, env=clean,
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_the_entrypoint_parses():
    for shell in ("sh", "bash"):
        subprocess.run([shell, "-n", str(ENTRYPOINT)], check=True)


@pytest.fixture
def master_port():
    """A port on 127.0.0.1 that takes connections, as a master's does."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        yield listening.getsockname()[1]


def test_a_worker_told_0_joins_a_master_that_answers(tmp_path, master_port):
    """A master started with --master and LOCUST_EXPECT_WORKERS=0 does not wait for workers;
    its workers, told 0 as well (compose passes them the generator's value), were refused
    with "This worker has no master" although their master was there."""
    worker = (
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        str(master_port),
    )
    run = entrypoint(tmp_path, *worker, LOCUST_EXPECT_WORKERS="0")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        f"locust -f locustfile.py {' '.join(worker)}",
        "EXPECT=unset",
    ]


def test_a_worker_told_0_without_a_master_says_what_to_set(tmp_path):
    """Nothing listens on the master's port: the generator runs standalone, so the worker
    stops with exit 2 and the variable to set."""
    with socket.socket() as closed:  # a port no one listens on
        closed.bind(("127.0.0.1", 0))
        port = str(closed.getsockname()[1])
        run = entrypoint(
            tmp_path, "--worker", "--master-host", "127.0.0.1", "--master-port", port,
            LOCUST_EXPECT_WORKERS="0", WORKER_MASTER_WAIT="1",
        )  # fmt: skip
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert run.stderr.startswith(
        "This worker has no master: LOCUST_EXPECT_WORKERS=0 (docker-compose.yml's value when it "
        "is unset) makes the load-generator run standalone, and no master answered within 1 s. "
        "Set LOCUST_EXPECT_WORKERS to the number of workers, for the generator and its workers "
        "alike: LOCUST_EXPECT_WORKERS=3 docker compose --profile workers up --scale worker=3"
    ), run.stderr
    assert "locust" not in run.stdout


@pytest.mark.parametrize(
    ("expect", "args", "role", "expect_left"),
    [
        ("0", (), "standalone", "unset"),
        ("3", (), "--master --expect-workers 3", "3"),
        ("0", ("--master",), "--master", "unset"),
    ],
    ids=["0-standalone", "3-master", "0-master-by-hand"],
)
def test_the_generator_s_role(tmp_path, expect, args, role, expect_left):
    """0 is a standalone generator (Locust refuses --expect-workers 0); a master made by hand
    with 0 gets no LOCUST_EXPECT_WORKERS, so it does not wait for workers (with its web UI)."""
    run = entrypoint(
        tmp_path, *args, LOCUST_HEADLESS="true", LOCUST_EXPECT_WORKERS=expect
    )
    assert run.returncode == 0, run.stderr
    command, left = run.stdout.splitlines()
    assert command.startswith(
        "locust -f locustfile.py --junit-xml reports/junit.xml"
    ), command
    if role == "standalone":
        assert "--master" not in command and "--expect-workers" not in command, command
    else:
        assert command.endswith(f" {role}") and command.count("--master") == 1, command
    assert left == f"EXPECT={expect_left}"
