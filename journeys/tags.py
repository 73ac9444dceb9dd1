"""Locust tags as this tool sets them: each journey's task carries its journey tags (e.g.
``checkout``, ``probes``), its persona's role and the persona's name, so ``--tags`` picks any."""

from __future__ import annotations

import logging

from journeys.wording import counted

#: Locust's warning for each journey and persona a tag filter leaves without tasks.
LOCUSTS_NO_TASKS_LEFT = "had no tasks left after filtering"


class _NoTasksLeftUnsaid(logging.Filter):
    """Drops Locust's "... had no tasks left after filtering, instantiating it will fail!":
    one line per journey and persona a tag leaves out (14 for ``--tags operator``), alarming
    and harmless here, as the run drops those personas before any user (``run_checks``);
    ``tag_summary`` says which personas run instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return LOCUSTS_NO_TASKS_LEFT not in record.getMessage()


def quiet_locusts_tag_warnings() -> None:
    """Install the filter on the root logger, which Locust's warning goes through (once)."""
    root = logging.getLogger()
    if not any(isinstance(f, _NoTasksLeftUnsaid) for f in root.filters):
        root.addFilter(_NoTasksLeftUnsaid())


def tags_given(options) -> list[str]:
    """``["--tags a b", "--exclude-tags c"]``: the tag options this run was given."""
    return [
        f"{flag} {' '.join(values)}"
        for flag, values in (
            ("--tags", options.tags),
            ("--exclude-tags", options.exclude_tags),
        )
        if values
    ]


def no_journey_left(options) -> str:
    """Why a run whose tags are all known has nothing to run, and the two ways out."""
    return (
        f"No persona has a journey left after {' '.join(tags_given(options))}: ask for "
        "other tags (--tags, LOCUST_TAGS) or exclude fewer (--exclude-tags, "
        "LOCUST_EXCLUDE_TAGS); the README's journey table lists the tags."
    )


def tag_summary(options, classes, running) -> str | None:
    """``--tags operator: 2 of the 9 personas have journeys left and run: ...``, or None
    without tag options."""
    given = tags_given(options)
    if not given:
        return None
    names = sorted(cls.persona.name for cls in running if hasattr(cls, "persona"))
    total = sum(1 for cls in classes if hasattr(cls, "persona"))
    verb = (
        "has journeys left and runs"
        if len(names) == 1
        else "have journeys left and run"
    )
    return (
        f"{' '.join(given)}: {len(names)} of the {counted(total, 'persona')} {verb}: "
        f"{', '.join(names)}"
    )


def _tags_of(cls) -> set[str]:
    return {
        tag
        for journey in cls.tasks
        for task in getattr(journey, "tasks", [journey])
        for tag in getattr(task, "locust_tag_set", ())
    }


def unknown_tags(classes, options, every_class=()) -> str | None:
    """A message naming ``--tags``/``--exclude-tags`` values no journey of the run's
    ``classes`` carries, with the tags there are (and the classes left out of the run,
    ``every_class`` but not ``classes``, that carry them); None when all are known. Locust
    would silently run (or skip) the rest."""
    personas = {
        cls.persona.name: cls.persona.role for cls in classes if hasattr(cls, "persona")
    }
    class_names = {cls.__name__ for cls in classes if hasattr(cls, "persona")}
    known = set().union(*map(_tags_of, classes))
    left_out = [cls for cls in every_class if cls not in classes]
    for flag, given in (
        ("--tags", options.tags),
        ("--exclude-tags", options.exclude_tags),
    ):
        unknown = sorted(set(given or ()) - known)
        if unknown:
            roles = sorted(set(personas.values()) & known)
            journeys = sorted(known - set(personas) - set(roles))
            return (
                f"{flag}: no journey carries the tag {', '.join(map(repr, unknown))}. Tags are "
                f"roles ({', '.join(roles)}), journey tags ({', '.join(journeys)}) and persona "
                f"names ({', '.join(sorted(set(personas) & known))})."
                + (
                    f" Several tags are separate words on the command line ({flag} customer "
                    "operator) and a list in a LOCUST_* variable or config line: [customer, "
                    "operator]."
                    if any(" " in tag or "," in tag for tag in unknown)
                    else ""
                )
                + "".join(
                    f" {tag} is a persona class, not a tag: name classes before {flag}, which "
                    f"takes every word after it (locust {tag} {flag} ...)."
                    for tag in unknown
                    if tag in class_names
                )
                + "".join(
                    f" {tag!r} is a tag of {', '.join(names)}, left out of this run by the "
                    f"classes named: name {'it' if len(names) == 1 else 'them'} too, or no "
                    "classes to run every persona."
                    for tag in unknown
                    if (names := [c.__name__ for c in left_out if tag in _tags_of(c)])
                )
            )
    return None
