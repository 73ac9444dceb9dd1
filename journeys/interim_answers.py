"""Interim 1xx answers: read past them to the final answer, on the same connection.

HTTP lets a service send interim answers before the final one (``103 Early Hints`` from a CDN, a
``100 Continue`` nobody asked for), and a client must read past them (RFC 9110, 15.2). Locust's
client, geventhttpclient, parses them, but hands the connection back to its pool when one ends,
as if it were the answer: when the final answer's body comes in a later packet than its head,
the answer has an empty body and the next request on the connection reads that body as its own
answer. ``install`` keeps the connection until the final answer is read.
"""

from __future__ import annotations

from geventhttpclient.response import HTTPResponse, HTTPSocketResponse

from journeys.library_patch import original

_release_when_complete = original(
    HTTPSocketResponse, "_on_message_complete", "interim_answers"
)


def _on_message_complete(self) -> None:
    code = self.get_code()
    if 100 <= code < 200 and code != 101:  # interim: the final answer follows
        HTTPResponse._on_message_complete(self)  # complete, the connection kept
        return
    _release_when_complete(self)


def install() -> None:
    """Make geventhttpclient read past interim answers (once per process; idempotent)."""
    HTTPSocketResponse._on_message_complete = _on_message_complete
