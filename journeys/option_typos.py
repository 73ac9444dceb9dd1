"""An option typed with one dash (``-users 5``, ``-run-time 5m``, ``-x``) named as an unknown option.

argparse reads ``-users`` as ``-u sers`` ("invalid int value: 'sers'", blamed on the config file
that sets ``users``), ``-headless`` as ``-h eadless``, and sets an unknown ``-x`` aside so that
the word after it became a user class ("unknown persona class '5'"). None of those names the
typo. When parsing fails, such a word on the command line is named instead, with the option it
likely means::

    locust: error: unknown option -users (did you mean --users?): a long option takes two dashes. ...
"""

from __future__ import annotations

import difflib
import re
import sys

#: One dash and a word, maybe with ``=value``: ``-users``, ``-x``, ``-users=5``; not ``-5`` (a
#: negative number) nor ``--users``.
_ONE_DASH_WORD = re.compile(r"(-[A-Za-z][A-Za-z0-9_-]*)(=.*)?")


def did_you_mean(option: str, known: list[str], cutoff: float = 0.6) -> str:
    """`` (did you mean --junit-xml?)`` for the option of ``known`` closest to ``option``; ""
    when none is as close as ``cutoff`` (difflib's ratio)."""
    close = difflib.get_close_matches(option, known, n=1, cutoff=cutoff)
    return f" (did you mean {close[0]}?)" if close else ""


def one_dash_typo(parser, args: list[str]) -> str | None:
    """The first word of ``args`` that is an option typed with one dash, as a message naming it
    and the option likely meant; None when there is none. A known short option with its value
    stuck to it (``-u5``, ``-t5s``, ``-flocustfile``) is no typo, unless with a second dash it is
    a long option's name or very close to one of its first letter (``-users``, ``-spawnrate``)."""
    shorts = {name for name in parser._option_string_actions if name[1] != "-"}
    longs = [name for name in parser._option_string_actions if name.startswith("--")]
    for arg in args:
        if arg == "--":
            break
        word = _ONE_DASH_WORD.fullmatch(arg)
        name = word and word.group(1)
        if not name or name in shorts:
            continue
        hint = did_you_mean(f"-{name}", longs) if len(name) > 2 else ""
        if name[:2] in shorts:  # -t5s: a short option and its value (-tags: a typo)
            same_letter = [long for long in longs if long[2] == name[1]]
            hint = did_you_mean(f"-{name}", same_letter, cutoff=0.8)
            if not hint:
                continue
        dashes = ": a long option takes two dashes" if hint else ""
        return (
            f"unknown option {name}{hint}{dashes}. Locust's options are in locust --help, this "
            "tool's in the README's tables"
        )
    return None


def name_one_dash_typos(parser) -> None:
    """When parsing fails, say so of an option typed with one dash (``one_dash_typo``) rather
    than what argparse made of it."""
    error = parser.error

    def one_dash_error(message: str):
        error(one_dash_typo(parser, sys.argv[1:]) or message)

    parser.error = one_dash_error
