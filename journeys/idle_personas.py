"""Personas the run's user count leaves without a user: they send nothing, and the verdict
would pass without a word about them (``-u 1`` with nine personas runs one of them).

Locust hands out users by weight, in the order of ``locust.dispatch``'s generator: the first N
it yields are the classes of a run with N users, on one process or spread over workers alike.
"""

from __future__ import annotations

from locust.dispatch import _kl_generator

from journeys.wording import counted

#: How far to look for the user count that gives every persona a user.
MOST_USERS_LOOKED_AT = 100_000
#: Personas named in the warning; a file of 1,000 made one line of 6,000 characters.
MOST_NAMED = 10


def idle_personas(classes, users: int, said: str | None = None) -> str | None:
    """A warning naming the persona classes ``users`` users (at most, at once) leave without
    one, else None; ``said`` is how the run's options put that count (``-u 2 (10 at the
    profile's most)``)."""
    names = {
        cls.__name__: getattr(getattr(cls, "persona", None), "name", cls.__name__)
        for cls in classes
    }
    running, every = _users_needed(classes, users)
    idle = sorted(names[name] for name in names if name not in running)
    if not idle:
        return None
    they = "it sends" if len(idle) == 1 else "they send"
    shown = ", ".join(idle[:MOST_NAMED])
    if len(idle) > MOST_NAMED:
        shown += (
            f", and {len(idle) - MOST_NAMED} more (the persona mix lists every persona "
            "and its users)"
        )
    enough = (
        f"from -u {every} on every persona gets one"
        if every
        else "raise -u, or leave the lightest personas out"
    )
    return (
        f"{said or f'-u {users}'} leaves {len(idle)} of the {counted(len(names), 'persona')} "
        f"without a user, so {they} nothing: {shown}. Locust shares the users by "
        f"weight: {enough}."
    )


def _users_needed(classes, users: int) -> tuple[set[str], int | None]:
    """The classes the first ``users`` users go to, and the user count from which every class
    has one (None beyond ``MOST_USERS_LOOKED_AT``)."""
    order = _kl_generator([(cls.__name__, cls.weight) for cls in classes])
    running: set[str] = set()
    seen: set[str] = set()
    for n, name in enumerate(order, start=1):
        seen.add(name)
        if n <= users:
            running.add(name)
        if len(seen) == len(classes):
            return running, n  # (more users than n: running already holds them all)
        if n >= MOST_USERS_LOOKED_AT:
            return running, None
    return running, None
