# One image for every Python process of the platform. Each container runs its own command, the
# same one scripts/supervisord.conf runs on a local run (compose, k8s/ and helm/ repeat it):
#   nameko run --config config.yml services.<name>.service     the eight services, kafka_sink, analytics
#   gunicorn --config gateway/gunicorn_conf.py                  the gateway (the default CMD)
#   python -m services.common.migrations                        migrations (a one-shot job)
#   python scripts/seed_demo.py, python -m services.customers.bootstrap_admin, ...
#
#   docker build -t ecommerce-platform:dev .
#   bash scripts/images.sh platform     the same, with stand-in bases when Docker Hub can't be reached
#
# No `# syntax=` line and no BuildKit-only instruction: the classic builder (DOCKER_BUILDKIT=0)
# builds it, and nothing but the two bases below comes from a registry. Both bases are build
# arguments; scripts/images.sh passes its Debian-built stand-ins (python3.11 from bookworm) when
# the official images can't be pulled.
ARG PYTHON_BUILD_IMAGE=python:3.11.13-bookworm
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------- build: the pinned virtualenv
# the same Python with a compiler and headers, for any dependency that ships no wheel
# the base is pinned by its ARG's default (hadolint sees no tag in a variable)
# hadolint ignore=DL3006
FROM ${PYTHON_BUILD_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# python3.11, not python: the name both the official image and Debian's package provide
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# docker/pip-ca.pem only when scripts/images.sh put it there (the machine's CA bundle, for a
# network whose TLS proxy pip must trust): the pattern matches nothing otherwise. It stays in
# this stage; the runtime stage copies only /opt/venv.
COPY requirements.txt requirements.in docker/prune_dev.py docker/pip-ca.pe[m] /tmp/
# the pinned tree; then drop what only the developers' tools and the tests need (test runner,
# linter, API fuzzer, load tester, plotting, the local process manager) with all they alone pull in
RUN if [ -f /tmp/pip-ca.pem ]; then export PIP_CERT=/tmp/pip-ca.pem; fi \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && python /tmp/prune_dev.py /tmp/requirements.in \
        pytest ruff schemathesis locust pika matplotlib numpy py-spy supervisor \
    && find /opt/venv -depth -name __pycache__ -type d -exec rm -rf {} +

# ---------------------------------------------------------------- runtime
# the base is pinned by its ARG's default (hadolint sees no tag in a variable)
# hadolint ignore=DL3006
FROM ${PYTHON_IMAGE} AS runtime
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
# byte-compiled once here: the root filesystem is read-only at run time, so without .pyc files every
# process start, and every health check, would compile its imports again (seconds on a busy machine)
RUN python -m compileall -q /opt/venv /app
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
