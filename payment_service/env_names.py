"""``PAYMENT_*`` variables that no flag reads, named at start: a typo is otherwise ignored.

``PAYMENT_LATENCY=300`` (for ``PAYMENT_LATENCY_MS``) started the service without the fault and
without a word, as Locust ignores a ``LOCUST_*`` typo (the generator names those). A warning,
not a refusal: a Kubernetes service named ``payment`` sets ``PAYMENT_PORT_8000_TCP`` and the
like in every pod.
"""

from __future__ import annotations

from payment_contract.env_names import unread_names

#: Read by others: the token (no flag, so ``ps`` does not show it) and ``make run``'s port.
READ_ELSEWHERE = {"PAYMENT_INTERNAL_TOKEN", "PAYMENT_PORT"}


def unread_variables(environ: dict, known: set[str]) -> list[str]:
    """One line per ``PAYMENT_*`` name in ``environ`` that neither ``known`` nor
    ``READ_ELSEWHERE`` holds, with the name it likely means; never its value (a token)."""
    read = known | READ_ELSEWHERE
    return [
        f"payment service: {name} is set, but no flag reads it: it is ignored"
        + (f" (did you mean {meant}?)" if meant else "")
        + ". Run `python -m payment_service --help` for every variable."
        for name, meant in unread_names(environ, "PAYMENT_", read, read)
    ]
