"""Master: workers that went missing mid-test and came back (``workers_missing``).

Locust marks a worker "missing" when its heartbeats stop for about 3 s (SIGSTOP, a paused VM, a
network cut) and "running" again when they come back. Its users sent nothing meanwhile, and its
requests in flight are timed with the pause, so the load was lower than asked; yet its final
report comes, so nothing is lost and ``workers_lost`` does not see it. Locust has no event for
this: a greenlet looks at the workers' states twice a second while the test runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gevent
from locust import events
from locust.runners import STATE_MISSING, MasterRunner

from journeys.results.distributed import lost_workers, run_length_s, workers
from journeys.wording import counted

POLL_S = 0.5


@dataclass
class Gap:
    """Master: a worker without heartbeat from ``from_s`` to ``to_s`` (None: until the end)."""

    worker: str
    from_s: float
    users: int
    to_s: float | None = None


_gaps: list[Gap] = []
#: each worker's users when last seen running (Locust clears them when it goes missing)
_users: dict[str, int] = {}
_watch: list[gevent.Greenlet] = []


def _look(runner: MasterRunner) -> None:
    open_gaps = {g.worker: g for g in _gaps if g.to_s is None}
    at_s = time.monotonic() - (workers.started or time.monotonic())
    for client in list(runner.clients.values()):
        if client.id not in workers.reporting:
            continue  # not one of this test's workers (one missing since an earlier test)
        gap = open_gaps.get(client.id)
        if client.state != STATE_MISSING:
            _users[client.id] = sum((client.user_classes_count or {}).values())
            if gap is not None:
                gap.to_s = at_s
        elif gap is None:
            _gaps.append(Gap(client.id, at_s, _users.get(client.id, 0)))


def _watch_workers(runner: MasterRunner) -> None:
    while True:
        _look(runner)
        gevent.sleep(POLL_S)


@events.test_start.add_listener
def _start_watching(environment, **_kwargs) -> None:
    runner = environment.runner
    if not isinstance(runner, MasterRunner):
        return
    _stop_watching()
    _gaps.clear()
    _users.clear()
    _watch.append(gevent.spawn(_watch_workers, runner))


@events.test_stopping.add_listener
def _stop_watching(**_kwargs) -> None:
    while _watch:
        _watch.pop().kill(block=False)


def missing_workers(environment) -> list[Gap]:
    """Workers of this test that went missing while it ran and were not lost (their final
    report came): first gap first, one per worker."""
    lost = set(lost_workers(environment))
    first: dict[str, Gap] = {}
    for gap in _gaps:
        if gap.worker not in lost and gap.worker not in first:
            first[gap.worker] = gap
    return list(first.values())


def missing_workers_message(gaps: list[Gap]) -> str:
    """The ``workers_missing`` check's message: ``Worker w1 sent no heartbeat for seconds:
    Locust counted it missing from 3 s to 8 s of the 10 s run (frozen, paused or cut off);
    its 2 users sent nothing then, ...``."""
    ran = run_length_s()
    run = f"the {ran:.0f} s run" if ran is not None else "the run"

    def span(g: Gap) -> str:
        end = f"{g.to_s:.0f} s" if g.to_s is not None else "the end"
        return f"from {g.from_s:.0f} s to {end}"

    one = len(gaps) == 1
    its, it = ("its", "it") if one else ("their", "them")
    if one:
        who = f"Worker {gaps[0].worker}"
        when = f"{span(gaps[0])} of {run}"
    else:
        who = counted(len(gaps), "worker")
        when = f"in {run} ({', '.join(f'{g.worker} {span(g)}' for g in gaps)})"
    users = counted(sum(g.users for g in gaps), "user")
    back = "it" if one else "they"
    return (
        f"{who} sent no heartbeat for seconds: Locust counted {it} missing {when} (frozen, "
        f"paused or cut off); {its} {users} sent nothing then, so the load was lower than "
        f"asked; {back} came back, and {its} journeys are counted (run)"
    )
