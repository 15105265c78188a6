# syntax=docker/dockerfile:1
# One image for every Python process of the platform. Each container runs its own command, the
# same one scripts/supervisord.conf runs on a local run (compose, k8s/ and helm/ repeat it):
#   nameko run --config config.yml services.<name>.service     the eight services, kafka_sink, analytics
#   gunicorn --config gateway/gunicorn_conf.py                  the gateway (the default CMD)
#   python -m services.common.migrations                        migrations (a one-shot job)
#   python scripts/seed_demo.py, python -m services.customers.bootstrap_admin, ...
#
#   docker build -t ecommerce-platform:dev .

# ---------------------------------------------------------------- build: the pinned virtualenv
# the same Python with a compiler and headers, for any dependency that ships no wheel
FROM python:3.11.13-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt requirements.in docker/prune_dev.py /tmp/
# the pinned tree; then drop what only the developers' tools and the tests need (test runner,
# linter, API fuzzer, load tester, plotting, the local process manager) with all they alone pull in
RUN pip install --no-cache-dir -r /tmp/requirements.txt \
    && python /tmp/prune_dev.py /tmp/requirements.in \
        pytest ruff schemathesis locust pika matplotlib numpy py-spy supervisor \
    && find /opt/venv -depth -name __pycache__ -type d -exec rm -rf {} +

# ---------------------------------------------------------------- runtime
FROM python:3.11.13-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONWARNINGS=ignore::DeprecationWarning
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# root-owned and read-only to the app user: the code never writes next to itself
COPY config.yml alembic.ini ./
COPY services ./services
COPY gateway ./gateway
COPY scripts/seed_demo.py ./scripts/seed_demo.py
COPY elk/elasticsearch ./elk/elasticsearch
COPY docker/healthcheck.py ./docker/healthcheck.py
USER 10001:10001
# gateway 8080; each Nameko service's /metrics: customers 9101 ... notifications 9108, analytics 9109, kafka_sink 9110
EXPOSE 8080 9101 9102 9103 9104 9105 9106 9107 9108 9109 9110
# works out from PID 1's command what to probe: the gateway's /health, a service's /metrics,
# or (kafka_sink, analytics: no port) an open connection to the broker
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/app/docker/healthcheck.py"]
CMD ["gunicorn", "--config", "gateway/gunicorn_conf.py"]
# last, so a new commit rebuilds no layer above (CI passes the commit SHA, the image's tag too)
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.title="ecommerce-platform" \
      org.opencontainers.image.description="Nameko services, kafka_sink, analytics and the Flask gateway" \
      org.opencontainers.image.revision="${GIT_SHA}"
