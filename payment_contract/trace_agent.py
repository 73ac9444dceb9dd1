"""The Datadog trace agent both sides send spans to, asked whether it takes them.

The generator (``journeys.tracing.agent``) and the reference service (``payment_service.tracing``)
each check their agent with an upload of no traces: an agent whose intake is stuck still answers
``GET /info`` at once. Here, not in ``journeys.tracing`` (which imports Locust, as the service must
not), so the two reach an agent alike: over http, https or a unix socket
(``unix:///var/run/datadog/apm.socket``)::

    connection = agent_connection(url, timeout=0.5)
    try:
        answer = send_empty_upload(connection, url)    # raises as http.client does
    finally:
        connection.close()
"""

from __future__ import annotations

import http.client
import socket
from urllib.parse import urlsplit

#: An upload of no traces (msgpack's empty array) to the v0.4 endpoint every agent takes.
EMPTY_UPLOAD = ("/v0.4/traces", b"\x90")
_UPLOAD_HEADERS = {"Content-Type": "application/msgpack", "X-Datadog-Trace-Count": "0"}


def agent_connection(url: str, timeout: float) -> http.client.HTTPConnection:
    """An HTTP connection to the agent at ``url`` (http, https or a unix socket), not yet open."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return _UnixConnection(parts.path, timeout)
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.netloc, timeout=timeout)
    return http.client.HTTPConnection(parts.netloc, timeout=timeout)


def send_empty_upload(
    connection: http.client.HTTPConnection, url: str
) -> http.client.HTTPResponse:
    """``EMPTY_UPLOAD`` sent on ``connection`` to the agent at ``url`` (below the URL's path; a
    unix socket's path is the socket): its answer, read to the end."""
    parts = urlsplit(url)
    prefix = "" if parts.scheme == "unix" else parts.path.rstrip("/")
    path, body = EMPTY_UPLOAD
    connection.request("PUT", prefix + path, body, _UPLOAD_HEADERS)
    answer = connection.getresponse()
    answer.read()
    return answer


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (``unix:///var/run/datadog/apm.socket``)."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)
