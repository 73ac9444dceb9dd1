#!/usr/bin/env bash
# The test suite: installs what it needs (venv, pinned dev requirements, Debian's chromium and
# nginx with njs when run as root), then runs pytest: the whole suite as two halves side by side
# (scripts/two_halves.py), or, given arguments, one pytest with them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh requirements-dev.txt
bash scripts/system-deps.sh || echo "warning: could not install system packages; tests that need them will skip" >&2
if [ $# -eq 0 ]; then
  exec .venv/bin/python scripts/two_halves.py  # the whole suite, two halves side by side
fi
exec .venv/bin/python -m pytest "$@"
