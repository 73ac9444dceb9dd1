"""Small wording helpers for messages people read."""

from __future__ import annotations

import math
import os
import re
from decimal import Decimal
from typing import Any


def counted(n: int, noun: str) -> str:
    """``1 payment``, ``3 payments``: a count with its noun in the right number."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


#: The contract's error and decline codes: lower case and ``_``, no digits (so no ids).
_CODE = re.compile(r"[a-z][a-z_]{0,39}")


def unreadable(folder: str | None = None) -> str:
    """Why this user cannot read a file and the fix, said after the file's name (``{path}:``,
    ``cannot read {path}:``): a file mounted into a container keeps its host mode and owner
    (0600 under a umask of 077), a folder too (0700). ``folder``: the first one on the file's
    way this user may not open, when that is the cause. One wording for every file the user
    names (personas, ``--slo-targets``, ``--tls-cert``/``--tls-key``, ``--baseline``)."""
    what = f"open the folder {folder} on its way" if folder else "read it"
    return (
        f"this user (uid {os.getuid()}) may not {what}. Make it readable: chmod a+r on the "
        "file and a+rX on its folders (in Docker, for the container's user), or run with --user"
    )


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


#: A share shows 4 decimals (``0.0123``, ``1.23%``) unless its target needs more, up to this.
SHARE_DECIMALS, MOST_SHARE_DECIMALS = 4, 12


def share_decimals(target: float) -> int:
    """Decimals for a share judged against ``target``: 4, or more for a target below 0.1 % so
    it keeps two significant digits. A 99.999 % target is ``0.000010`` (``0.0010%``), not
    ``0.0000`` (``0.00%``), and the figure judged against it shows as many."""
    if not 0 < target < 0.001:
        return SHARE_DECIMALS
    return min(MOST_SHARE_DECIMALS, 1 - math.floor(math.log10(target)))


def plain(number: float) -> str:
    """``number`` as people and scripts read it, without an exponent: ``0.01``, ``0.00001``
    (``:g`` writes ``1e-05``)."""
    text = f"{number:g}"
    return text if "e" not in text else format(Decimal(repr(number)), "f")


def aligned(rows: list[list[str]], minimums: list[int], left: int) -> list[str]:
    """Text table lines: each column as wide as its longest cell (at least its minimum) and one
    space between columns, so no count, however large, runs into the next; the first ``left``
    columns (names) left-aligned, the others (numbers) right-aligned."""
    widths = [max(m, *(len(row[i]) for row in rows)) for i, m in enumerate(minimums)]
    return [
        " ".join(
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        )
        for row in rows
    ]
