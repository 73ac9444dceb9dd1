"""Reading a 429's ``Retry-After`` (seconds or an HTTP date), for every caller that waits on one:
the API client's payments, reports and probes, and ``--reconcile-run``'s report."""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import time

#: The longest a ``Retry-After`` is waited (a service asking for an hour gets 30 s).
RETRY_AFTER_CAP_S = 30.0


def retry_after_s(
    value: str | None, cap: float, date: str | None = None
) -> float | None:
    """Seconds a 429's ``Retry-After`` header ``value`` asks for (capped; 1 s when absent); None
    when it is unreadable (not seconds >= 0 nor an HTTP date), so the caller backs off on its own.

    An HTTP date is a moment by the service's clock: the wait is how far it lies past this
    machine's now, or, when the answer's ``Date`` header (the service's now, to the second) is
    more than a second off ours, past that ``Date``. A service whose clock ran a minute ahead
    asked for 1 s and got the cap; reading every date against ``Date`` would wait up to a second
    too long when the clocks agree (both are whole seconds)."""
    if not value:
        return 1.0
    try:
        seconds = float(value)
    except ValueError:
        moment = _http_date(value)
        if moment is None:
            return None
        now = time.time()
        served = _http_date(date) if date else None
        if served is not None and not served - 1 <= now <= served + 2:
            now = served  # the service's clock is not ours: read its date on its clock
        seconds = moment - now
        return min(cap, max(0.0, seconds))  # a date already past: now
    if math.isnan(seconds) or seconds < 0:
        return None
    return min(cap, seconds)


def _http_date(value: str) -> float | None:
    """An HTTP date (any of its three formats) as a unix time, or None."""
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (ValueError, TypeError, OverflowError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC, says RFC 5322
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.timestamp()
    except (ValueError, OverflowError):
        return None
