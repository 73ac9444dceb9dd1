"""Datadog APM tracing (placeholder interface: no-ops until the tracing work lands)."""

from __future__ import annotations

from contextlib import contextmanager


class _NoSpan:
    def set_tag(self, key, value) -> None:
        pass

    def set_error(self, message: str) -> None:
        pass


_NO_SPAN = _NoSpan()


@contextmanager
def journey_span(journey: str, persona: str):
    yield _NO_SPAN


@contextmanager
def attempt_span(name: str, method: str, route: str, retry: int = 0):
    yield _NO_SPAN


def inject(headers: dict) -> None:
    pass
