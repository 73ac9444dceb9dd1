"""Where an option's value came from when not from the command line: its ``LOCUST_*`` variable or
a config file line, for messages about a bad value (argparse only names the flag).

No imports of our own but ``journeys.scrub`` and ``journeys.setup_stop`` (which imports only
``journeys.scrub``): the options (``journeys.options``) and the modules that check values after
parsing (``journeys.results.slo``) both use it.
"""

from __future__ import annotations

import sys

from journeys.scrub import scrub, secrets_from_env
from journeys.setup_stop import closed


def name_the_source_of_bad_values(parser) -> None:
    """Make argparse's "argument -u/--users: invalid int value: 'abc'" say where the value came
    from when it was not typed on the command line: the ``LOCUST_*`` variable or a config file.

    A value set in the environment or a config file long ago is easy to miss, and argparse only
    names the flag. Locust's own options and ours go through this one parser, so this covers all;
    and end it with the closing sentence of every stop before any traffic (``closed``).
    """
    _parsers[:] = [parser]
    stock_error = parser.error

    def error(message: str):
        source = _source_of(parser, _action_named_in(parser, message))
        if source:  # inside the message's last sentence, not after its full stop
            message = message.rstrip()
            stop = "." if message.endswith(".") else ""
            message = f"{message.removesuffix('.')} (set by {source}: fix the value or remove it){stop}"
        # the value is quoted (twice): the token mapped to the wrong variable by a CI job
        stock_error(scrub(closed(message), secrets_from_env()))

    parser.error = error


#: The parser Locust parsed the command line with (for ``source_of`` after parsing).
_parsers: list = []


def source_of(dest: str) -> str | None:
    """Where option ``dest`` got its value when not from the command line: the ``LOCUST_*``
    variable or config file line, for messages about values checked after parsing."""
    if not _parsers:
        return None
    return source_in(_parsers[0], dest)


def source_in(parser, dest: str) -> str | None:
    """``source_of`` in ``parser``: an early read of the command line (``--personas``)."""
    action = next((a for a in parser._actions if a.dest == dest), None)
    return _source_of(parser, action)


def file_set_by(message: str, source: str | None) -> str:
    """A bad file's ``message`` (its list of problems) with a last line naming where its path
    came from when not from the command line: the fix may be a value set long ago."""
    if not source:
        return message
    return f"{message}\n  The path is set by {source}: fix it there or remove it."


def _action_named_in(parser, message: str):
    """The option an argparse message is about ("argument -u/--users: ...")."""
    for action in parser._actions:
        if action.option_strings and message.startswith(
            f"argument {'/'.join(action.option_strings)}:"
        ):
            return action
    return None


def _source_of(parser, action) -> str | None:
    """The ``LOCUST_*`` variable or config file line that gave the option its value; None when
    it came from the command line (configargparse then ignores the other two)."""
    if action is None or _stuck_to_its_short_option(action):
        return None
    for source, settings in parser.get_source_to_settings_dict().items():
        for key, (setting_action, value) in settings.items():
            if setting_action is action and source == "environment_variables":
                return f"{key}={value!r}"
            if setting_action is action and source.startswith("config_file|"):
                return f"{key} = {value} in {source.partition('|')[2]}"
    return None


def _stuck_to_its_short_option(action) -> bool:
    """``-uabc``: the value typed after the option's short form, which configargparse does not
    see on the command line, so it names the ``LOCUST_*`` variable or config line it set aside
    as the value's source (``invalid int value: 'abc' (set by LOCUST_USERS='10')``)."""
    shorts = [
        name for name in action.option_strings if len(name) == 2 and name[1] != "-"
    ]
    for arg in sys.argv[1:]:
        if arg == "--":
            break
        if any(arg.startswith(name) and len(arg) > 2 for name in shorts):
            return True
    return False


def env_var_names() -> set[str]:
    """Every ``LOCUST_*`` variable an option (Locust's or ours) reads."""
    if not _parsers:
        return set()
    return {a.env_var for a in _parsers[0]._actions if getattr(a, "env_var", None)}
