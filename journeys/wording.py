"""Small wording helpers for messages people read."""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """``1 payment``, ``3 payments``: a count with its noun in the right number."""
    return f"{n} {noun}" + ("" if n == 1 else "s")
