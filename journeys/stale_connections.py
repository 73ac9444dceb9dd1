"""A request that crossed the service's close of an idle connection: sent again, once.

A service may close a kept-alive connection it finds idle (uvicorn after 5 s, while the personas
think up to 5 s). Locust's client (geventhttpclient) checks a pooled connection before reusing
it, but a close that crosses the next request on the wire comes after that check: the request
gets no byte of answer. The client sends such a request again on a new connection only for
idempotent methods, so every POST failed ("no answer: HTTPConnectionClosed"), a failed request
the service never took. Every request the generator sends may be sent again (a payment carries
its idempotency key, a report stores nothing, a probe is refused), as HTTP clients do for a
request safe to replay (Go's, for one with an ``Idempotency-Key``): ``install`` lets one that got
no answer on a reused connection go again on another (within the client's bounded tries). One
that got none on a new connection still fails: that is the service's doing.
"""

from __future__ import annotations

from gevent.local import local
from geventhttpclient import client
from geventhttpclient.connectionpool import ConnectionPool

from journeys.library_patch import original

_take_socket = original(ConnectionPool, "get_socket", "stale_connections")
_new_socket = original(ConnectionPool, "_create_socket", "stale_connections")
_may_send_again = original(client, "_may_retry_after_send_error", "stale_connections")
#: per greenlet (a user): whether its request went out on a connection used before
_last = local()


def _get_socket(self: ConnectionPool):
    # a pooled socket unless the pool has to make one (below): no copy of the idle queue
    _last.reused = True
    return _take_socket(self)


def _create_socket(self: ConnectionPool):
    _last.reused = False
    return _new_socket(self)


def _may_retry_after_send_error(method: str) -> bool:
    return _may_send_again(method) or getattr(_last, "reused", False)


def install() -> None:
    """Send such requests again (once per process; idempotent)."""
    ConnectionPool.get_socket = _get_socket
    ConnectionPool._create_socket = _create_socket
    client._may_retry_after_send_error = _may_retry_after_send_error
