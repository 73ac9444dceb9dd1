#!/bin/sh
# The reference payment service: listens on $PAYMENT_SERVICE_HOST:$PAYMENT_SERVICE_PORT and keeps
# its SQLite database at $PAYMENT_DB (a volume). The token comes from PAYMENT_INTERNAL_TOKEN.
# Extra arguments (the service's fault flags, e.g. `--error-rate 0.1`) are passed through.
set -eu
. /app/docker/env.sh
exec python3 -m payment_service \
  --host "${PAYMENT_SERVICE_HOST:-0.0.0.0}" \
  --port "${PAYMENT_SERVICE_PORT:-8000}" \
  --db "${PAYMENT_DB:-/data/payments.sqlite}" \
  "$@"
