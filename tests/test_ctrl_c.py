"""Ctrl-C reaches Locust's main greenlet between requests, never a journey in the middle of one.

The end-to-end Ctrl-C run is in test_slo.py; there the signal lands in user code only now and
then. Here a real SIGINT arrives while a greenlet runs a journey's Python code, every time.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

JOURNEY_INTERRUPTED = """
import os, signal, sys, time
import locust  # gevent's monkey-patching, as under the locust command
import gevent
from locust import events
if sys.argv[1] == "with-plugin":
    import journeys.ctrl_c
events.init.fire(environment=None, runner=None, web_ui=None)

finished = []
def journey():
    os.kill(os.getpid(), signal.SIGINT)
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:  # a journey's own work: no yield to gevent's loop
        pass
    finished.append("journey")
    gevent.sleep(5)

try:
    gevent.spawn(journey).join()
    print("never interrupted")
except KeyboardInterrupt:
    print("main greenlet interrupted; journey finished:", bool(finished))
"""


def run(mode: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", JOURNEY_INTERRUPTED, mode],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.stdout + done.stderr


def test_ctrl_c_waits_for_the_journey_to_yield_then_stops_the_main_greenlet():
    output = run("with-plugin")
    assert "main greenlet interrupted; journey finished: True" in output, output
    assert "Traceback" not in output, output


def test_without_the_plugin_ctrl_c_breaks_into_the_journey():
    """The control: what Python and gevent do on their own (a traceback from the journey)."""
    output = run("without")
    assert "journey finished: False" in output and "KeyboardInterrupt" in output, output
