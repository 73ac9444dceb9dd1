# The payment load generator (Locust) and the reference payment service, from one build.
#
#   docker build -t payment-loadgen .                                  # the generator (default)
#   docker build -t payment-service --target service .                 # the reference service
#   docker build --build-arg BASE_IMAGE=local/python:3.11-slim ...     # any python >= 3.11 base
#
# docker-compose.yml builds both; docs/docker.md shows how to run them. Both run as the
# unprivileged user `app`; tracing is started by our own code from DD_* env vars (plain
# `locust`, never `ddtrace-run`).
ARG BASE_IMAGE=python:3.12-slim

# --- build: the pinned requirements in a virtualenv (pip and its caches stay in this stage) ---
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY requirements.txt /tmp/requirements.txt
# pandas' and numpy's own test suites are two thirds of their size and never imported.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt \
 && /opt/venv/bin/pip uninstall --yes pip \
 && rm -rf /opt/venv/lib/python3*/site-packages/pandas/tests \
           /opt/venv/lib/python3*/site-packages/numpy/*/tests

# --- runtime: the venv, the code, a non-root user; shared by both targets below ---------------
FROM ${BASE_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Code is owned by root and read-only for `app`; bytecode is compiled now because `app` can't
# write __pycache__ at run time.
COPY payment_contract/ payment_contract/
COPY payment_service/ payment_service/
COPY journeys/ journeys/
COPY locust.conf locustfile.py ./
COPY docker/ docker/
RUN python3 -m compileall -q payment_contract payment_service journeys locustfile.py \
 && chmod 0755 docker/*.sh

# --- service: the reference payment service (FastAPI + SQLite) on $PAYMENT_SERVICE_PORT -------
FROM runtime AS service
ENV PAYMENT_SERVICE_HOST=0.0.0.0 \
    PAYMENT_SERVICE_PORT=8000 \
    PAYMENT_DB=/data/payments.sqlite
# /data is where the named volume goes; a fresh volume copies this directory's owner (app).
RUN mkdir /data && chown app:app /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python3", "/app/docker/healthcheck.py", "service"]
ENTRYPOINT ["/app/docker/service-entrypoint.sh"]

# --- generator: Locust with our locustfile (the default target) --------------------------------
FROM runtime AS generator
# The traffic mix, in its own last layer: editing it rebuilds this layer only, not the code's
# layers or the service image (compose mounts it anyway, so no rebuild is needed to use it).
# The example --slo-targets file beside it: the messages about that option point to it.
COPY personas.csv slo-targets.example.csv ./
# The CSV and HTML reports (docker/entrypoint.sh writes them here unless told otherwise).
RUN mkdir /app/reports && chown app:app /app/reports
USER 10001:10001
# 8089: web UI; 5557: master <- workers.
EXPOSE 8089 5557
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python3", "/app/docker/healthcheck.py", "generator"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
