"""What every bench script shares: the targets it starts, how it runs Locust, how it reads results.

Each script under ``bench/`` starts its own target on a free 127.0.0.1 port (the nginx + njs
stand-in of ``bench/nginx/``, the reference service, or ``ddapm-test-agent`` for traces), runs real
Locust against it in a subprocess (pinned with ``taskset`` where it matters) and reads two things
back: Locust's ``--csv`` stats file (only rows whose Type is an HTTP method count, never the
``journey`` rows) and the JSON that ``bench/locustfiles/probe.py`` writes from inside the Locust
process (wall time, CPU time and RSS at test start, spawn complete and test stop).

Absolute numbers depend on the machine; the scripts print ratios measured side by side in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOCUSTFILE = ROOT / "locustfile.py"
DEFAULT_PERSONAS = ROOT / "personas.csv"
BARE = BENCH / "locustfiles" / "bare.py"
PROBE = BENCH / "locustfiles" / "probe.py"
STEPS = BENCH / "locustfiles" / "steps.py"
NGINX_DIR = BENCH / "nginx"
JS_MODULE = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")
TOKEN = "bench-internal-token"
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
APT_PACKAGES = "nginx-light libnginx-mod-http-js"
PERSONA_COLUMNS = [
    "persona",
    "role",
    "weight",
    "card_types",
    "currencies",
    "amount_min",
    "amount_max",
    "decline_rate",
    "max_retries",
    "batch_size",
    "locale",
    "wait_min",
    "wait_max",
]


# -- command line ---------------------------------------------------------------------------------


def parser(description: str, duration: float, users: int) -> argparse.ArgumentParser:
    """The options every script has: ``--duration``, ``--users``, ``--quick``, ``--keep``."""
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--duration",
        type=float,
        default=duration,
        help="seconds per measured Locust run",
    )
    p.add_argument("--users", type=int, default=users, help="simulated users per run")
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny smoke run (a few seconds, few users): checks it works",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the work directory (CSVs, logs) and print its path",
    )
    return p


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    """A temporary work directory. SIGTERM from here on unwinds like Ctrl-C, so the ``with``
    blocks inside stop what they started (nginx, the trace agent) instead of orphaning it."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    path = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"work directory kept: {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


#: The configs that run the project's own locustfile.
PROJECT_CONFIGS = frozenset({"mix", "traced"})


def _exit_on_sigterm(signum, _frame) -> None:
    raise SystemExit(128 + signum)


def run_time(args: argparse.Namespace, config: str) -> float:
    """Seconds for one run of ``config``: ``--duration``, but 2 with ``--quick`` for a run of any
    locustfile but the project's (``mix``, ``traced``): plain Locust (the bare user, the layer
    file) writes its --csv stats once a second, not at the end, so a 1 s run, slowed by other
    work on the machine, can leave it no row (the project's locustfile rewrites them at the end)."""
    return 2 if args.quick and config not in PROJECT_CONFIGS else args.duration


# -- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(
    url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"{url}: the process serving it exited with {proc.returncode}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout}s")
        time.sleep(0.05)


def pinned(cpus: str | None, cmd: list[str]) -> list[str]:
    """``cmd`` under ``taskset -c cpus`` (unchanged when cpus is None or taskset is missing)."""
    if cpus is None or shutil.which("taskset") is None:
        return cmd
    return ["taskset", "-c", cpus, *cmd]


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without DD_*, LOCUST_* and PAYMENT_* variables, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DD_", "LOCUST_", "PAYMENT_"))
    }
    env.update(
        {
            "PAYMENT_INTERNAL_TOKEN": TOKEN,
            "DD_TRACE_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process from /proc (seconds); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    try:
        return [
            int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except OSError:
        return []


class CpuMeter:
    """Share of one core a set of processes used between ``start()`` and ``stop()``."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self._t0 = self._c0 = 0.0
        self.busy = 0.0

    def start(self) -> None:
        self._t0, self._c0 = time.monotonic(), sum(cpu_seconds(p) for p in self.pids)

    def stop(self) -> float:
        wall = time.monotonic() - self._t0
        self.busy = (
            (sum(cpu_seconds(p) for p in self.pids) - self._c0) / wall
            if wall > 0
            else 0.0
        )
        return self.busy


@contextlib.contextmanager
def _serving(
    cmd: list[str], log_path: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen]:
    """A server process logging to ``log_path``, stopped (SIGTERM, then SIGKILL) on exit."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield proc
        finally:
            stop(proc)


# -- targets --------------------------------------------------------------------------------------


def nginx_missing() -> str | None:
    """Why the nginx + njs stand-in cannot run here, or None when it can."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        return f"nginx is not installed (apt-get install {APT_PACKAGES})"
    if not JS_MODULE.exists():
        return f"njs is not installed: no {JS_MODULE} (apt-get install libnginx-mod-http-js)"
    return None


@dataclass
class Target:
    url: str
    proc: subprocess.Popen
    # processes doing the work (for CpuMeter)
    pids: list[int] = field(default_factory=list)


@contextlib.contextmanager
def nginx_target(
    work: Path, cpus: str | None = "0", port: int | None = None
) -> Iterator[Target]:
    """The nginx + njs stand-in on ``port`` (default: a free one), one worker pinned to ``cpus``."""
    missing = nginx_missing()
    if missing:
        raise SystemExit(missing)
    prefix = work / f"nginx-{free_port()}"
    (prefix / "batches").mkdir(parents=True)
    port = port or free_port()
    conf = (NGINX_DIR / "nginx.conf").read_text()
    for key, value in {
        "@USER@": "user root;" if os.geteuid() == 0 else "",
        "@PREFIX@": str(prefix),
        "@JS_MODULE@": str(JS_MODULE),
        "@JS_DIR@": str(NGINX_DIR),
        "@PORT@": str(port),
    }.items():
        conf = conf.replace(key, value)
    (prefix / "nginx.conf").write_text(conf)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    cmd = [
        nginx,
        "-p",
        str(prefix),
        "-c",
        str(prefix / "nginx.conf"),
        "-e",
        str(prefix / "error.log"),
        "-g",
        "daemon off;",
    ]
    env = clean_env(BENCH_BATCH_DIR=str(prefix / "batches"))
    url = f"http://127.0.0.1:{port}"
    with _serving(pinned(cpus, cmd), prefix / "stderr.log", env=env) as proc:
        try:
            wait_http(url + "/health", 15, proc)
        except Exception:
            error_log = prefix / "error.log"
            sys.stderr.write(
                error_log.read_text(errors="replace") if error_log.exists() else ""
            )
            raise
        yield Target(url, proc, [proc.pid, *children(proc.pid)])


@contextlib.contextmanager
def reference_service(work: Path, cpus: str | None = "0") -> Iterator[Target]:
    """``python -m payment_service`` with a fresh SQLite file on a free port."""
    port = free_port()
    log = work / f"service-{port}.log"
    cmd = [
        sys.executable,
        "-m",
        "payment_service",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        str(work / f"payments-{port}.sqlite"),
    ]
    url = f"http://127.0.0.1:{port}"
    with _serving(pinned(cpus, cmd), log, env=clean_env()) as proc:
        try:
            wait_http(url + "/health", 60, proc)
        except Exception:
            sys.stderr.write(log.read_text(errors="replace")[-3000:])
            raise
        yield Target(url, proc, [proc.pid])


@contextlib.contextmanager
def trace_agent(work: Path, cpus: str | None = "0") -> Iterator[Target]:
    """``ddapm-test-agent`` on free ports (trace, OTLP HTTP, OTLP gRPC), pinned off the generator."""
    port = free_port()
    exe = shutil.which("ddapm-test-agent") or str(
        Path(sys.executable).parent / "ddapm-test-agent"
    )
    cmd = [
        exe,
        "--port",
        str(port),
        "--otlp-http-port",
        str(free_port()),
        "--otlp-grpc-port",
        str(free_port()),
        "--log-level",
        "WARNING",
    ]
    url = f"http://127.0.0.1:{port}"
    with _serving(
        pinned(cpus, cmd), work / f"agent-{port}.log", env=clean_env()
    ) as proc:
        wait_http(url + "/test/traces", 30, proc)
        yield Target(url, proc, [proc.pid])


def traced_env(
    agent_url: str, sample_rate: str = "1", inject_styles: str = ""
) -> dict[str, str]:
    """Env that turns the generator's tracing on, to the agent at ``agent_url``; the trace header
    styles are the generator's default (datadog,tracecontext) unless ``inject_styles`` names them."""
    env = {
        "DD_TRACE_AGENT_URL": agent_url,
        "DD_TRACE_ENABLED": "true",
        "LOCUST_TRACE_SAMPLE_RATE": sample_rate,
    }
    if inject_styles:
        env["DD_TRACE_PROPAGATION_STYLE_INJECT"] = inject_styles
    return env


def trace_count(agent_url: str) -> int:
    """Traces the test agent has received so far (-1 when it cannot say)."""
    try:
        with urllib.request.urlopen(agent_url + "/test/traces", timeout=30) as r:
            return len(json.load(r))
    except (OSError, ValueError):
        return -1


# -- personas -------------------------------------------------------------------------------------


def read_personas(path: Path = DEFAULT_PERSONAS) -> list[dict[str, str]]:
    """The rows of a personas file (comment lines skipped), every column kept, values stripped."""
    with open(path, newline="") as f:
        reader = csv.DictReader(line for line in f if not line.lstrip().startswith("#"))
        return [
            {k.strip(): (v or "").strip() for k, v in r.items() if k}
            for r in reader
            if (r.get("persona") or "").strip()
        ]


def write_personas(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write ``rows`` under the standard columns plus any optional ones they carry."""
    extra = [k for r in rows for k in r if k not in PERSONA_COLUMNS]
    columns = PERSONA_COLUMNS + list(dict.fromkeys(extra))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, restval="")
        w.writeheader()
        w.writerows(rows)
    return path


def bench_personas(
    path: Path,
    wait: tuple[float, float] = (0, 0),
    roles: tuple[str, ...] = ("customer", "operator"),
    source: Path = DEFAULT_PERSONAS,
    pace: float | None = None,
) -> Path:
    """The project's personas with ``roles`` only and think time ``wait`` (0, 0 = none).

    ``pace=S`` instead gives each persona a think time of S seconds per request its journey sends
    (customers 1 + decline_rate, operators batch_size + 1), so every user sends about 1/S req/s.
    Probers are left out by default: their key-reuse probe needs state per idempotency key the
    nginx stand-in does not keep (the other probes pass against it).
    """
    rows = []
    for r in read_personas(source):
        if r["role"] not in roles:
            continue
        low, high = wait
        if pace is not None:
            per_journey = (
                int(r["batch_size"] or 0) + 1
                if r["role"] == "operator"
                else 1 + float(r["decline_rate"] or 0)
            )
            low = high = pace * per_journey
        rows.append(dict(r, wait_min=_num(low), wait_max=_num(high)))
    if not rows:
        raise SystemExit(f"{source}: no persona with role {' or '.join(roles)}")
    return write_personas(path, rows)


def _num(value: float) -> str:
    return f"{value:g}"


# -- Locust ---------------------------------------------------------------------------------------


@dataclass
class LocustRun:
    """One finished Locust run: exit code, HTTP counts from the CSV, the probe's measurements."""

    name: str
    returncode: int
    log: Path
    http_requests: int = 0
    http_failures: int = 0
    http_rps: float = 0.0  # from the CSV: the number the scripts compare
    probes: dict[str, dict] = field(default_factory=dict)  # role.pid -> probe JSON
    target_busy: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def probe(self) -> dict:
        """The standalone (or first worker's) probe record."""
        for key in sorted(self.probes):
            if not key.startswith("master"):
                return self.probes[key]
        return {}

    @property
    def wall(self) -> float:
        p = self.probe
        return (
            p["stop"]["wall"] - p["start"]["wall"]
            if "stop" in p and "start" in p
            else 0.0
        )

    @property
    def rps(self) -> float:
        return self.http_rps

    @property
    def probe_rps(self) -> float:
        """HTTP requests/s seen by the probe from spawn complete to test stop (a cross-check)."""
        s = self.steady
        return s["requests"] / s["wall"] if s and s["wall"] else 0.0

    @property
    def steady(self) -> dict:
        """From spawn complete to test stop: requests, CPU seconds, wall seconds (standalone only)."""
        p = self.probe
        if "spawned" not in p or "stop" not in p:
            return {}
        a, b = p["spawned"], p["stop"]
        return {
            "requests": b["http"] - a["http"],
            "cpu": b["cpu"] - a["cpu"],
            "wall": b["wall"] - a["wall"],
        }

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def http_counts(stats_csv: Path) -> tuple[int, int, float]:
    """(requests, failures, requests/s) summed over the HTTP rows of a Locust ``_stats.csv``.

    Rows whose Type is not an HTTP method (the ``journey`` rows, ``Aggregated``) are left out.
    Locust rewrites the file once a second, so its counts can trail the run's end; its
    ``Requests/s`` (count ÷ time to that row's last request) does not, and is what we compare.
    """
    requests = failures = 0
    rps = 0.0
    with open(stats_csv, newline="") as f:
        for row in csv.DictReader(f):
            if row["Type"].upper() in HTTP_METHODS and row["Name"] != "Aggregated":
                requests += int(row["Request Count"])
                failures += int(row["Failure Count"])
                rps += float(row.get("Requests/s") or 0)
    return requests, failures, rps


def locust_base(
    locustfiles: list[Path],
    host: str,
    users: int,
    spawn_rate: float,
    run_time: float,
    csv_prefix: Path | None,
    personas: Path | None,
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        ",".join(str(p) for p in locustfiles),
        "--host",
        host,
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(spawn_rate),
        "--run-time",
        f"{math.ceil(run_time)}s",
        "--stop-timeout",
        "0",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
    ]
    if csv_prefix is not None:
        cmd += ["--csv", str(csv_prefix)]
    if personas is not None:
        cmd += ["--personas", str(personas), "--seed", "1"]
    return cmd


def run_locust(
    work: Path,
    name: str,
    locustfiles: list[Path],
    host: str,
    *,
    users: int,
    run_time: float,
    spawn_rate: float | None = None,
    personas: Path | None = None,
    cpus: str | None = "1",
    env: dict[str, str] | None = None,
    workers: int = 0,
    target: Target | None = None,
    extra_args: list[str] | None = None,
    timeout: float | None = None,
) -> LocustRun:
    """Run Locust (standalone, or master + ``workers``) with the probe and read its results back."""
    run_dir = work / name
    run_dir.mkdir(parents=True, exist_ok=False)
    prefix = run_dir / "run"
    files = [*locustfiles, PROBE]
    full_env = clean_env(BENCH_PROBE_OUT=str(run_dir / "probe"), **(env or {}))
    cmd = locust_base(
        files, host, users, spawn_rate or users, run_time, prefix, personas
    ) + (extra_args or [])
    log_path = run_dir / "locust.log"
    timeout = timeout or run_time + 120
    meter = CpuMeter(target.pids) if target else None
    with open(log_path, "wb") as log:
        if not workers:
            proc = subprocess.Popen(
                pinned(cpus, cmd),
                cwd=ROOT,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            procs = [proc]
        else:
            port = free_port()
            master = cmd + [
                "--master",
                "--expect-workers",
                str(workers),
                "--master-bind-host",
                "127.0.0.1",
                "--master-bind-port",
                str(port),
            ]
            worker = [
                sys.executable,
                "-m",
                "locust",
                "-f",
                ",".join(str(p) for p in files),
                "--worker",
                "--master-host",
                "127.0.0.1",
                "--master-port",
                str(port),
                "--loglevel",
                "WARNING",
            ]
            if personas is not None:
                worker += ["--personas", str(personas)]
            proc = subprocess.Popen(
                pinned(cpus, master),
                cwd=ROOT,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            procs = [proc] + [
                subprocess.Popen(
                    pinned(cpus, worker),
                    cwd=ROOT,
                    env=full_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                for _ in range(workers)
            ]
        if meter:
            meter.start()
        try:
            proc.wait(timeout)
            for p in procs[1:]:
                p.wait(30)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            log.flush()
            raise RuntimeError(
                f"{name}: Locust did not finish in time\n{log_path.read_text(errors='replace')[-3000:]}"
            ) from None
    run = LocustRun(name, proc.returncode, log_path)
    if meter:
        run.target_busy = meter.stop()
    stats = Path(f"{prefix}_stats.csv")
    if stats.exists():
        run.http_requests, run.http_failures, run.http_rps = http_counts(stats)
    for path in run_dir.glob("probe.*.json"):
        run.probes[path.name[len("probe.") : -len(".json")]] = json.loads(
            path.read_text()
        )
    if not stats.exists() or not run.probes:
        raise RuntimeError(
            f"{name}: Locust exited with {run.returncode} and no results\n{run.tail()}"
        )
    if run.http_requests == 0 and run.probe_rps:
        # a short run starved by other work (--quick in the test suite) can end before plain
        # Locust's once-a-second CSV write saw a request: its table row read 0.00 req/s. The
        # probe counted them from inside the process; its rate stands in (logged).
        print(f"  {name}: no HTTP row in the CSV yet; req/s from the probe", flush=True)
        run.http_rps = run.probe_rps
    return run


# -- reporting ------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table (pastes into bench/README.md as is)."""
    text = [[_cell(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in text)) if text else len(h)
        for i, h in enumerate(headers)
    ]
    line = (
        "| "
        + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
        + " |"
    )
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |"
        for r in text
    ]
    return "\n".join([line, rule, *body])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "ok" if ok else "MISSED"


def command_line() -> str:
    return "python " + " ".join(
        [str(Path(sys.argv[0]).resolve().relative_to(ROOT)), *sys.argv[1:]]
    )


def header(title: str) -> None:
    print(f"## {title}\n")
    print(
        f"`{command_line()}` on {cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
    )
