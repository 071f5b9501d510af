# syntax=docker/dockerfile:1
# qev: the clearing service (`qev serve`, the default) and the keeper (`qev keeper run`).
#   docker build -t qev:local .
#   docker run --rm -p 127.0.0.1:8000:8000 -e QEV_RPC_URL=... -e QEV_DEPLOYMENT_FILE=... qev:local
#   docker run --rm ... qev:local keeper run
# Settings come from QEV_* variables or a config file (QEV_CONFIG; `qev config check`); keys
# from files (QEV_SERVICE_KEY_FILE; the keeper's QEV_MASTER_SECRET_FILE, QEV_URGENT_KEY_FILE,
# QEV_HOUSEKEEPING_KEY_FILE; keystores unlocked with QEV_KEYSTORE_PASSPHRASE_FILE), never
# arguments. The service gets no master secret: it serves the keeper's published keys.
# compose.yaml runs the whole stack; key volumes mount at /var/lib/qev/service-keys and
# /var/lib/qev/keeper-keys, the deployment file at /var/lib/qev/deploy.
# Runtime dependencies only: py-evm (`qev demo`) is the `demo` extra, not installed here.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: a venv with qev and its dependencies (compilers stay here) -------------------
FROM ${PYTHON_IMAGE} AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY qev ./qev
COPY clearing ./clearing
COPY keeper ./keeper
# package data of qev_artifacts (pyproject.toml): keeper/artifacts.py finds them installed
COPY contracts/artifacts ./contracts/artifacts
RUN pip install --no-cache-dir . \
    && python -m compileall -q /opt/venv/lib \
    && qev version

# --- runtime: slim, non-root, no compilers ----------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# The mount points exist (owned by qev, 0700) so fresh named volumes copy that ownership.
RUN groupadd --system --gid 10001 qev \
    && useradd --system --uid 10001 --gid qev --home-dir /var/lib/qev --create-home \
       --shell /usr/sbin/nologin qev \
    && install -d -o 10001 -g 10001 -m 0700 \
       /var/lib/qev/service-keys /var/lib/qev/keeper-keys /var/lib/qev/deploy
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    QEV_HOST=0.0.0.0 \
    QEV_PORT=8000 \
    QEV_STORE_URL=sqlite:////var/lib/qev/qev.db
WORKDIR /var/lib/qev
USER 10001:10001
# smoke: every subcommand's --help runs here, as the runtime user (scripts/smoke-help)
RUN --mount=type=bind,source=scripts/smoke-help,target=/tmp/smoke-help \
    python /tmp/smoke-help
EXPOSE 8000
# /healthz of `qev serve`; the keeper's container overrides it (compose.yaml: its metrics)
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('QEV_PORT', '8000') + '/healthz', timeout=2)"]
ENTRYPOINT ["qev"]
CMD ["serve"]
