"""Load profiles as schedules: the ``--profile`` options and the phases each profile runs.

A schedule is a list of phases on the run's timeline; each phase holds a target user count,
the rate to reach it, and is one row of the phase report::

    schedule = build_schedule(options)          # parsed Locust options
    schedule.index_at(12.0)                      # -> 1 (the phase running at 12 s), None at the end
    schedule.phases[1]                           # Phase("peak", 10.0, 20.0, users=50, spawn_rate=40)

Everything is scaled from ``--users``, ``--spawn-rate`` and ``--run-time``; the knobs only change
where the phases fall and how high they go. Pure logic, no Locust state: easy to test.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from locust.util.timespan import parse_timespan

from journeys.argtypes import finite_number, positive_float, positive_int
from journeys.wording import counted

PROFILES = ("steady", "spike", "soak", "step")
DEFAULT_PROFILE = "steady"
DOCS = "docs/profiles.md"

DEFAULT_SPIKE_MULTIPLIER = 5.0
#: The highest --spike-multiplier: a peak of 100 × the baseline leaves the baseline 1% of the
#: peak's users, too few to compare the peak with; more is a typo (100000 for 10), whose peak of
#: millions of users Locust would try to start at once. docs/profiles.md says why.
MAX_SPIKE_MULTIPLIER = 100.0
DEFAULT_SPIKE_AT = 1 / 3  # of the run time
DEFAULT_SPIKE_DURATION = 1 / 3
DEFAULT_SOAK_WINDOW = 0.2  # first and last 20% of the hold
DEFAULT_STEPS = 5  # --step-users defaults to users / 5


class ProfileConfigError(ValueError):
    """A profile that cannot run as configured; the message says what to change."""


@dataclass(frozen=True)
class Span:
    """A point or length on the timeline: a fraction of the run time, or seconds."""

    value: float
    fraction: bool

    def seconds(self, run_time: float) -> float:
        return self.value * run_time if self.fraction else self.value

    def __str__(self) -> str:
        return (
            f"{self.value:g} of the run time" if self.fraction else f"{self.value:g}s"
        )


def span(text: str) -> Span:
    """``0.25`` → a quarter of the run time; ``30``, ``30s``, ``2m``, ``1h30m`` → seconds."""
    try:
        number = float(text)
    except ValueError:
        try:
            return Span(float(parse_timespan(text)), fraction=False)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is neither a fraction of the run time (0.25) nor a time span (30s, 2m)"
            ) from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return Span(number, fraction=number < 1)


def span_text(text: str) -> str:
    """Validate a span option but keep it as text: options travel to workers as msgpack."""
    span(text)
    return text


def _span_of(value) -> Span | None:
    return (
        None
        if value is None
        else value
        if isinstance(value, Span)
        else span(str(value))
    )


def profile_name(text: str) -> str:
    name = text.strip().lower()
    if name not in PROFILES:
        raise argparse.ArgumentTypeError(
            f"unknown load profile {text!r}. Choose one of {', '.join(PROFILES)} "
            f"(steady is plain Locust; spike, soak and step need --run-time; see {DOCS})."
        )
    return name


def spike_multiplier(text: str) -> float:
    """``--spike-multiplier``: more than 1 (the cap needs ``-u``: ``_spike`` checks it)."""
    value = finite_number(text)
    if value <= 1:
        raise argparse.ArgumentTypeError(
            f"must be > 1 (the peak is users × this), got {text}"
        )
    return value


def add_options(parser) -> None:
    """Register ``--profile`` and its knobs.

    Locust 2.47 has a ``--profile`` of its own: a free-text label for grouping test runs (shown
    in the HTML report and the web UI's "Profile" field). This group takes the flag over
    (``conflict_handler="resolve"``): the value is still that label, now one of ``PROFILES``.
    """
    group = parser.add_argument_group(
        "load profile",
        f"How the user count moves over the run; see {DOCS}.",
        conflict_handler="resolve",
    )
    group.add_argument(
        "--profile",
        type=profile_name,
        choices=PROFILES,
        default=None,
        env_var="LOCUST_PROFILE",
        help="Load profile: steady (default, plain Locust), spike, soak or step. "
        "All but steady need --run-time.",
    )
    group.add_argument(
        "--spike-multiplier",
        type=spike_multiplier,
        default=DEFAULT_SPIKE_MULTIPLIER,
        env_var="LOCUST_SPIKE_MULTIPLIER",
        help="spike: peak users = users × this (default 5, at most 100).",
    )
    group.add_argument(
        "--spike-at",
        type=span_text,
        default=None,
        env_var="LOCUST_SPIKE_AT",
        help="spike: when the peak starts; a fraction of the run time (0.4) or a time span "
        "(30s, 2m). Default 1/3 of the run time.",
    )
    group.add_argument(
        "--spike-duration",
        type=span_text,
        default=None,
        env_var="LOCUST_SPIKE_DURATION",
        help="spike: how long the peak holds; a fraction or a time span (default 1/3 of the run time).",
    )
    group.add_argument(
        "--spike-spawn-rate",
        type=positive_float,
        default=None,
        env_var="LOCUST_SPIKE_SPAWN_RATE",
        help="spike: users started/stopped per second on the jump up and down "
        "(default: the whole jump in about one second).",
    )
    group.add_argument(
        "--soak-window",
        type=span_text,
        default=None,
        env_var="LOCUST_SOAK_WINDOW",
        help="soak: the first and last windows compared for drift; a fraction of the hold (0.2) "
        "or a time span (default 0.2).",
    )
    group.add_argument(
        "--step-users",
        type=positive_int,
        default=None,
        env_var="LOCUST_STEP_USERS",
        help="step: users added per step (default users / 5, at least 1).",
    )
    group.add_argument(
        "--step-duration",
        type=span_text,
        default=None,
        env_var="LOCUST_STEP_DURATION",
        help="step: how long each step holds; a time span (30s) or a fraction of the run time "
        "(default: the run time split evenly over the steps).",
    )


def profile_of(options) -> str:
    """The profile the options ask for; no ``--profile`` (or an empty one) means steady."""
    return (
        (getattr(options, "profile", None) or DEFAULT_PROFILE)
        if options
        else DEFAULT_PROFILE
    )


@dataclass(frozen=True)
class Phase:
    name: str
    start_s: float
    end_s: float
    users: int
    spawn_rate: float


@dataclass(frozen=True)
class Schedule:
    profile: str
    run_time: float | None  # None: steady without --run-time, runs until stopped
    phases: tuple[Phase, ...]

    def index_at(self, t: float) -> int | None:
        """The phase running ``t`` seconds into the run; None once the run time is over."""
        if self.run_time is not None and t >= self.run_time:
            return None
        for i in range(len(self.phases) - 1, -1, -1):
            if t >= self.phases[i].start_s:
                return i
        return 0

    def describe(self) -> str:
        users = " → ".join(str(p.users) for p in _dedupe_users(self.phases))
        run = f"{self.run_time:g}s" if self.run_time is not None else "until stopped"
        return f"{self.profile}: {users} users over {run} ({counted(len(self.phases), 'phase')})"


def _dedupe_users(phases: tuple[Phase, ...]) -> list[Phase]:
    out: list[Phase] = []
    for p in phases:
        if not out or out[-1].users != p.users:
            out.append(p)
    return out


def build_schedule(options) -> Schedule:
    """The schedule for the options' profile; ProfileConfigError when it cannot run."""
    profile = profile_of(options)
    users = int(getattr(options, "num_users", None) or 1)
    rate = float(getattr(options, "spawn_rate", None) or 1)
    run_time = getattr(options, "run_time", None) or None
    if profile == "steady":
        end = float(run_time) if run_time else math.inf
        return Schedule(profile, run_time, (Phase("steady", 0.0, end, users, rate),))
    if not run_time:
        raise ProfileConfigError(
            f"The {profile} profile needs a run time: its phases are laid out over it. "
            f"Add --run-time (e.g. -t 10m) or LOCUST_RUN_TIME, or use --profile steady. "
            f"See {DOCS}."
        )
    if profile in ("spike", "step") and getattr(options, "reset_stats", False):
        raise ProfileConfigError(
            f"--reset-stats resets Locust's statistics each time a {profile} phase finishes "
            "changing the user count, so the SLO verdict would judge only the last phase. Leave "
            f"--reset-stats out: the {profile} report judges each phase on its own (see {DOCS})."
        )
    builder = {"spike": _spike, "soak": _soak, "step": _step}[profile]
    phases = [
        p for p in builder(options, users, rate, float(run_time)) if p.end_s > p.start_s
    ]
    return Schedule(profile, float(run_time), tuple(phases))


def _whole(seconds: float) -> float:
    """Phase boundaries fall on whole seconds: Locust ticks the shape once a second."""
    return max(1.0, float(round(seconds)))


def _ramp_up(users: int, rate: float) -> float:
    """Seconds the first ramp takes; ramps under a second are not worth a phase of their own."""
    seconds = users / rate
    return float(math.ceil(seconds)) if seconds > 1 else 0.0


def _spike(options, users: int, rate: float, run_time: float) -> list[Phase]:
    peak = max(users + 1, round(users * options.spike_multiplier))
    multiplier = options.spike_multiplier
    if multiplier > MAX_SPIKE_MULTIPLIER:
        most = round(users * MAX_SPIKE_MULTIPLIER)
        raise ProfileConfigError(
            f"--spike-multiplier {multiplier:g} makes a peak of {_many(peak)} users "
            f"(-u {users} × {multiplier:g}); the multiplier is at most "
            f"{MAX_SPIKE_MULTIPLIER:g} (a peak of {most:,} users from -u {users}). Lower "
            f"--spike-multiplier (default {DEFAULT_SPIKE_MULTIPLIER:g}), or raise -u for a "
            f"bigger baseline. See {DOCS}."
        )
    spike_at = _span_of(options.spike_at) or Span(DEFAULT_SPIKE_AT, True)
    at = _whole(spike_at.seconds(run_time))
    duration = _whole(
        (
            _span_of(options.spike_duration) or Span(DEFAULT_SPIKE_DURATION, True)
        ).seconds(run_time)
    )
    jump_rate = options.spike_spawn_rate or float(peak - users)
    ramp = _ramp_up(users, rate)
    if at + duration >= run_time:
        raise ProfileConfigError(
            f"The spike window ({at:g}s + {duration:g}s) does not end before the run time "
            f"({run_time:g}s), so nothing would show the recovery. Start it earlier "
            f"(--spike-at), shorten it (--spike-duration) or lengthen --run-time."
        )
    if ramp >= at:
        longer = (
            f", lengthen --run-time (the spike starts at {spike_at.value:.2g} of it)"
            if spike_at.fraction
            else ""
        )
        raise ProfileConfigError(
            f"The spike starts at {at:g}s, before the ramp-up to {counted(users, 'user')} ends "
            f"({counted(users, 'user')} at {rate:g}/s take {ramp:g}s), so there would be no "
            f"baseline. Raise --spawn-rate{longer} or move --spike-at later."
        )
    _check_the_jumps(users, peak, jump_rate, duration, run_time - at - duration)
    return [
        Phase("ramp-up", 0.0, ramp, users, rate),
        Phase("baseline", ramp, at, users, rate),
        Phase("peak", at, at + duration, peak, jump_rate),
        Phase("recovery", at + duration, run_time, users, jump_rate),
    ]


def _many(count: int) -> str:
    """``10,000,000``; a count too long to read (``--spike-multiplier 1e300``) as ``1.0e+302``."""
    return f"{count:,}" if count < 10**12 else f"{count:.1e}"


def _check_the_jumps(
    users: int, peak: int, jump_rate: float, peak_s: float, recovery_s: float
) -> None:
    """Users still arriving (or leaving) when a phase ends never hold its load: the report
    would compare a peak of 10 users that peaked at 5 (as ``_step`` refuses for its stairs)."""
    jump = (peak - users) / jump_rate
    for way, phase, seconds in (
        (f"The jump from {users} to {peak}", "peak", peak_s),
        (f"The way back from {peak} to {users}", "recovery", recovery_s),
    ):
        if jump >= seconds:
            raise ProfileConfigError(
                f"{way} users at {jump_rate:g}/s (--spike-spawn-rate) takes {jump:g}s, but the "
                f"{phase} lasts {seconds:g}s: the users would still be "
                f"{'arriving' if phase == 'peak' else 'leaving'} when it ends, and the {phase} "
                "would never hold its load. Raise --spike-spawn-rate, lower --spike-multiplier "
                "or lengthen the phase (--spike-duration, --spike-at, --run-time)."
            )


def _soak(options, users: int, rate: float, run_time: float) -> list[Phase]:
    ramp = _ramp_up(users, rate)
    hold = run_time - ramp
    window = _whole(
        (_span_of(options.soak_window) or Span(DEFAULT_SOAK_WINDOW, True)).seconds(hold)
    )
    if hold <= 0:
        raise ProfileConfigError(
            f"The run time ({run_time:g}s) ends before the ramp-up does ({counted(users, 'user')} "
            f"at {rate:g}/s take {ramp:g}s): the load would never hold. Lengthen --run-time or "
            "raise --spawn-rate."
        )
    if window * 2 > hold:
        raise ProfileConfigError(
            f"The soak windows ({window:g}s first and last) do not fit in the {hold:g}s the load "
            f"holds after a {ramp:g}s ramp-up. Shorten --soak-window or lengthen --run-time."
        )
    return [
        Phase("ramp-up", 0.0, ramp, users, rate),
        Phase("first", ramp, ramp + window, users, rate),
        Phase("middle", ramp + window, run_time - window, users, rate),
        Phase("last", run_time - window, run_time, users, rate),
    ]


def _step(options, users: int, rate: float, run_time: float) -> list[Phase]:
    step_users = options.step_users or max(1, round(users / DEFAULT_STEPS))
    steps = math.ceil(users / step_users)
    if steps < 2:
        raise ProfileConfigError(
            f"--step-users {step_users} reaches all {counted(users, 'user')} (-u) in one step: there would "
            f"be no stairs and nothing to compare. Lower --step-users (e.g. {max(1, users // 5)}) "
            "or raise -u."
        )
    if options.step_duration:
        duration = _whole(_span_of(options.step_duration).seconds(run_time))
    else:
        duration = max(1.0, float(math.floor(run_time / steps)))
    if duration * steps > run_time + 1e-9:
        fit = int(run_time // duration)
        raise ProfileConfigError(
            f"{steps} steps of {duration:g}s (up to {users} users, {step_users} per step) need "
            f"{duration * steps:g}s, but the run time is {run_time:g}s: only {fit} would run and "
            f"the top of the stairs would never be reached. Lengthen --run-time, raise "
            f"--step-users or shorten --step-duration."
        )
    climb = step_users / rate
    if climb >= duration:
        raise ProfileConfigError(
            f"Each step adds {step_users} users at {rate:g}/s (--spawn-rate), which takes "
            f"{climb:g}s, but a step lasts {duration:g}s: the users would still be arriving when "
            "the next step starts, and no step would hold its load. Raise --spawn-rate, lower "
            "--step-users or lengthen the steps (--step-duration, --run-time)."
        )
    if options.step_duration:  # stairs of that length; the top step holds to the end
        starts = [k * duration for k in range(steps)]
    else:  # the run time split evenly, on whole seconds: steps differ by 1 s at most
        starts = [float(round(k * run_time / steps)) for k in range(steps)]
    ends = [*starts[1:], run_time]
    return [
        Phase(f"step {k + 1}", start, end, min((k + 1) * step_users, users), rate)
        for k, (start, end) in enumerate(zip(starts, ends))
    ]
