"""Users per persona class: now (or at the stop), and the most at once in the test (the persona
mix's "Users" and "Peak users").

The users at the end say little about a spike (it ends back at its base), a step profile or a
run whose users were lowered in the web UI. Locust keeps no maximum, so this takes one at each
completed ramp (``spawning_complete``: every change of the user count, a load profile's phases
too) and whenever the mix is read (web UI, end of run). A new test starts from nothing; a stats
reset keeps it (the users are the test's, not the statistics').
"""

from __future__ import annotations

from locust import events
from locust.runners import STATE_STOPPED, STATE_STOPPING, MasterRunner

_peaks: dict[str, int] = {}
_environment = None


def users_now(environment) -> dict[str, int]:
    """Users per class name now, or when the run stopped (like Locust's own report)."""
    runner = environment.runner
    if runner is None:
        return {}
    if (
        runner.state in (STATE_STOPPED, STATE_STOPPING)
        and runner.final_user_classes_count
    ):
        return dict(runner.final_user_classes_count)
    if isinstance(runner, MasterRunner):
        return dict(runner.reported_user_classes_count)
    return dict(runner.user_classes_count)


@events.init.add_listener
def _remember_environment(environment, **_kwargs) -> None:
    global _environment
    _environment = environment


@events.test_start.add_listener
def _forget(**_kwargs) -> None:
    _peaks.clear()


@events.spawning_complete.add_listener
def _after_a_ramp(**_kwargs) -> None:
    if _environment is not None:
        peaks(users_now(_environment))


def peaks(now: dict[str, int]) -> dict[str, int]:
    """The peak users per class name, counting ``now`` (users per class name at this moment)."""
    for name, users in now.items():
        if users > _peaks.get(name, 0):
            _peaks[name] = users
    return dict(_peaks)
