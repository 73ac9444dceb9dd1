#!/bin/sh
# The load generator: plain `locust -f locustfile.py` (our code starts tracing from DD_* env
# vars; never ddtrace-run). Locust reads its options from LOCUST_* env vars (LOCUST_HOST,
# LOCUST_USERS, LOCUST_SPAWN_RATE, LOCUST_HEADLESS, LOCUST_RUN_TIME, LOCUST_WEB_PORT, ...) and
# locust.conf; arguments given to the container are appended.
#
# Standalone unless workers are asked for: LOCUST_EXPECT_WORKERS=N (N > 0) makes this a master
# that waits for N workers (`--master --expect-workers N`). A headless master without workers
# would wait forever, so the default (unset or 0) is a standalone run. A master made by hand
# (--master, LOCUST_MODE_MASTER) with 0 does not wait for workers; a worker told 0 joins it.
set -eu
. "$(dirname "$0")/env.sh"

# the values Locust takes as true, in any case (LOCUST_HEADLESS=on or Yes runs headless)
truthy() { case "$(printf %s "${1:-}" | tr "[:upper:]" "[:lower:]")" in true | yes | on | 1) return 0 ;; *) return 1 ;; esac; }

# Locust prints its --help before it loads the locustfile, so this tool's own options (--personas,
# --seed, --profile, the SLO targets, ...) were missing from it: docker/help.py prints the whole
# parser's help, whatever the setup (a LOCUST_BASELINE or personas file that cannot be read).
for arg in "$@"; do
  case "$arg" in
    -h | --help)
      exec python3 /app/docker/help.py "$@" ;;
  esac
done

role=standalone
truthy "${LOCUST_MODE_MASTER:-}" && role=master
truthy "${LOCUST_MODE_WORKER:-}" && role=worker
for arg in "$@"; do
  case "$arg" in
    --worker) role=worker ;;
    --master) role=master ;;
  esac
done

expect="${LOCUST_EXPECT_WORKERS:-0}"
case "$expect" in
  '' | *[!0-9]*) echo "LOCUST_EXPECT_WORKERS must be a whole number, got '$expect'" >&2; exit 2 ;;
esac
# Whether the master a worker is to join (--master-host/--master-port or their LOCUST_MASTER_NODE_*
# variables) takes connections, waiting up to WORKER_MASTER_WAIT seconds (default 20) for it to
# start; a port that is no number is Locust's to name.
master_answers() {
  host="${LOCUST_MASTER_NODE_HOST:-127.0.0.1}"
  port="${LOCUST_MASTER_NODE_PORT:-5557}"
  while [ $# -gt 0 ]; do
    case "$1" in
      --master-host) host="${2:-}"; if [ $# -gt 1 ]; then shift; fi ;;
      --master-host=*) host="${1#*=}" ;;
      --master-port) port="${2:-}"; if [ $# -gt 1 ]; then shift; fi ;;
      --master-port=*) port="${1#*=}" ;;
    esac
    shift
  done
  python3 - "$host" "$port" "${WORKER_MASTER_WAIT:-20}" <<'PY'
import socket, sys, time
host, port, wait = sys.argv[1:]
try:
    port = int(port)
except ValueError:
    sys.exit(0)
try:
    deadline = time.monotonic() + float(wait)
except ValueError:
    deadline = time.monotonic() + 20
while True:
    try:
        socket.create_connection((host, port), timeout=1).close()
        sys.exit(0)
    except OSError:
        if time.monotonic() >= deadline:
            sys.exit(1)
        time.sleep(0.5)
PY
}

if [ "$role" = worker ]; then
  # docker-compose.yml passes the load-generator's LOCUST_EXPECT_WORKERS to its workers too (0
  # when it is unset): then that generator runs standalone, and a worker would wait for a master
  # that never comes (`--scale worker=N` looking like N workers while one process sends the
  # load). Unless a master does answer: one started with --master, which 0 does not make wait.
  if [ "$expect" = 0 ] && [ -n "${LOCUST_EXPECT_WORKERS:-}" ] && ! master_answers "$@"; then
    echo "This worker has no master: LOCUST_EXPECT_WORKERS=0 (docker-compose.yml's value when" \
         "it is unset) makes the load-generator run standalone, and no master answered within" \
         "${WORKER_MASTER_WAIT:-20} s. Set LOCUST_EXPECT_WORKERS to the number of workers, for" \
         "the generator and its workers alike:" \
         "LOCUST_EXPECT_WORKERS=3 docker compose --profile workers up --scale worker=3" \
         "(with its web UI the master does not wait for them: start the test when they are there)" >&2
    exit 2
  fi
  # Otherwise a worker gets its options from the master.
  unset LOCUST_EXPECT_WORKERS
elif [ "$role" = standalone ] && [ "$expect" -gt 0 ]; then
  role=master
  set -- --master --expect-workers "$expect" "$@"
else
  # Locust reads LOCUST_EXPECT_WORKERS itself; 0 is not a valid value for a master.
  [ "$expect" -gt 0 ] || unset LOCUST_EXPECT_WORKERS
fi

if [ "$role" != worker ]; then
  # Reports go to /app/reports (writable by the container's user) unless asked elsewhere:
  # `docker cp <container>:/app/reports .` gets them out, even from a stopped container. The
  # verdict as a JUnit XML test report too, for a CI job that runs the image.
  csv=yes; html=yes; junit=yes
  for arg in "$@"; do
    case "$arg" in
      --csv | --csv=*) csv=no ;;
      --html | --html=*) html=no ;;
      --junit-xml | --junit-xml=*) junit=no ;;
    esac
  done
  if [ "$csv" = yes ] && [ -z "${LOCUST_CSV:-}" ]; then set -- --csv reports/run "$@"; fi
  if [ "$html" = yes ] && [ -z "${LOCUST_HTML:-}" ]; then set -- --html reports/run.html "$@"; fi
  if [ "$junit" = yes ] && [ -z "${LOCUST_JUNIT_XML:-}" ]; then
    set -- --junit-xml reports/junit.xml "$@"
  fi
  case " $* " in
    # no web UI: headless, or Locust answers and exits
    *" --headless "* | *" --version "* | *" -V "* | *" --list "* | *" -l "* | *" --show-task-ratio"*) ;;
    *) truthy "${LOCUST_HEADLESS:-}" \
         || echo "web UI on container port ${LOCUST_WEB_PORT:-8089}" \
                 "(docker compose up publishes it on 127.0.0.1; docker compose run needs --service-ports)" ;;
  esac
fi

exec locust -f locustfile.py "$@"
