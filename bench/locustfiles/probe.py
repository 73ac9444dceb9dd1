"""Measurements from inside a Locust process, for the bench scripts (no user classes here).

Loaded beside the locustfile under test (``-f locustfile.py,bench/locustfiles/probe.py``) when
``BENCH_PROBE_OUT`` is set. Writes ``$BENCH_PROBE_OUT.<role>.<pid>.json`` with wall time
(``time.time()``), CPU time (``os.times()`` user + system, all threads) and the count of HTTP
requests (stats entries whose method is an HTTP verb, so ``journey`` rows never count) at
``start`` (test_start), ``spawned`` (spawning complete) and ``stop`` (test_stop); the wall time of
the first request (``first_request``); and with ``BENCH_RSS_SETTLE=S``, the RSS S seconds after
each spawning complete (``rss``: users, rss_kb). Costs nothing per request after the first.
"""

from __future__ import annotations

import json
import os
import time

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
OUT = os.environ.get("BENCH_PROBE_OUT")
SETTLE = float(os.environ.get("BENCH_RSS_SETTLE") or 0)
record: dict = {"pid": os.getpid(), "rss": []}
_env = None


def _path() -> str:
    runner = _env.runner if _env else None
    role = (
        "master"
        if isinstance(runner, MasterRunner)
        else "worker"
        if isinstance(runner, WorkerRunner)
        else "local"
    )
    return f"{OUT}.{role}.{os.getpid()}.json"


def _save() -> None:
    if OUT and _env is not None:
        tmp = _path() + ".tmp"
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, _path())


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _point() -> dict:
    t = os.times()
    http = fails = 0
    if _env is not None:
        for (_name, method), entry in _env.stats.entries.items():
            if method.upper() in HTTP_METHODS:
                http += entry.num_requests
                fails += entry.num_failures
    return {
        "wall": time.time(),
        "cpu": t.user + t.system,
        "http": http,
        "failures": fails,
        "rss_kb": _rss_kb(),
    }


if OUT:

    @events.init.add_listener
    def _init(environment, **_kw) -> None:
        global _env
        _env = environment

    @events.test_start.add_listener
    def _start(**_kw) -> None:
        record["start"] = _point()

    @events.spawning_complete.add_listener
    def _spawned(user_count: int, **_kw) -> None:
        record.setdefault("spawned", _point())
        if SETTLE:
            gevent.spawn_later(SETTLE, _sample_rss, user_count)

    def _sample_rss(user_count: int) -> None:
        running = (
            _env.runner.user_count
            if _env is not None and _env.runner is not None
            else -1
        )
        record["rss"].append(
            {
                "users": user_count,
                "running": running,
                "rss_kb": _rss_kb(),
                "wall": time.time(),
            }
        )
        _save()

    @events.request.add_listener
    def _first(**_kw) -> None:
        record["first_request"] = time.time()
        events.request.remove_listener(_first)

    @events.test_stop.add_listener
    def _stop(**_kw) -> None:
        record["stop"] = _point()
        _save()

    @events.quitting.add_listener
    def _quit(**_kw) -> None:
        _save()
