"""``PAYMENT_*`` variables that no flag reads, named at start: a typo is otherwise ignored.

``PAYMENT_LATENCY=300`` (for ``PAYMENT_LATENCY_MS``) started the service without the fault and
without a word, as Locust ignores a ``LOCUST_*`` typo (the generator names those). A warning,
not a refusal: a Kubernetes service named ``payment`` sets ``PAYMENT_PORT_8000_TCP`` and the
like in every pod.
"""

from __future__ import annotations

import difflib
import re

#: Read by others: the token (no flag, so ``ps`` does not show it) and ``make run``'s port.
READ_ELSEWHERE = {"PAYMENT_INTERNAL_TOKEN", "PAYMENT_PORT"}
KUBERNETES_SERVICE_LINK = re.compile(r"PAYMENT_(SERVICE_HOST|SERVICE_PORT|PORT)(_|$)")


def unread_variables(environ: dict, known: set[str]) -> list[str]:
    """One line per ``PAYMENT_*`` name in ``environ`` that neither ``known`` nor
    ``READ_ELSEWHERE`` holds, with the name it likely means; never its value (a token)."""
    lines = []
    for name in sorted(environ):
        if (
            not name.startswith("PAYMENT_")
            or name in known | READ_ELSEWHERE
            or KUBERNETES_SERVICE_LINK.match(name)
        ):
            continue
        # compared without the shared "PAYMENT_", which makes every name look close
        close = difflib.get_close_matches(
            name[8:], sorted(k[8:] for k in known | READ_ELSEWHERE), n=1, cutoff=0.75
        )
        hint = f" (did you mean PAYMENT_{close[0]}?)" if close else ""
        lines.append(
            f"payment service: {name} is set, but no flag reads it: it is ignored{hint}. "
            "Run `python -m payment_service --help` for every variable."
        )
    return lines
