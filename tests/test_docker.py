"""The Docker setup end to end: tests/docker/verify.sh builds the images and runs the compose stack.

Skips (with the reason) when there is no Docker daemon, no compose, or no base image to build
from. The base image is ``local/python:3.11-slim`` unless ``BASE_IMAGE`` names another one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VERIFY = ROOT / "tests" / "docker" / "verify.sh"
BASE_IMAGE = os.environ.get("BASE_IMAGE", "local/python:3.11-slim")

pytestmark = pytest.mark.docker


def _quiet(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60)


def _why_not() -> str | None:
    """Why verify.sh can't run here, or None when it can."""
    if not shutil.which("docker"):
        return "no docker CLI on PATH"
    info = _quiet("docker", "info")
    if info.returncode != 0:
        lines = [line.strip() for line in (info.stderr + info.stdout).splitlines()]
        errors = [line for line in lines if "cannot connect" in line.lower()]
        errors += [line for line in lines if "error" in line.lower()]
        return f"no Docker daemon available (docker info: {(errors or ['failed'])[0]})"
    if _quiet("docker", "compose", "version").returncode != 0 and not shutil.which(
        "docker-compose"
    ):
        return "neither `docker compose` nor `docker-compose` is installed"
    if _quiet("docker", "image", "inspect", BASE_IMAGE).returncode != 0:
        return (
            f"base image {BASE_IMAGE} is not on this machine: build or pull it, "
            "or set BASE_IMAGE (e.g. python:3.12-slim after docker pull)"
        )
    return None


@pytest.mark.timeout(1800)
def test_compose_stack_runs_headless_standalone_and_distributed():
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "BASE_IMAGE": BASE_IMAGE}
    proc = subprocess.run(
        ["bash", str(VERIFY)],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1700,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"verify.sh exited with {proc.returncode}:\n{output}"
    assert "all checks passed" in output, output
