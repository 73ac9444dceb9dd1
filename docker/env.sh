# Sourced by the entrypoints. Compose passes an optional variable it has no value for as an empty
# string (`DD_AGENT_HOST: ${DD_AGENT_HOST:-}`); empty means "not set", so unset those before
# Locust, ddtrace or the service read them (an empty LOCUST_RUN_TIME would be an invalid option,
# an empty DD_AGENT_HOST must not turn tracing on).
for name in $(env | sed -n 's/^\(\(DD\|LOCUST\|PAYMENT\)_[A-Za-z0-9_]*\)=$/\1/p'); do
  unset "$name"
done
unset name
