#!/usr/bin/env bash
# End-to-end check of the Docker setup: build both images, run the stack with docker compose, and
# check that a headless run (standalone, then master + 2 workers) ends by itself with the journey
# summary, a zero exit code, and payments in the reference service's database.
#
#   bash tests/docker/verify.sh          (needs a Docker daemon; tests/test_docker.py runs it)
#
# Everything runs on the host network (tests/docker/compose.hostnet.yml) on ports 18000 (service),
# 18089 (web UI) and 15557 (master), and is torn down with `down -v` on exit. On a shared machine
# pick free ones: TEST_SERVICE_PORT, TEST_WEB_PORT, TEST_MASTER_PORT.
#   BASE_IMAGE   base for the build (default local/python:3.11-slim; python:3.12-slim with a registry)
#   COMPOSE      compose command (default: `docker compose` if present, else `docker-compose`)
set -euo pipefail
cd "$(dirname "$0")/../.."

BASE_IMAGE="${BASE_IMAGE:-local/python:3.11-slim}"
if [ -z "${COMPOSE:-}" ]; then
  if docker compose version >/dev/null 2>&1; then COMPOSE="docker compose"; else COMPOSE="docker-compose"; fi
fi
# The shell's own LOCUST_*/DD_* settings would leak into the compose file's ${VAR:-default}s.
while read -r name; do unset "$name"; done < <(compgen -e | grep -E '^(LOCUST|DD|PAYMENT)_' || true)
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-loadgen-verify}"
export TEST_SERVICE_PORT="${TEST_SERVICE_PORT:-18000}" TEST_WEB_PORT="${TEST_WEB_PORT:-18089}"
export TEST_MASTER_PORT="${TEST_MASTER_PORT:-15557}"
export LOCUST_WEB_PORT="$TEST_WEB_PORT" # keeps the base file's port mapping in step (host mode drops it)
export PAYMENT_INTERNAL_TOKEN="verify-$RANDOM$RANDOM"

# docker compose on the host network: docker-compose.yml + tests/docker/compose.hostnet.yml,
# merged by `compose config` (with the caller's env) and without `ports:` (published ports and
# network_mode: host are exclusive, and an override file can't delete a key in docker-compose v1).
# OVERRIDE=file adds a docker-compose.override.yml of the user's (docs/docker.md's volumes).
compose() {
  $COMPOSE -f docker-compose.yml -f tests/docker/compose.hostnet.yml ${OVERRIDE:+-f "$OVERRIDE"} config | awk '
    skip && match($0, /^ */) && RLENGTH > indent { next }
    skip && $0 ~ ("^" sprintf("%" indent "s", "") "- ") { next }
    { skip = 0 }
    /^ +ports:$/ { skip = 1; match($0, /^ */); indent = RLENGTH; next }
    { print }' >"$work/compose.yml"
  $COMPOSE -f "$work/compose.yml" "$@"
}
step() { printf '\n== %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
cleanup() { compose --profile workers down -v --remove-orphans >/dev/null 2>&1 || true; }
# "<total> (<status>=<count> ...)" from the service's SQLite database, read inside its container.
payments() {
  compose exec -T payment-service python3 -c "
import sqlite3
rows = sqlite3.connect('/data/payments.sqlite').execute(
    'SELECT status, COUNT(*) FROM payments GROUP BY status ORDER BY status').fetchall()
print(sum(n for _, n in rows), '(' + ', '.join(f'{s}={n}' for s, n in rows) + ')')"
}
total() { cut -d' ' -f1; }
# "<payments> <seconds from the first to the last>" of the customers' payments (no batch) made
# after the UTC time $1, read inside the service's container
paced() {
  compose exec -T payment-service python3 -c "
import sqlite3, sys
from datetime import datetime
rows = sqlite3.connect('/data/payments.sqlite').execute(
    'SELECT created_at FROM payments WHERE batch_id IS NULL AND created_at > ? ORDER BY created_at',
    (sys.argv[1],)).fetchall()
at = [datetime.fromisoformat(r[0].rstrip('Z')) for r in rows]
print(len(at), f'{(at[-1] - at[0]).total_seconds():.1f}' if at else 0)" "$1"
}

work=$(mktemp -d)
build_log="$work/build.log"
trap 'cleanup; rm -rf "$work"' EXIT
cleanup
for port in "$TEST_SERVICE_PORT" "$TEST_WEB_PORT" "$TEST_MASTER_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then fail "port $port is in use on 127.0.0.1"; fi
done

step "up passes this tool's LOCUST_* options from the shell (docker-compose.yml lists each)"
# every option journeys/ reads from LOCUST_*, except LOCUST_PERSONAS (always the mounted file)
# and the Locust ones docs/docker.md names for up
names="$(grep -rhoE 'env_var="LOCUST_[A-Z0-9_]+"' journeys locustfile.py | cut -d'"' -f2 | sort -u | grep -vx LOCUST_PERSONAS)
LOCUST_TAGS LOCUST_EXCLUDE_TAGS LOCUST_EXPECT_WORKERS_MAX_WAIT"
config=$(env $(for n in $names; do printf '%s=set-in-shell ' "$n"; done) $COMPOSE -f docker-compose.yml config)
missing=$(for n in $names; do printf '%s\n' "$config" | grep -qE "^ +$n: set-in-shell$" || printf '%s ' "$n"; done)
[ -z "$missing" ] || fail "docker-compose.yml does not pass to up: $missing"
ok "$(printf '%s\n' $names | wc -l) options reach the load-generator"

step "build (base $BASE_IMAGE, compose: $COMPOSE): BASE_IMAGE=... $COMPOSE build, as documented"
BASE_IMAGE="$BASE_IMAGE" compose build >"$build_log" 2>&1 \
  || { cat "$build_log" >&2; fail "BASE_IMAGE=$BASE_IMAGE $COMPOSE build"; }
for image in payment-service:latest payment-loadgen:latest; do
  ok "$image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%d MB", $1/1e6}'))"
done
for image in payment-service:latest payment-loadgen:latest; do
  uid=$(docker run --rm --network none --entrypoint id "$image" -u)
  [ "$uid" != 0 ] || fail "$image runs as root"
done
ok "both images run as uid $uid (non-root)"

# the master's end-of-run summary: the journeys table's header and the verdict line
summary_printed() {
  printf '%s\n' "$1" | grep -qE '^Journey +Persona ' && printf '%s\n' "$1" | grep -qE '^SLO verdict: (PASS|FAIL)'
}

step "headless standalone: $COMPOSE run --name $COMPOSE_PROJECT_NAME-run -e LOCUST_HEADLESS=true -e LOCUST_RUN_TIME=15s load-generator"
set +e
out=$(compose run -T --name "$COMPOSE_PROJECT_NAME-run" -e LOCUST_HEADLESS=true -e LOCUST_RUN_TIME=15s \
  load-generator 2>&1)
rc=$?
set -e
printf '%s\n' "$out" | grep -v -E '^(Creating|Starting) ' | tail -n 40 || true
[ "$rc" = 0 ] || fail "headless run exited with $rc"
ok "exit code 0"
summary_printed "$out" || fail "no journey summary and SLO verdict in the output"
ok "journey summary and SLO verdict printed"
docker cp "$COMPOSE_PROJECT_NAME-run:/app/reports" "$work/reports"
docker rm "$COMPOSE_PROJECT_NAME-run" >/dev/null
grep -q 'id="journey-results"' "$work/reports/run.html" || fail "no journeys in /app/reports/run.html"
grep -q '^checkout,' "$work/reports/run_journeys.csv" || fail "no checkout row in run_journeys.csv"
grep -q '<testsuite name="SLO verdict"' "$work/reports/junit.xml" \
  || fail "no JUnit report of the SLO verdict in /app/reports/junit.xml"
ok "reports copied out with docker cp: $(cd "$work/reports" && ls | tr '\n' ' ')"
# a host folder mounted over /app/reports that the container's user may not write in
mkdir -m 0755 "$work/not-writable"
set +e
out=$(compose run --rm -T --no-deps -v "$work/not-writable:/app/reports" -e LOCUST_HEADLESS=true \
  -e LOCUST_RUN_TIME=3s load-generator 2>&1)
rc=$?
set -e
[ "$rc" = 2 ] && grep -q 'this user (uid 10001) may not write in /app/reports;' <<<"$out" \
  || fail "a reports folder the container may not write in: exit $rc, $(tail -n 3 <<<"$out")"
ok "a mounted reports folder the container may not write in: exit 2, the folder named"
[ "$(docker inspect -f '{{.State.Health.Status}}' "$(compose ps -q payment-service)")" = healthy ] \
  || fail "payment-service is not healthy"
ok "payment-service healthy (GET /health)"
before=$(payments)
[ "$(printf '%s' "$before" | total)" -gt 0 ] || fail "no payments reached the service"
ok "payments in the service's database: $before"

step "--baseline: the last run's reports kept on the host, mounted read-only next to /app/reports"
# as docs/docker.md keeps them: the files docker cp got out, at a prefix of their own
mkdir "$work/baseline"
cp "$work/reports/run_stats.csv" "$work/baseline/last-good_stats.csv"
cp "$work/reports/run_journeys.csv" "$work/baseline/last-good_journeys.csv"
# the three settings from the shell, through docker-compose.yml as for up; --baseline-min-ms
# generous: this checks the gate's wiring, not this busy machine's noise
set +e
out=$(LOCUST_BASELINE=/baseline/last-good LOCUST_BASELINE_TOLERANCE=0.5 LOCUST_BASELINE_MIN_MS=1000 \
  compose run -T --no-deps --name "$COMPOSE_PROJECT_NAME-baseline" -v "$work/baseline:/baseline:ro" \
  -e LOCUST_HEADLESS=true -e LOCUST_RUN_TIME=6s -e LOCUST_SPAWN_RATE=10 load-generator 2>&1)
rc=$?
set -e
docker cp "$COMPOSE_PROJECT_NAME-baseline:/app/reports/run_slo.csv" "$work/baseline_slo.csv" >/dev/null 2>&1 || true
docker rm "$COMPOSE_PROJECT_NAME-baseline" >/dev/null
[ "$rc" = 0 ] || fail "a run like its baseline exited with $rc: $(tail -n 5 <<<"$out")"
# the Aggregated row compared, its bound the baseline's p95 + 1000 ms, its verdict within +50%
# or under +1000 ms
row=$(grep -E '^baseline,p95_ms \(Aggregated\),' "$work/baseline_slo.csv" 2>/dev/null || true)
grep -qE '^baseline,p95_ms \(Aggregated\),< [0-9.]+,[0-9.]+,true,"p95 .*(within \+50%|under \+1000 ms)' <<<"$row" \
  || fail "no passed baseline check of the Aggregated row with the shell's settings in run_slo.csv: ${row:-none}"
ok "exit code 0, compared with the mounted baseline: $(sed -E 's/^[^"]*"([^"]*)".*/\1/' <<<"$row")"
untouched=$(payments)
for case in "no-such-build|$work/baseline|no file /baseline/no-such-build_stats.csv (--baseline is the --csv prefix" \
  "last-good|$work/closed|cannot read /baseline/last-good_stats.csv: this user (uid 10001) may not open the folder /baseline on its way. Make it readable: chmod a+r"; do
  IFS='|' read -r prefix folder needle <<<"$case"
  # a folder as mktemp -d or a umask of 077 makes it: the container's user may not open it
  [ -d "$folder" ] || { cp -r "$work/baseline" "$folder" && chmod 0700 "$folder"; }
  set +e
  out=$(compose run --rm -T --no-deps -v "$folder:/baseline:ro" -e LOCUST_HEADLESS=true \
    -e LOCUST_RUN_TIME=3s -e LOCUST_BASELINE="/baseline/$prefix" load-generator 2>&1)
  rc=$?
  set -e
  [ "$rc" = 2 ] && grep -qF -- "$needle" <<<"$out" && grep -q 'No traffic was sent.' <<<"$out" \
    || fail "LOCUST_BASELINE=/baseline/$prefix from $folder: exit $rc, $(tail -n 3 <<<"$out")"
  ok "LOCUST_BASELINE=/baseline/$prefix ($(stat -c %a "$folder") folder): exit 2, $needle"
done
[ "$(payments)" = "$untouched" ] || fail "a baseline that cannot be used sent load ($untouched -> $(payments))"

step "--slo-targets files that cannot be used, mounted as docs/docker.md shows: exit 2, no traffic"
# (the master + 2 workers run below uses a good one)
mkdir "$work/targets"
printf 'name,p99_ms\nPOST checkout: pay,200\n' >"$work/targets/bad.csv"
cp slo-targets.example.csv "$work/targets/private.csv"
chmod 0644 "$work/targets/bad.csv" && chmod 0600 "$work/targets/private.csv"
for case in "private.csv|this user (uid 10001) may not read it. Make it readable: chmod a+r" \
  "bad.csv|line 1, column p99_ms: unknown column (did you mean 'p95_ms'?)" \
  "not-there.csv|is a folder, not a file"; do
  IFS='|' read -r file needle <<<"$case"
  set +e
  out=$(compose run --rm -T --no-deps -v "$work/targets/$file:/app/slo-targets.csv:ro" \
    -e LOCUST_SLO_TARGETS=/app/slo-targets.csv -e LOCUST_HEADLESS=true -e LOCUST_RUN_TIME=3s \
    load-generator 2>&1)
  rc=$?
  set -e
  [ "$rc" = 2 ] && grep -qF -- "/app/slo-targets.csv" <<<"$out" && grep -qF -- "$needle" <<<"$out" \
    && grep -qF 'No traffic was sent.' <<<"$out" \
    || fail "LOCUST_SLO_TARGETS mounted from $file: exit $rc, $(tail -n 3 <<<"$out")"
  ok "LOCUST_SLO_TARGETS mounted from $file: exit 2, $needle"
done
[ "$(payments)" = "$untouched" ] || fail "an SLO targets file that cannot be used sent load ($untouched -> $(payments))"

step "the image's own example: LOCUST_SLO_TARGETS=/app/slo-targets.example.csv, no mount"
set +e
out=$(compose run --rm -T --no-deps -e LOCUST_SLO_TARGETS=/app/slo-targets.example.csv \
  -e LOCUST_HEADLESS=true -e LOCUST_RUN_TIME=3s load-generator 2>&1)
rc=$?
set -e
{ [ "$rc" = 0 ] || [ "$rc" = 1 ]; } && grep -q 'SLO verdict' <<<"$out" \
  || fail "LOCUST_SLO_TARGETS=/app/slo-targets.example.csv: exit $rc, $(tail -n 3 <<<"$out")"
ok "LOCUST_SLO_TARGETS=/app/slo-targets.example.csv: exit $rc, judged"
before=$(payments)

step "master + 2 workers headless: LOCUST_EXPECT_WORKERS=2 $COMPOSE --profile workers up --scale worker=2"
# as docs/docker.md shows it: up -d, docker wait for the master's exit code, then its logs; the
# customers at LOCUST_JOURNEY_RATE journeys/s in all (the pace uses the whole test's 10 users, not
# a worker's 5), judged with an --slo-targets file mounted on the master only (an override file)
printf 'name,p50_ms,p95_ms,error_rate\nPOST checkout: pay,,1500,0.01\n' >"$work/slo-targets.csv"
chmod 0644 "$work/slo-targets.csv"
printf 'services:\n  load-generator:\n    volumes:\n      - %s:/slo/targets.csv:ro\n' \
  "$work/slo-targets.csv" >"$work/slo-override.yml"
rate=5
since=$(date -u +%Y-%m-%dT%H:%M:%S)
OVERRIDE="$work/slo-override.yml" LOCUST_SLO_TARGETS=/slo/targets.csv LOCUST_JOURNEY_RATE=$rate \
  LOCUST_TAGS=customer LOCUST_SPAWN_RATE=10 \
  LOCUST_HEADLESS=true LOCUST_RUN_TIME=10s LOCUST_EXPECT_WORKERS=2 LOCUST_SEED=4242 \
  LOCUST_JUNIT_XML=reports/verdict.xml \
  compose --profile workers up -d --scale worker=2 load-generator worker >/dev/null 2>&1
rc=$(timeout 120 docker wait "$(compose ps -q load-generator)")
out=$(compose logs --no-color --no-log-prefix --tail 80 load-generator 2>&1)
printf '%s\n' "$out" | tail -n 25
[ "$rc" = 0 ] || fail "distributed run exited with $rc"
ok "exit code 0"
printf '%s\n' "$out" | grep -qE '2 workers connected' \
  || grep -qE '2 workers connected' <<<"$(compose logs --no-color load-generator 2>&1)" \
  || fail "the master saw no workers"
summary_printed "$out" || fail "no journey summary and SLO verdict from the master"
# (a here-string: with pipefail, `compose logs | grep -q` fails when grep stops reading early)
grep -q 'data seed: 4242 ' <<<"$(compose logs --no-color load-generator 2>&1)" \
  || fail "LOCUST_SEED set in the shell did not reach the master"
ok "master ran with 2 workers and printed the journey summary and verdict"
docker cp "$(compose ps -q load-generator):/app/reports/verdict.xml" "$work/verdict.xml" 2>/dev/null \
  && grep -q '<testsuite name="SLO verdict"' "$work/verdict.xml" \
  || fail "LOCUST_JUNIT_XML=reports/verdict.xml set in the shell wrote no JUnit report on the master"
ok "LOCUST_JUNIT_XML from the shell: the master wrote reports/verdict.xml"
docker cp "$(compose ps -q load-generator):/app/reports/run_slo.csv" "$work/workers_slo.csv" 2>/dev/null || true
row=$(grep -E '^request POST checkout: pay,p95_ms,< 1500,' "$work/workers_slo.csv" 2>/dev/null || true)
[ -n "$row" ] && grep -qE '^request POST checkout: pay,error_rate,<= 0.01,' "$work/workers_slo.csv" \
  || fail "the mounted LOCUST_SLO_TARGETS file did not reach the verdict: $(grep '^request' "$work/workers_slo.csv" 2>/dev/null || echo 'no request rows')"
ok "LOCUST_SLO_TARGETS mounted on the master: $(cut -d, -f6 <<<"$row")"
grep -qE "^run,journey_rate,.*\(run, $rate journeys/s over 10 users\)" "$work/workers_slo.csv" \
  || fail "LOCUST_JOURNEY_RATE=$rate from the shell: no pace over the test's 10 users in run_slo.csv: $(grep '^run,journey_rate' "$work/workers_slo.csv" || echo 'no journey_rate row')"
# attempts per journey are 1 to 1.2 (retries after a decline); a pace per worker's share doubles it
read -r count span <<<"$(paced "$since")"
awk -v n="$count" -v s="$span" -v r="$rate" 'BEGIN { exit !(s >= 3 && (n - 1) / s >= 0.6 * r && (n - 1) / s <= 1.6 * r) }' \
  || fail "LOCUST_JOURNEY_RATE=$rate with 2 workers: $count customer payments in ${span}s, not about $rate/s"
ok "LOCUST_JOURNEY_RATE=$rate with 2 workers: $count customer payments in ${span}s ($(awk -v n="$count" -v s="$span" 'BEGIN { printf "%.1f", (n - 1) / s }')/s)"
after=$(payments)
[ "$(printf '%s' "$after" | total)" -gt "$(printf '%s' "$before" | total)" ] \
  || fail "the distributed run added no payments ($before -> $after)"
ok "payments in the service's database: $after"

step "the service's key lifetime from the shell: PAYMENT_KEY_TTL=1s $COMPOSE up -d payment-service"
PAYMENT_KEY_TTL=1s compose up -d payment-service >/dev/null 2>&1
keys=""
for _ in $(seq 30); do
  keys=$(compose exec -T payment-service python3 -c "
import sqlite3
print(sqlite3.connect('/data/payments.sqlite').execute('SELECT COUNT(*) FROM idempotency_keys').fetchone()[0])" 2>/dev/null) \
    && [ "$keys" = 0 ] && break
  sleep 1
done
grep -q 'keys kept 1s' <<<"$(compose logs --no-color payment-service 2>&1)" \
  || fail "PAYMENT_KEY_TTL=1s set in the shell did not reach the service: $(compose logs --no-color --tail 3 payment-service 2>&1)"
[ "$keys" = 0 ] || fail "the service kept ${keys:-?} expired idempotency keys in its volume"
[ "$(payments)" = "$after" ] || fail "the key purge changed the payments ($after -> $(payments))"
ok "keys kept 1s: expired keys purged from the volume's database, payments kept ($after)"

step "web UI: $COMPOSE up load-generator"
compose up -d load-generator >/dev/null 2>&1
for _ in $(seq 60); do
  status=$(docker inspect -f '{{.State.Health.Status}}' "$(compose ps -q load-generator)")
  [ "$status" = healthy ] && break
  sleep 1
done
if [ "$status" != healthy ]; then
  compose logs --no-color --tail 30 load-generator || true
  docker inspect -f '{{json .State.Health}}' "$(compose ps -q load-generator)" || true
  fail "load-generator UI container is $status"
fi
python3 -c "import urllib.request as u; assert u.urlopen('http://127.0.0.1:$TEST_WEB_PORT/', timeout=5).status == 200"
ok "web UI answers on 127.0.0.1:$TEST_WEB_PORT, container healthy"

step "web UI with the third seed command: $COMPOSE run -e LOCUST_USERS=50 -e LOCUST_SPAWN_RATE=5 load-generator"
compose stop load-generator >/dev/null 2>&1
compose run -d -e LOCUST_USERS=50 -e LOCUST_SPAWN_RATE=5 load-generator >/dev/null
page=""
for _ in $(seq 60); do
  page=$(python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:$TEST_WEB_PORT/', timeout=2).read().decode())" 2>/dev/null) && break
  sleep 1
done
printf '%s' "$page" | grep -q '"num_users": 50' || fail "the UI is not filled in with 50 users"
printf '%s' "$page" | grep -q '"spawn_rate": 5' || fail "the UI is not filled in with 5 users/s"
ok "web UI filled in with 50 users at 5 users/s"
docker ps -q --filter "name=${COMPOSE_PROJECT_NAME}_load-generator_run" | xargs -r docker rm -f >/dev/null

step "health check: the UI over TLS (as docs/docker.md shows it), LOCUST_HEADLESS=on"
if command -v openssl >/dev/null; then
  mkdir "$work/certs"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -keyout "$work/certs/key.pem" -out "$work/certs/cert.pem" >/dev/null 2>&1
  chmod 0644 "$work/certs/"*.pem
  tls=$(compose run -d -v "$work/certs:/certs:ro" load-generator \
    --tls-cert /certs/cert.pem --tls-key /certs/key.pem 2>/dev/null | tail -n 1)
  for _ in $(seq 30); do
    python3 -c "import ssl, urllib.request as u; u.urlopen('https://127.0.0.1:$TEST_WEB_PORT/', timeout=2, context=ssl._create_unverified_context())" 2>/dev/null && break
    sleep 1
  done
  docker exec "$tls" python3 /app/docker/healthcheck.py generator >/dev/null \
    || fail "the health check fails for a UI with --tls-cert"
  docker rm -f "$tls" >/dev/null
  ok "a UI with --tls-cert is healthy"
  # a private key as it usually is (0600, the host's owner): the container's user can't read it
  chmod 0600 "$work/certs/key.pem"
  set +e
  out=$(compose run --rm -T --no-deps -v "$work/certs:/certs:ro" -e LOCUST_HEADLESS=true \
    -e LOCUST_RUN_TIME=3s load-generator --tls-cert /certs/cert.pem --tls-key /certs/key.pem 2>&1)
  rc=$?
  set -e
  [ "$rc" = 2 ] && grep -qF 'cannot read /certs/key.pem: this user (uid 10001) may not read it. Make it readable: chmod a+r' <<<"$out" \
    || fail "an unreadable --tls-key: exit $rc, $(tail -n 3 <<<"$out")"
  ok "an unreadable --tls-key stops the run with exit 2 and says why"
else
  echo "skipped the TLS check: no openssl"
fi
image=$(compose config | awk '/image: payment-loadgen/ {print $2; exit}')
docker run --rm --network none -e LOCUST_HEADLESS=on --entrypoint python3 "$image" \
  /app/docker/healthcheck.py generator >/dev/null || fail "LOCUST_HEADLESS=on is not healthy"
out=$(docker run --rm --network none -e LOCUST_HEADLESS=On "$image" --version 2>&1)
case "$out" in *"web UI on"*) fail "LOCUST_HEADLESS=On announces a web UI" ;; esac
ok "LOCUST_HEADLESS=on: healthy, no web UI announced"
out=$(docker run --rm --network none "$image" --help 2>&1)
for option in --personas --seed --profile --slo-p95-ms --reconcile-run --junit-xml --headless \
  --baseline --baseline-tolerance --baseline-min-ms --journey-rate --slo-targets; do
  grep -qE "^ +$option( |$)" <<<"$out" || fail "docker run <image> --help does not list $option"
done
case "$out" in *"web UI on"*) fail "--help announces a web UI" ;; esac
ok "docker run <image> --help lists Locust's options and this tool's"
# the help imports the locustfile: a setting a run would stop on (a compose .env's) leaves it be
set +e
out=$(docker run --rm --network none -e LOCUST_BASELINE=/baseline/gone "$image" --help 2>&1)
rc=$?
set -e
[ "$rc" = 0 ] && grep -qE "^ +--baseline-min-ms( |$)" <<<"$out" \
  || fail "LOCUST_BASELINE=/baseline/gone docker run <image> --help: exit $rc, $(tail -n 3 <<<"$out")"
ok "--help with a LOCUST_BASELINE that cannot be read: the help, exit 0"

step "docker stop while the generator waits for an unreachable target (locust is PID 1)"
waiting=$(compose run -d --no-deps -e LOCUST_HOST=http://127.0.0.1:9 -e LOCUST_HEADLESS=true \
  -e LOCUST_RUN_TIME=10s -e LOCUST_WAIT_FOR_HOST=60 load-generator 2>/dev/null | tail -n 1)
sleep 4
started=$SECONDS
docker stop -t 30 "$waiting" >/dev/null
took=$((SECONDS - started)) rc=$(docker inspect -f '{{.State.ExitCode}}' "$waiting")
log=$(docker logs "$waiting" 2>&1)
docker rm "$waiting" >/dev/null
[ "$took" -le 5 ] && [ "$rc" = 1 ] \
  || fail "docker stop took ${took}s (exit $rc), a SIGTERM-ignoring PID 1? $(tail -n 3 <<<"$log")"
grep -q 'SIGTERM while checking the target: stopped. No traffic was sent.' <<<"$log" \
  || fail "no stop message: $(tail -n 3 <<<"$log")"
ok "stopped in ${took}s with exit code 1, no load sent"

step "docker stop of a worker that has no master to connect to"
waiting=$(compose --profile workers run -d --no-deps -e LOCUST_EXPECT_WORKERS=1 worker --worker \
  --master-host 127.0.0.1 --master-port 9 \
  2>/dev/null | tail -n 1)
sleep 4
started=$SECONDS
docker stop -t 30 "$waiting" >/dev/null
took=$((SECONDS - started))
docker rm "$waiting" >/dev/null
[ "$took" -le 5 ] || fail "docker stop of a worker took ${took}s (SIGTERM ignored until the SIGKILL)"
ok "stopped in ${took}s"

step "workers for a standalone generator (--scale worker=N without LOCUST_EXPECT_WORKERS) stop after WORKER_MASTER_WAIT"
set +e
# (timeout runs a command, not the compose function: the merged file it wrote last; without the
# fix the worker waits for good)
out=$(timeout 60 $COMPOSE -f "$work/compose.yml" --profile workers run --rm -T --no-deps \
  -e WORKER_MASTER_WAIT=2 worker 2>&1)
rc=$?
set -e
[ "$rc" = 2 ] && grep -q 'This worker has no master: LOCUST_EXPECT_WORKERS=0 (docker-compose.yml' <<<"$out" \
  || fail "a worker without a master: exit $rc, $(tail -n 3 <<<"$out")"
ok "exit code 2, the fix named"

step "datadog profile wiring: the agent's service name turns tracing on, its absence keeps it off"
image=$(compose config | awk '/image: payment-loadgen/ {print $2; exit}')
with=$(docker run --rm --network host --add-host datadog-agent:127.0.0.1 --entrypoint sh "$image" \
  -c '. /app/docker/env.sh; echo "${DD_AGENT_HOST:-unset}"')
without=$(docker run --rm --network host --entrypoint sh "$image" -c '. /app/docker/env.sh; echo "${DD_AGENT_HOST:-unset}"')
[ "$with" = datadog-agent ] || fail "with a datadog-agent host, DD_AGENT_HOST is '$with'"
[ "$without" = unset ] || fail "without the agent, DD_AGENT_HOST is '$without'"
ok "DD_AGENT_HOST=datadog-agent when the agent resolves, unset otherwise"
# DD_TRACE_ENABLED=true without the profile: ddtrace sends to 127.0.0.1:8126, the container's own
# loopback; the service's warning must lead to the agent that is missing, not only that address
service_image=$(compose config | awk '/image: payment-service/ {print $2; exit}')
traced=$(docker run -d --network none -e DD_TRACE_ENABLED=true -e PAYMENT_INTERNAL_TOKEN \
  "$service_image")
log=""
for _ in $(seq 20); do
  log=$(docker logs "$traced" 2>&1)
  grep -q 'tracing: the trace agent at' <<<"$log" && break
  sleep 1
done
docker rm -f -v "$traced" >/dev/null
grep -q 'tracing: the trace agent at http://127.0.0.1:8126 does not answer' <<<"$log" \
  || fail "DD_TRACE_ENABLED=true without an agent: no warning from the service: $(tail -n 3 <<<"$log")"
grep -q 'the datadog-agent service is not running.*--profile datadog' <<<"$log" \
  || fail "DD_TRACE_ENABLED=true without the datadog profile: the service's log names neither the datadog-agent service nor its profile: $(tail -n 3 <<<"$log")"
ok "DD_TRACE_ENABLED=true without the profile: the service names the missing datadog-agent and --profile datadog"

step "teardown"
cleanup
ok "down -v"
echo
echo "verify.sh: all checks passed"
