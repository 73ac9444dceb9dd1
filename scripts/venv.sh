#!/usr/bin/env bash
# Create .venv (if missing) and install the pinned requirements file given as $1.
set -euo pipefail
cd "$(dirname "$0")/.."
req="${1:-requirements.txt}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  # Locust 2.47 and pandas 3 need 3.11: an older one failed later, in pip, with "No matching
  # distribution found for locust==2.47.0"
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    found="not found"
    command -v "$python" >/dev/null && found="$("$python" --version 2>&1 || true)"
    echo "make needs Python 3.11 or newer; $python is $found: install one and name it, e.g. PYTHON=python3.11 make run" >&2
    exit 2
  fi
  "$python" -m venv .venv
fi
stamp=".venv/.installed-$(basename "$req")"
if [ ! -f "$stamp" ] || [ "$req" -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$req"
  touch "$stamp"
fi
