"""cProfile from spawn complete to test stop, for ``bench/calls.py`` (no user classes here).

Loaded beside the locustfile under test when ``BENCH_CALLS_OUT`` is set: profiles the main
thread (every user's greenlet) from spawning complete to test stop and writes the stats to
``$BENCH_CALLS_OUT.prof`` and the HTTP requests counted in that window (stats entries whose
method is an HTTP verb, so ``journey`` rows never count) to ``$BENCH_CALLS_OUT.json``.
"""

from __future__ import annotations

import cProfile
import json
import os

from locust import events

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
OUT = os.environ.get("BENCH_CALLS_OUT")
_state: dict = {}


def _http(environment) -> int:
    return sum(
        e.num_requests
        for (_name, method), e in environment.stats.entries.items()
        if method.upper() in HTTP_METHODS
    )


if OUT:

    @events.spawning_complete.add_listener
    def _start(**_kw) -> None:
        if "profile" in _state:
            return
        _state["start"] = _http(_state["env"])
        _state["profile"] = cProfile.Profile()
        _state["profile"].enable()

    @events.init.add_listener
    def _init(environment, **_kw) -> None:
        _state["env"] = environment

    @events.test_stop.add_listener
    def _stop(**_kw) -> None:
        profile = _state.get("profile")
        if profile is None:
            return
        profile.disable()
        profile.dump_stats(OUT + ".prof")
        with open(OUT + ".json", "w") as f:
            json.dump({"requests": _http(_state["env"]) - _state["start"]}, f)
