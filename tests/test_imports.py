"""Every module of ours imports on its own, whichever is imported first.

An import cycle only shows when a cycle's module is the first one imported: the suite's other
tests import the locustfile's modules in one order, and ``tests/test_run_setup.py`` run alone
once failed to collect (preflight → tracing → same_personas → results → reconcile_run →
preflight). One fresh interpreter imports each module first in turn, forgetting ours between.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

EACH_FIRST = """
import importlib, pkgutil, sys
import locust  # gevent's monkey-patching first, as under the locust command
import journeys, journeys.results, journeys.profiles, journeys.tracing, payment_contract, payment_service
names = sorted(
    m.name
    for package in (journeys, journeys.results, journeys.profiles, journeys.tracing, payment_contract, payment_service)
    for m in pkgutil.iter_modules(package.__path__, package.__name__ + ".")
    if not m.name.endswith("__main__")
)
failed = []
for name in names:
    for loaded in [m for m in sys.modules if m.split(".")[0] in ("journeys", "payment_contract", "payment_service")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print(len(names), "modules")
print("\\n".join(failed) or "all imported")
"""


def test_every_module_imports_first():
    done = subprocess.run(
        [sys.executable, "-c", EACH_FIRST],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "all imported" in done.stdout, done.stdout
