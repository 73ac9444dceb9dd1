"""The web UI's start form as a ``before_request`` hook sees it: was it sent, and its fields
changed before Locust's view reads them. For the checks of a test's start (``run_checks``, the
load profile's and the SLO targets' fields, a test cut short) in one place, importing nothing
of ours.
"""

from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user
from werkzeug.datastructures import ImmutableMultiDict


def start_form_sent(web_ui) -> bool:
    """True in a ``before_request`` hook when the start form (or the edit of a running test) is
    posted to ``/swarm`` by a user Locust will let through (``--web-login`` checks come later)."""
    if request.method != "POST" or not request.path.endswith("/swarm"):
        return False
    return not (web_ui.web_login and not current_user.is_authenticated)


def refusal(environment, message: str):
    """The answer that refuses a posted start form (or edit): Locust's form shows ``message``
    and starts nothing."""
    return jsonify({"success": False, "message": message, "host": environment.host})


def set_form_values(name: str, values: list[str]) -> None:
    """In a ``before_request`` hook: the posted form's field ``name`` holds ``values`` instead,
    for Locust's view to read (werkzeug caches ``request.form`` and lets it be replaced)."""
    fields = [(k, v) for k, v in request.form.items(multi=True) if k != name]
    request.form = ImmutableMultiDict(fields + [(name, v) for v in values])


def restore_field_names(options) -> None:
    """In a ``before_request`` hook: the posted form's fields for ``options`` under their names.
    The form sends a custom parameter's field as the snake case of its title, which splits the
    digits (``slo_p50_ms`` comes as ``slo_p5_0ms``): Locust would drop the value unseen."""
    by_letters = {option.replace("_", ""): option for option in options}
    request.form = ImmutableMultiDict(
        [
            (by_letters.get(k.replace("_", ""), k), v)
            for k, v in request.form.items(multi=True)
        ]
    )
