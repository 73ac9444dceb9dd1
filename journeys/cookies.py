"""A cookie jar that costs nothing while there are no cookies.

Locust's ``FastHttpSession`` keeps cookies per user, as a browser would, with the standard
library's ``CookieJar``: before every request it takes the jar's lock, works out the request's
host and path and clears expired cookies; after every answer it takes the lock again and looks for
``Set-Cookie``. Under gevent that lock is a pure-Python ``RLock``, and a payment API seldom sets a
cookie, so those steps were ~6% of the generator's CPU per request for nothing. This jar skips them
when there is nothing to send and nothing was set, and otherwise is the standard jar, so a service
(or a load balancer in front of it) that sets cookies gets them back as before.
"""

from __future__ import annotations

from http.cookiejar import CookieJar


class LazyCookieJar(CookieJar):
    """``CookieJar`` with a fast path for the common case: no cookies stored, none set."""

    def add_cookie_header(self, request) -> None:
        # the domains with cookies: empty until a Set-Cookie was accepted
        if self._cookies:
            super().add_cookie_header(request)

    def extract_cookies(self, response, request) -> None:
        # case-insensitive; `in` raises no KeyError when the header is absent. Set-Cookie2
        # (RFC 2965) is only read by a policy that takes it; the default one ignores it
        headers = response.info()
        if "Set-Cookie" in headers or (
            self._policy.rfc2965 and "Set-Cookie2" in headers
        ):
            super().extract_cookies(response, request)


def install(session) -> None:
    """Give a Locust ``FastHttpSession`` (and its user agent) a ``LazyCookieJar``."""
    jar = LazyCookieJar()
    session.cookiejar = jar
    session.client.cookiejar = jar
