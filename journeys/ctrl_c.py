"""Ctrl-C stops a run the way Locust means to, never from inside a journey.

Python raises ``KeyboardInterrupt`` wherever the main thread is when SIGINT arrives. Under gevent
that is often a user's greenlet in the middle of a journey: the journey is counted failed with
"KeyboardInterrupt", gevent prints a traceback, and only then does the exception reach Locust's
main loop. Handled in gevent's loop instead, SIGINT is raised in the main greenlet between
requests, where Locust catches it, writes ``--html`` and shuts down; the journeys still running
end as interrupted, as on SIGTERM.
"""

from __future__ import annotations

import signal

import gevent
from locust import events


def _interrupt_the_main_greenlet() -> None:
    hub = gevent.get_hub()
    hub.loop.run_callback(hub.parent.throw, KeyboardInterrupt)


@events.init.add_listener
def _handle_ctrl_c_in_the_loop(**_kwargs) -> None:
    # only Python's own handler is replaced: `locust --processes` sets its own in the parent
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        gevent.signal_handler(signal.SIGINT, _interrupt_the_main_greenlet)
