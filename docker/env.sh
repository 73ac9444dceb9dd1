# Sourced by the entrypoints. Compose passes an optional variable it has no value for as an empty
# string (`DD_AGENT_HOST: ${DD_AGENT_HOST:-}`); empty means "not set", so unset those before
# Locust, ddtrace or the service read them (an empty LOCUST_RUN_TIME would be an invalid option,
# an empty DD_AGENT_HOST must not turn tracing on).
for name in $(env | sed -n 's/^\(\(DD\|LOCUST\|PAYMENT\)_[A-Za-z0-9_]*\)=$/\1/p'); do
  unset "$name"
done
unset name

# `--profile datadog` starts a `datadog-agent` service: when no agent was configured by hand and
# that name resolves (the profile is on; it may take the agent a moment to join the network), send
# traces to it. Without the profile the name never resolves and tracing stays off, with no noise.
if [ -z "${DD_AGENT_HOST:-}${DD_TRACE_AGENT_URL:-}" ] && [ "${DD_TRACE_ENABLED:-}" != false ] \
   && python3 - "${DD_AGENT_HOSTNAME:-datadog-agent}" <<'PY' 2>/dev/null
import socket, sys, time
for attempt in range(4):
    try:
        socket.gethostbyname(sys.argv[1])
        sys.exit(0)
    except OSError:
        time.sleep(0.5)
sys.exit(1)
PY
then
  export DD_AGENT_HOST="${DD_AGENT_HOSTNAME:-datadog-agent}"
fi

# DD_TRACE_ENABLED=true with no agent named and no `datadog-agent` service: ddtrace sends to
# 127.0.0.1:8126, this container's own loopback, and the service's warning names only that
# address. When nothing listens there (something may, on the host network), say which agent is
# missing and how to start it.
if [ -z "${DD_AGENT_HOST:-}${DD_TRACE_AGENT_URL:-}" ]; then
  case "$(printf %s "${DD_TRACE_ENABLED:-}" | tr '[:upper:]' '[:lower:]' | tr -d ' ')" in
    true | 1 | yes | on)
      python3 - "${DD_TRACE_AGENT_PORT:-8126}" <<'PY' 2>/dev/null \
        || echo "tracing: DD_TRACE_ENABLED=$DD_TRACE_ENABLED names no agent and the datadog-agent service is" \
                "not running, so traces go to 127.0.0.1:${DD_TRACE_AGENT_PORT:-8126} in this" \
                "container, where no agent listens: start the agent with its profile" \
                "(DD_API_KEY=... docker compose --profile datadog up) or name yours with" \
                "DD_AGENT_HOST" >&2
import socket, sys
try:
    port = int(sys.argv[1])
except ValueError:
    sys.exit(0)  # a bad port is the tracing setup's to name
socket.create_connection(("127.0.0.1", port), timeout=1).close()
PY
      ;;
  esac
fi
