"""The whole test suite as two pytest processes side by side (what ``make test`` runs).

Most of the suite's time is real Locust runs waiting out their few seconds of run time, which
leaves a 2-core machine more than half idle: two pytest processes, each with half of the test
files, take about 6 minutes where one took 10. ``FIRST_HALF``'s files run in one; every other
``tests/test_*.py`` (a new file too) in the other, so no test is left out. Each half has its own
temporary folder; the first half's output is shown as it comes, the second's after it; the
exit code is the worse of the two. ``bash scripts/test.sh ARGS`` (a part of the suite) runs one
pytest as before.

    .venv/bin/python scripts/two_halves.py [pytest options for both halves]
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: About half the suite's time (by ``--durations``), the rest is the other half. Keep the
#: browser tests and the bench smoke runs (which pin cores) in different halves.
FIRST_HALF = (
    "tests/test_results.py",
    "tests/test_tracing.py",
    "tests/test_slo.py",
    "tests/test_profiles.py",
    "tests/test_webui.py",
    "tests/test_ctrl_c.py",
    "tests/test_journey_rate.py",
    "tests/test_reconcile_run.py",
    "tests/test_baseline.py",
)


def halves() -> tuple[list[str], list[str]]:
    every = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py"))
    missing = [f for f in FIRST_HALF if f not in every]
    if missing:
        sys.exit(
            f"scripts/two_halves.py: FIRST_HALF names {missing}, not in tests/: fix the list"
        )
    return list(FIRST_HALF), [f for f in every if f not in FIRST_HALF]


def main(args: list[str]) -> int:
    first, second = halves()
    with tempfile.TemporaryDirectory(prefix="suite-") as scratch:
        log = Path(scratch) / "second-half.log"
        runs = []
        with open(log, "wb") as out:
            for name, files, stdout in (("1", first, None), ("2", second, out)):
                command = [sys.executable, "-m", "pytest", f"--basetemp={scratch}/tmp{name}",
                           "-p", "no:cacheprovider", *args, *files]  # fmt: skip
                runs.append(
                    subprocess.Popen(command, cwd=ROOT, stdout=stdout, stderr=stdout)
                )
            # a SIGTERM (a CI job's timeout) goes on to both halves; a terminal's Ctrl-C
            # reaches them by itself
            signal.signal(signal.SIGTERM, lambda *_: [r.terminate() for r in runs])
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            codes = [run.wait() for run in runs]
        print(f"\n===== second half of the suite: {' '.join(second)} =====", flush=True)
        sys.stdout.buffer.write(log.read_bytes())
    print(f"\n===== exit codes: first half {codes[0]}, second half {codes[1]} =====")
    return max(codes, key=lambda c: (c != 0, c))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
