"""The report endpoint: the shape its answer must have before anyone reconciles
against it (the API client's report for the operator journey, and ``--reconcile-run``)."""

from __future__ import annotations

import re
from typing import Any

#: an ISO 4217 code: str.isupper() also passed "<B>", "=A1" and ESC "[J" (only their letters
#: are judged), which the failure messages, the log and the terminal then quoted
_CURRENCY = re.compile(r"[A-Z]{3}")


def report_shape_problem(report: Any) -> str | None:
    """What makes a 200 report break the contract (without quoting its values), or None.

    ``totals`` maps currencies to ``{"count": int, "amount": int}`` and ``payments`` holds
    ``succeeded`` and ``declined`` counts, all whole numbers >= 0 (not strings, floats or
    booleans): reconciling anything else would report money missing that is only mistyped.
    """
    if not isinstance(report, dict):
        return "the body is not a JSON object"
    totals, payments = report.get("totals"), report.get("payments")
    if not isinstance(totals, dict):
        return "totals is not an object"
    if not isinstance(payments, dict):
        return "payments is not an object"
    figures = [(f"payments.{k}", payments.get(k)) for k in ("succeeded", "declined")]
    for currency, entry in totals.items():
        if not _CURRENCY.fullmatch(currency):
            return "totals has a key that is not a currency code"
        if not isinstance(entry, dict):
            return f"totals.{currency} is not an object"
        figures += [
            (f"totals.{currency}.{k}", entry.get(k)) for k in ("count", "amount")
        ]
    for name, value in figures:
        if value is None:
            return f"{name} is missing"
        if type(value) is not int or value < 0:
            return f"{name} is not a whole number >= 0"
    return None
