# syntax=docker/dockerfile:1
#
# persona-pipeline container image: one image, two processes.
#
#   docker build -t persona-pipeline:local .
#   docker run --rm -p 8080:8080 -e CURSOR_SECRET=... persona-pipeline:local          # read API
#   docker run --rm -e CURSOR_SECRET=... persona-pipeline:local worker                # generation worker
#
# Stage 1 builds wheels of the project and of its runtime dependencies only (the
# `embedded` and `test` extras are dev-only and never enter the image); stage 2
# installs them offline from those wheels into a clean slim image without
# compilers, and runs as the unprivileged user `app` (UID/GID 1000).
# Configuration comes from the environment at run time (see
# src/persona_pipeline/core/settings.py); secrets are never baked into the image.

# Pinned patch release of the base image; both stages share it so the wheels
# match the runtime's interpreter. (A later hardening step may pin by digest.)
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---------------------------------------------------------------------------
# Stage 1: build wheels
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build

# Runtime dependencies first, read from pyproject.toml's [project].dependencies
# (no extras), so this layer stays cached while only the source changes.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/runtime-requirements.txt \
    && pip wheel --wheel-dir /wheels --requirement /tmp/runtime-requirements.txt

# Then the project itself, without resolving its dependencies again.
COPY src ./src
RUN pip wheel --no-deps --wheel-dir /wheels .

# ---------------------------------------------------------------------------
# Stage 2: runtime
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="persona-pipeline" \
      org.opencontainers.image.description="Event-driven persona generation: Kafka worker and FastAPI read API" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ENVIRONMENT=production \
    API_HOST=0.0.0.0 \
    WORKER_HOST=0.0.0.0 \
    LOG_FORMAT=json

RUN groupadd --gid 1000 app \
    && useradd --uid 1000 --gid app --create-home --home-dir /home/app \
        --shell /usr/sbin/nologin app

# Install from the builder's wheels only (no index, no cache). The wheels are
# bind-mounted rather than copied, so they never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels /wheels/persona_pipeline-*.whl

# The working directory is root-owned: the processes need no writable files
# here, and settings read a `.env` from it only if one is mounted on purpose.
WORKDIR /app

USER 1000:1000

EXPOSE 8080

# Probes the read API (the default command). The worker serves no HTTP port
# yet, so docker-compose.yml disables this healthcheck for the `worker`
# service; override or disable it likewise when running `persona worker`.
# Uses python's urllib because the slim image has no curl; any HTTP error or
# connection failure makes urlopen raise and the probe exit non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('API_PORT', '8080'), timeout=4)"]

ENTRYPOINT ["persona"]
CMD ["api"]
