"""Fault injection for resilience tests: latency, 5xx, stalls, garbage bodies, rate limits, bad reports.

All knobs are off by default. They are set at start (flags / ``PAYMENT_*`` env) and can be changed
while the service runs with ``PUT /internal/faults`` (token required), so one run can go through
healthy → faulty → healthy phases.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from dataclasses import asdict, dataclass, fields, replace

ERROR_PHASES = ("before", "after", "mixed")


#: The longest latency or stall a knob may add: longer is no test, and asyncio cannot sleep 1e300 s.
MAX_DELAY_MS = 3_600_000
#: Below this a token bucket would ask for a Retry-After beyond any client's patience (1e-320/s
#: overflows it); 0 turns the limit off.
MIN_RATE_LIMIT_RPS = 0.01
#: Ten years either way: a clock further off would stamp payments past the year 9999.
MAX_CLOCK_OFFSET_S = 315_360_000
_SHARE = (0, 1, "a share from 0 to 1, e.g. 0.05")
_DELAY = (0, MAX_DELAY_MS, f"milliseconds from 0 to {MAX_DELAY_MS} (an hour)")

#: (lowest, highest, what) of each numeric knob: the one place their ranges live, for the flags,
#: their env twins and ``PUT /internal/faults`` alike.
RANGES: dict[str, tuple[float, float, str]] = {
    "latency_ms": _DELAY,
    "jitter_ms": _DELAY,
    "error_rate": _SHARE,
    "stall_rate": _SHARE,
    "stall_s": (
        0,
        MAX_DELAY_MS / 1000,
        f"seconds from 0 to {MAX_DELAY_MS // 1000} (an hour)",
    ),
    "garbage_rate": _SHARE,
    "rate_limit_rps": (0, math.inf, f"0 (off) or requests/s from {MIN_RATE_LIMIT_RPS}"),
    "report_latency_ms": _DELAY,
    "clock_offset_s": (
        -MAX_CLOCK_OFFSET_S,
        MAX_CLOCK_OFFSET_S,
        f"seconds from -{MAX_CLOCK_OFFSET_S} to {MAX_CLOCK_OFFSET_S} (ten years either way)",
    ),
}


def knob_problem(name: str, value: object) -> str | None:
    """Why ``value`` cannot be the numeric knob ``name`` (naming it and its range), or None."""
    low, high, what = RANGES[name]
    number = _real(value)
    if (
        number is None
        or not low <= number <= high
        or (name == "rate_limit_rps" and 0 < number < MIN_RATE_LIMIT_RPS)
    ):
        return f"{name} must be {what} (got {value!r:.40})"
    return None


def _real(value: object) -> float | None:
    """``value`` as a finite float, or None (a bool, a string, NaN, inf, an int beyond floats)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class FaultConfigError(ValueError):
    """A fault knob with a value it cannot take; the message names the knob and the valid range,
    ``knob`` is the first bad one (the error's ``param``)."""

    def __init__(self, message: str, knob: str | None = None) -> None:
        super().__init__(message)
        self.knob = knob


@dataclass(frozen=True, slots=True)
class Faults:
    """The fault knobs (see ``docs/contract.md``)."""

    latency_ms: float = 0.0  # added to every /pay answer
    jitter_ms: float = 0.0  # plus a uniform 0..jitter_ms
    error_rate: float = 0.0  # share of /pay answered 500/503
    error_phase: str = "mixed"  # before: nothing stored; after: payment stored, answer lost; mixed: either
    # share of /pay that store the payment then answer only after stall_s
    stall_rate: float = 0.0
    stall_s: float = 30.0
    garbage_rate: float = 0.0  # share of /pay answers whose body is garbage (non-JSON, truncated, wrong shape)
    # /pay requests per second allowed; above it 429 + Retry-After (0 = off)
    rate_limit_rps: float = 0.0
    report_latency_ms: float = 0.0  # added to every report
    # reports leave out one succeeded payment (tests reconciliation)
    report_tamper: bool = False
    # a replay charges again under a new id (tests duplicate checks)
    replay_charges: bool = False
    # the service's clock runs this far ahead (negative: behind) of the host's
    clock_offset_s: float = 0.0

    def __post_init__(self) -> None:
        problems = {
            name: problem
            for name in RANGES
            if (problem := knob_problem(name, getattr(self, name)))
        }
        if self.error_phase not in ERROR_PHASES:
            problems["error_phase"] = (
                f"error_phase must be one of {', '.join(ERROR_PHASES)} (got {self.error_phase!r})"
            )
        for name in ("report_tamper", "replay_charges"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                problems[name] = f"{name} must be true or false (got {value!r})"
        if problems:
            raise FaultConfigError("; ".join(problems.values()), next(iter(problems)))

    def updated(self, changes: dict) -> Faults:
        """A copy with ``changes`` applied; unknown knobs and bad values raise FaultConfigError."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise FaultConfigError(
                f"unknown fault knob(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                unknown[0],
            )
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def active(self) -> list[str]:
        """The knobs that change answers (``error_phase`` and ``stall_s`` only qualify others)."""
        default = Faults()
        qualifiers = {"stall_s": self.stall_rate, "error_phase": self.error_rate}
        return [
            f"{k}={v}"
            for k, v in self.as_dict().items()
            if v != getattr(default, k) and qualifiers.get(k, True)
        ]


class FaultInjector:
    """Rolls the dice for each request against the current ``Faults``."""

    def __init__(self, faults: Faults, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.set(faults)

    def set(self, faults: Faults) -> None:
        """Switch to new knobs (the rate-limit bucket starts full)."""
        self.faults = faults
        self._tokens = self._bucket_size()
        self._refilled = time.monotonic()

    def _bucket_size(self) -> float:
        """A second's worth of requests, and at least one (so 0.5/s lets one through every 2 s)."""
        return max(1.0, self.faults.rate_limit_rps)

    def now(self) -> dt.datetime:
        """The service's clock: UTC now, off by ``clock_offset_s``."""
        return dt.datetime.now(dt.UTC) + dt.timedelta(
            seconds=self.faults.clock_offset_s
        )

    def delay_s(self) -> float:
        f = self.faults
        return (
            f.latency_ms + (self.rng.uniform(0, f.jitter_ms) if f.jitter_ms else 0.0)
        ) / 1000

    def error_phase(self) -> str | None:
        """``before`` or ``after`` when this request gets a 5xx, else None."""
        f = self.faults
        if not f.error_rate or self.rng.random() >= f.error_rate:
            return None
        return (
            self.rng.choice(("before", "after"))
            if f.error_phase == "mixed"
            else f.error_phase
        )

    def stall(self) -> bool:
        return (
            bool(self.faults.stall_rate) and self.rng.random() < self.faults.stall_rate
        )

    def garbage(self) -> str | None:
        """Which garbage to send instead of the body (``text``, ``truncated``, ``wrong_shape``), or None."""
        if (
            not self.faults.garbage_rate
            or self.rng.random() >= self.faults.garbage_rate
        ):
            return None
        return self.rng.choice(("text", "truncated", "wrong_shape"))

    def rate_limited(self) -> float | None:
        """Seconds to wait when over the rate limit (token bucket, burst of one second), else None."""
        rps = self.faults.rate_limit_rps
        if not rps:
            return None
        now = time.monotonic()
        self._tokens = min(
            self._bucket_size(), self._tokens + (now - self._refilled) * rps
        )
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return (1 - self._tokens) / rps
