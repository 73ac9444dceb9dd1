#!/usr/bin/env bash
# The test suite: installs what it needs (venv, pinned dev requirements, Debian's chromium and
# nginx with njs when run as root), then runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh requirements-dev.txt
bash scripts/system-deps.sh || echo "warning: could not install system packages; tests that need them will skip" >&2
exec .venv/bin/python -m pytest "$@"
