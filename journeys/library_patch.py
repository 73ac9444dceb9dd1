"""What a patch of a library's private reads, or an error naming it when the library lacks it.

``content_coding``, ``interim_answers`` and ``stale_connections`` replace private functions of
geventhttpclient (docs/architecture.md lists every such patch). Set on a version that renamed
one, the patch would add an attribute nothing calls and the fix would be quietly gone; read
through ``original``, it stops the tool at start, saying which private is missing and what to do.
"""

from __future__ import annotations


def original(owner: object, name: str, patch: str):
    """``owner``'s ``name``, which the module ``patch`` replaces; a RuntimeError naming both
    when ``owner`` has no such attribute."""
    try:
        return getattr(owner, name)
    except AttributeError:
        where = getattr(owner, "__qualname__", None) or getattr(
            owner, "__name__", owner
        )
        raise RuntimeError(
            f"{where} has no {name}, which journeys/{patch}.py patches: install the library "
            "versions requirements.txt names"
        ) from None
