"""A web UI session with nothing to judge: no test was started, or the statistics were reset
after the last test had stopped and no test ran since.

Quitting such a session (Ctrl-C, SIGTERM, ``--autoquit``) failed the verdict for "no HTTP
requests were recorded", as if a test had sent nothing, beside checks of the test whose figures
the reset had cleared. The verdict now says what happened, ``SLO verdict: NOT JUDGED``, with
this module's reason as its one check and exit code 1 (nothing passed), in the console,
``_slo.csv``, the HTML report and the SLO tab alike.
"""

from __future__ import annotations

import time

from locust import events
from locust.runners import STATE_STOPPED, WorkerRunner

#: "started": a test started in this process; "reset_at": the statistics were reset after the
#: last test stopped (a local ``HH:MM:SS``, as Locust's log lines have it), None since a start
_session: dict = {"started": False, "reset_at": None, "environment": None}


@events.init.add_listener
def _remember_environment(environment, **_kwargs) -> None:
    _session["environment"] = environment


@events.test_start.add_listener
def _started(environment, **_kwargs) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        _session.update(started=True, reset_at=None)


@events.reset_stats.add_listener
def _reset(**_kwargs) -> None:
    """The web UI's Reset statistics: after a stop, nothing of the last test is left to judge
    (a reset while a test runs judges it from then on)."""
    environment = _session["environment"]
    runner = environment.runner if environment is not None else None
    if _session["started"] and runner is not None and runner.state == STATE_STOPPED:
        _session["reset_at"] = time.strftime("%H:%M:%S")


def reason(environment) -> str | None:
    """Why a web UI session that recorded no HTTP request has nothing to judge, else None (a
    headless run, or a test that ran and sent nothing: that one fails on it)."""
    if getattr(environment, "web_ui", None) is None:
        return None
    if not _session["started"]:
        return "no test was started in the web UI: nothing to judge (run)"
    if _session["reset_at"]:
        return (
            f"no test ran since the statistics were reset at {_session['reset_at']}, after "
            "the last test had stopped (the reset cleared its figures): nothing to judge (run)"
        )
    return None
