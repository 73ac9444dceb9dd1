"""The journeys a run leaves out, and what left each out, so that an ``--slo-targets`` row of
one is "not run" rather than failed: a team keeps one targets file for the service and runs
parts of the mix (``--tags operator``, ``locust BudgetShopper``, the web UI's class picker).

The run's setup (``journeys.run_checks``) calls ``record`` at start with the journeys before
and after the tags filter the tasks; ``why_left_out`` then compares with the classes the test runs (after the tags, and
after the start form's pick). A journey any of them runs is in the run: its row judges it, and
fails when it saw nothing, as before::

    why_left_out("batch_report", environment)  # "left out by --tags customer"
"""

from __future__ import annotations

from dataclasses import dataclass

from journeys.tags import tags_given


@dataclass(frozen=True)
class Selection:
    """The journeys of every persona class, of the classes named on the command line (every
    class without names), of those after ``--tags``/``--exclude-tags``; what set them."""

    every: frozenset[str]
    named: frozenset[str]
    tagged: frozenset[str]
    tags: str
    classes: tuple[str, ...]


#: This process's selection, recorded at start (none: nothing is left out, as before).
_selection: list[Selection] = []


def journeys_of(classes) -> frozenset[str]:
    """The journeys (``journey_name``) the user ``classes`` run, their tasks as they stand now."""
    return frozenset(
        name
        for cls in classes
        for task in cls.tasks
        if (name := getattr(task, "journey_name", ""))
    )


def record(
    every: frozenset[str], named: frozenset[str], tagged: frozenset[str], options
) -> None:
    """At start: the journeys of every persona class, of the classes named (``journeys_of``
    before the tags filter their tasks) and of those the tags left (after)."""
    classes = tuple(getattr(options, "user_classes", None) or ())
    _selection[:] = [
        Selection(every, named, tagged, " ".join(tags_given(options)), classes)
    ]


def why_left_out(journey: str, environment) -> str | None:
    """What left ``journey`` out of this test (``left out by --tags customer``), or None when
    one of its classes runs it (or nothing was recorded: no setup of ours ran)."""
    if not _selection or journey in journeys_of(environment.user_classes):
        return None
    (selection,) = _selection
    if journey in selection.tagged:
        return "left out by the personas picked in the start form"
    if journey in selection.named:
        return f"left out by {selection.tags}"
    if journey in selection.every:
        return f"left out by the user classes named: {', '.join(selection.classes)}"
    return "no persona of the personas file runs it"
