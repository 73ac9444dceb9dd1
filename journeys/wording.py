"""Small wording helpers for messages people read."""

from __future__ import annotations

import re
from typing import Any


def counted(n: int, noun: str) -> str:
    """``1 payment``, ``3 payments``: a count with its noun in the right number."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


#: The contract's error and decline codes: lower case and ``_``, no digits (so no ids).
_CODE = re.compile(r"[a-z][a-z_]{0,39}")


def quotable_code(code: Any) -> bool:
    """Whether a message may quote ``code`` as the service sent it: a contract-like identifier.
    A service could put anything there (a card number, a timestamp, markup), and Locust's
    failures table gets one row per distinct message."""
    return isinstance(code, str) and _CODE.fullmatch(code) is not None


def named_differences(
    masters: dict[str, str],
    workers: dict[str, str],
    changed: str,
    most: int | None = None,
) -> str:
    """Which names of two ``{name: fingerprint}`` maps differ: ``changed`` (on both sides, other
    fingerprints), ``only on the master``, ``only on the worker``; each list cut to ``most``
    names and "and N more". Empty when they agree."""
    parts = []
    for label, names in (
        (
            changed,
            sorted(
                n for n in masters.keys() & workers.keys() if masters[n] != workers[n]
            ),
        ),
        ("only on the master", sorted(masters.keys() - workers.keys())),
        ("only on the worker", sorted(workers.keys() - masters.keys())),
    ):
        if names:
            shown = names if most is None else names[:most]
            more = (
                f" and {len(names) - len(shown)} more"
                if len(names) > len(shown)
                else ""
            )
            parts.append(f"{label}: {', '.join(shown)}{more}")
    return "; ".join(parts)
