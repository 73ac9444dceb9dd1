"""Compressed answers: decoded by every name HTTP gives a coding, or marked as not decodable.

Locust's client (geventhttpclient) decodes ``gzip``, ``deflate`` and ``br``, and raised from
inside Locust's request for anything else: ``x-gzip``, gzip's old name, which a client is to
read as gzip (RFC 9110, 8.4.1.3), and a body that does not decode (corrupt data, a coding the
request did not ask for). The error escaped the request: no request recorded, the journey failed
with a ``ValueError`` and the verdict blamed the generator. ``install`` decodes ``x-gzip`` and a
list of codings (``gzip, identity``), and turns a body that does not decode into an empty one,
which ``undecoded`` tells apart so the client can name it.
"""

from __future__ import annotations

import zlib

import brotli
from geventhttpclient.useragent import CompatResponse

from journeys.library_patch import original

#: What a failure says of such a body, after the status: ``201 body does not decode ...``.
UNDECODED = "body does not decode by its Content-Encoding"


def _gzip(body: bytes) -> bytes:
    return zlib.decompress(body, 16 + zlib.MAX_WBITS)


def _deflate(body: bytes) -> bytes:
    # raw deflate, as RFC 9110 names it, or the zlib stream most servers send under its name
    try:
        return zlib.decompress(body, -zlib.MAX_WBITS)
    except zlib.error:
        return zlib.decompress(body)


DECODERS = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    "br": brotli.decompress,
    "identity": bytes,
}


def _content(self: CompatResponse) -> bytes:
    """The body, decoded by its ``Content-Encoding`` (codings listed in the order applied)."""
    body = self._response.read()
    self.release()
    codings = self.headers.getlist("content-encoding")
    # the usual answer has none; and an empty body is empty in any coding
    if not codings or not body:
        return body
    names = [c.strip().lower() for value in codings for c in value.split(",")]
    try:
        for name in reversed([n for n in names if n]):  # the last one applied first
            body = DECODERS[name](body)
    except (KeyError, zlib.error, brotli.error):
        self.undecoded = True
        return b""
    return body


def undecoded(response) -> bool:
    """Whether ``response``'s body did not decode by its ``Content-Encoding`` (it reads empty)."""
    return getattr(response, "undecoded", False)


def unreadable(response, status: int, usual: str) -> str:
    """Why an answer's body could not be read: ``usual``, or that it does not decode."""
    return f"{status} {UNDECODED}" if undecoded(response) else usual


def install() -> None:
    """Decode answers as above (once per process; idempotent)."""
    original(CompatResponse, "_content", "content_coding")  # what ``content`` calls
    CompatResponse._content = _content
