"""A load shape of user-count plateaus, for memory per user: ``BENCH_STEPS="1:15,1000:20,5000:30"``.

Each ``users:seconds`` pair holds that many users for that long (spawned at ``BENCH_SPAWN_RATE``
users/s, default 500), then the run stops. Loaded as an extra locustfile by ``bench/memory.py``.
"""

from __future__ import annotations

import os

from locust import LoadTestShape


def _steps(text: str) -> list[tuple[int, float]]:
    return [
        (int(u), float(s))
        for u, s in (part.split(":") for part in text.split(",") if part)
    ]


class Plateaus(LoadTestShape):
    steps = _steps(os.environ.get("BENCH_STEPS", "1:10"))
    spawn_rate = float(os.environ.get("BENCH_SPAWN_RATE") or 500)

    def tick(self):
        elapsed = self.get_run_time()
        for users, seconds in self.steps:
            if elapsed < seconds:
                return users, self.spawn_rate
            elapsed -= seconds
        return None
