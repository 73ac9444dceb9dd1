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
