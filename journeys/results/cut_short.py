"""A run stopped before its ``--run-time`` (SIGTERM, Ctrl-C) fails its verdict instead of passing.

Locust ends such a run like a finished one: exit code 0 and every output written from the part
that ran. A gate that passes a 15-minute soak stopped after 7 seconds judges load that never ran,
so the verdict gets a failing ``run_time`` check saying how much of the planned run there was.
How long it ran is measured from ``test_start`` to the first ``test_stopping`` (the time limit,
the load profile's end, a signal on a master, the web UI's stop), or to ``quitting`` when the
users were never stopped before it (a signal on a standalone run).
"""

from __future__ import annotations

import time

from locust import events
from locust.runners import WorkerRunner

from journeys.results.slo import Check

#: A stop this close to the planned end is the end, not an interruption.
GRACE_S = 1.0

_clock: dict[str, float] = {}


@events.test_start.add_listener
def _started(environment, **_kwargs) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        _clock.clear()
        _clock.update(monotonic=time.monotonic(), wall=time.time())


@events.test_stopping.add_listener
def _stopping(environment, **_kwargs) -> None:
    if "monotonic" in _clock:
        _clock.setdefault("stopped", time.monotonic())


def started_at() -> float | None:
    """Wall-clock time (``time.time()``) the last test started in this process, if it did."""
    return _clock.get("wall")


def check(environment) -> Check | None:
    """The failing ``run_time`` check for a run stopped early, else None. Call it at quitting."""
    options = environment.parsed_options
    planned = getattr(options, "run_time", None) if options is not None else None
    if not planned or "monotonic" not in _clock:
        return None
    ran = _clock.get("stopped", time.monotonic()) - _clock["monotonic"]
    if ran >= planned - GRACE_S:
        return None
    return Check(
        "run",
        "run_time",
        f"{planned:g} s",
        f"{ran:.0f} s",
        False,
        f"stopped after {ran:.0f} s of its {planned:g} s run time (a signal, Ctrl-C or the "
        "web UI's stop): these results cover only part of the planned load (run)",
    )
