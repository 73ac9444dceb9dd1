#!/usr/bin/env bash
# The main job: start the reference payment service on 127.0.0.1:8000 and drive it with Locust.
#   make run                                              # web UI on http://127.0.0.1:8089
#   LOCUST_HEADLESS=true LOCUST_RUN_TIME=60s make run     # headless, ends by itself
# Reports land in reports/ (CSV, HTML, the service's SQLite file), or in $REPORTS_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh requirements.txt
reports="${REPORTS_DIR:-reports}"
mkdir -p "$reports"
port="${PAYMENT_PORT:-8000}"
if [ -n "${PAYMENT_SERVICE_PORT:-}" ] && [ "$PAYMENT_SERVICE_PORT" != "$port" ]; then
  # a warning, not a stop: a Kubernetes service named "payment" sets it in every pod
  echo "make run: PAYMENT_SERVICE_PORT=$PAYMENT_SERVICE_PORT is ignored: make run reads PAYMENT_PORT (the service goes on port $port; e.g. PAYMENT_PORT=$PAYMENT_SERVICE_PORT make run)" >&2
fi
if ! [[ "$port" =~ ^[0-9]+$ ]] || (( 10#$port < 1 || 10#$port > 65535 )); then
  echo "make run: PAYMENT_PORT=$port is not a port number (1-65535): e.g. PAYMENT_PORT=8001 make run. No traffic was sent." >&2
  exit 2
fi
in_use='import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)'
if .venv/bin/python -c "$in_use" "$port" 2>/dev/null; then  # else the load would go to its holder
  echo "make run: port $port is taken: stop what holds it, or move the payment service with PAYMENT_PORT (e.g. PAYMENT_PORT=8001 make run). No traffic was sent." >&2
  exit 2
fi
export PAYMENT_INTERNAL_TOKEN="${PAYMENT_INTERNAL_TOKEN:-demo-$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(12))')}"
if [ -n "${LOCUST_HOST:-}" ] && [ "$LOCUST_HOST" != "http://127.0.0.1:$port" ]; then
  # the value is not echoed: a URL may carry credentials
  echo "LOCUST_HOST is set, but make run loads the service it starts; run locust itself for another target" >&2
fi
export LOCUST_HOST="http://127.0.0.1:$port"
export LOCUST_WEB_HOST="${LOCUST_WEB_HOST:-127.0.0.1}"  # the web UI has no login: loopback only
export LOCUST_RECONCILE_RUN="${LOCUST_RECONCILE_RUN:-true}"  # its own service: the report must match the ledger

# Ctrl-C in the terminal is for Locust alone: the service runs in a process group of its own,
# so it stays up for --reconcile-run's report; the EXIT trap stops it after Locust.
own_group='import os, sys; os.setpgid(0, 0); os.execv(sys.executable, [sys.executable, *sys.argv[1:]])'
.venv/bin/python -c "$own_group" -m payment_service --host 127.0.0.1 --port "$port" --db "$reports/demo.sqlite" \
  > "$reports/payment-service.log" 2>&1 &
service_pid=$!
stop_service() { kill "$service_pid" 2>/dev/null || true; wait "$service_pid" 2>/dev/null || true; }
trap stop_service EXIT
# A TERM to this script (e.g. from a CI runner or `timeout`) stops Locust gracefully, then the service.
trap 'kill -TERM "${locust_pid:-}" 2>/dev/null || true' TERM
trap ':' INT  # Ctrl-C reaches Locust itself (same process group); wait for its summary
echo "reference payment service: http://127.0.0.1:$port (log: $reports/payment-service.log)"

set +e
# A script's background job ignores SIGINT; `trap - INT` gives Locust its Ctrl-C back
(trap - INT; exec .venv/bin/locust -f locustfile.py --wait-for-host 20 --csv "$reports/run" \
  --html "$reports/run.html" "$@") &
locust_pid=$!
wait "$locust_pid"
status=$?
if kill -0 "$locust_pid" 2>/dev/null; then wait "$locust_pid"; status=$?; fi  # interrupted by a trapped signal
set -e
echo "locust exited with $status; reports in $reports/ (run_*.csv, run.html)"
exit "$status"
