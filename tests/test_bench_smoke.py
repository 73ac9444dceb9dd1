"""Smoke runs of every ``bench/`` script in ``--quick`` mode (a few seconds, few users) so they never rot.

The real benchmarks are slow and live outside the suite; these only prove each script still runs
end to end and prints its table. Deselect with ``-m "not bench"``. Scripts that need the nginx + njs
stand-in skip when Debian's ``nginx-light`` and ``libnginx-mod-http-js`` are not installed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import case_result, run_tests

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import harness  # bench/ is a directory of scripts, not a package

pytestmark = pytest.mark.bench

needs_nginx = pytest.mark.skipif(
    harness.nginx_missing() is not None,
    reason=f"bench target needs nginx + njs: {harness.nginx_missing()} (apt-get install {harness.APT_PACKAGES})",
)


#: Each smoke test's script and arguments (``--quick`` is added). They run two at a time ahead of
#: their checks (``bench_runs``): they only have to run through, and pinned to the same cores as
#: each other their numbers mean nothing anyway.
SCRIPTS = {
    "test_throughput_prints_the_ratio_table": ("throughput.py",),
    "test_calls_counts_python_calls_per_request": ("calls.py",),
    # bare is the same harness; keep the smoke short
    "test_memory_prints_kb_per_user": ("memory.py", "--configs", "journeys"),
    "test_scale_out_compares_one_and_two_workers": ("scale_out.py", "--configs", "mix"),
    "test_startup_times_both_personas_files": ("startup.py",),
    "test_cpu_per_request_against_the_reference_service": ("cpu_per_request.py",),
    "test_stand_in_speaks_the_contract": ("target.py", "--check"),
}  # fmt: skip
#: The scripts that need the nginx stand-in (the others run against the reference service).
WITHOUT_NGINX = {"test_cpu_per_request_against_the_reference_service"}


@pytest.fixture(scope="module")
def bench_runs(request):
    """Every selected smoke test's script, started two at a time, each to its end."""

    def start(name: str, args: tuple[str, ...]):
        def started(folder: Path):
            command = [sys.executable, str(BENCH / name), "--quick", *args]
            return command, dict(os.environ), None

        return started

    runnable = {
        test: start(script, args)
        for test, (script, *args) in SCRIPTS.items()
        if test in WITHOUT_NGINX or harness.nginx_missing() is None
    }
    return run_tests(request, runnable, timeout=240)


def run_alone(name: str, *args: str, timeout: float = 240) -> str:
    """Run a script on its own (not beside another): ``layers.py``'s 1 s runs of plain Locust
    layer files, starved by a second script, can end before Locust writes their stats row."""
    proc = subprocess.run(
        [sys.executable, str(BENCH / name), "--quick", *args],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def run_script(bench_runs, request) -> str:
    """The output of the running test's script, which must have exited 0."""
    run = case_result(bench_runs, request)
    assert run.returncode == 0, run.output[-4000:]
    return run.output


@needs_nginx
def test_throughput_prints_the_ratio_table(bench_runs, request):
    out = run_script(bench_runs, request)
    assert "| config | median req/s | ratio to bare |" in out
    for config in ("bare", "mix", "traced"):
        assert re.search(rf"\|\s+{config}\s+\|", out), config


@needs_nginx
def test_layers_prints_the_cost_of_each_layer():
    # every layer, the optional request variants too, in one run (one target, one bare run)
    layers = ("bare", "request", "nocatch", "raw", "client", "journey", "mix")
    out = run_alone("layers.py", "--layers", ",".join(layers))
    assert re.search(
        r"\|\s+layer\s+\|\s+median req/s\s+\|\s+ratio to bare\s+\|", out
    ), out
    for layer in layers:
        assert re.search(rf"\|\s+{layer}\s+\|\s+[\d,]+\s+\|", out), layer


@needs_nginx
def test_calls_counts_python_calls_per_request(bench_runs, request):
    out = run_script(bench_runs, request)
    assert "| config | HTTP requests profiled | failures | calls/request |" in out
    for config in ("bare", "mix", "traced"):
        assert re.search(rf"\|\s+{config}\s+\|\s+[\d,]+\s+\|", out), config
    assert "### mix: calls per request over bare" in out


@needs_nginx
def test_memory_prints_kb_per_user(bench_runs, request):
    out = run_script(bench_runs, request)
    assert "KB/user" in out and "journeys" in out and "no sample" not in out


@needs_nginx
def test_scale_out_compares_one_and_two_workers(bench_runs, request):
    out = run_script(bench_runs, request)
    assert "2 workers req/s" in out


@needs_nginx
def test_startup_times_both_personas_files(bench_runs, request):
    out = run_script(bench_runs, request)
    assert "default personas" in out and "50 personas" in out


def test_cpu_per_request_against_the_reference_service(bench_runs, request):
    out = run_script(bench_runs, request)
    assert "median CPU ms/request" in out


@needs_nginx
def test_stand_in_speaks_the_contract(bench_runs, request):
    """The nginx stand-in answers as the contract says: echo, declines, validation, exact batch report."""
    out = run_script(bench_runs, request)
    assert "contract checks passed" in out


def test_http_counts_skip_journey_rows(tmp_path):
    stats = tmp_path / "run_stats.csv"
    stats.write_text(
        "Type,Name,Request Count,Failure Count,Requests/s\n"
        "POST,checkout: pay,100,2,50.0\n"
        "POST,batch_report: report,10,0,5.0\n"
        "journey,checkout,90,1,45.0\n"
        ",Aggregated,200,3,100.0\n"
    )
    assert harness.http_counts(stats) == (110, 2, 55.0)
