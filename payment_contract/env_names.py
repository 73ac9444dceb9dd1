"""Variables of a prefix that nothing reads: a typo in one is otherwise ignored without a word.

The generator names the ``LOCUST_*`` ones (``journeys.env_names``: Locust ignores them), the
reference service its ``PAYMENT_*`` ones (``payment_service.env_names``); each words its own
warning. Here, as in ``trace_agent``, because the service may not import ``journeys``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping


def unread_names(
    environ: Mapping[str, str], prefix: str, read: set[str], meant: Iterable[str]
) -> list[tuple[str, str | None]]:
    """Each name in ``environ`` starting with ``prefix`` that is not in ``read``, in order, with
    the name of ``meant`` it likely is (None when none is close). Kubernetes' service links are
    not typos: a service named after the prefix (``locust``, ``payment``) sets
    ``LOCUST_SERVICE_HOST``, ``PAYMENT_PORT_8000_TCP`` and the like in every pod."""
    link = re.compile(rf"{re.escape(prefix)}(SERVICE_HOST|SERVICE_PORT|PORT)(_|$)")
    # compared without the shared prefix, which makes every name look close
    cut = len(prefix)
    candidates = sorted(name[cut:] for name in meant)
    found = []
    for name in sorted(environ):
        if not name.startswith(prefix) or name in read or link.match(name):
            continue
        close = difflib.get_close_matches(name[cut:], candidates, n=1, cutoff=0.75)
        found.append((name, prefix + close[0] if close else None))
    return found
