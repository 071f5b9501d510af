# syntax=docker/dockerfile:1
# qev: the clearing service (`qev serve`, the default) and the keeper (`qev keeper run`).
#   docker build -t qev:local .
#   docker run --rm -p 127.0.0.1:8000:8000 -e QEV_RPC_URL=... -e QEV_VAULT=... qev:local
#   docker run --rm ... qev:local keeper run
# Settings come from QEV_* variables (clearing/api/settings.py, keeper/settings.py); keys
# from files (QEV_SERVICE_KEY_FILE, QEV_*_KEY_FILE; the keeper's QEV_MASTER_SECRET_FILE),
# never arguments. The service gets no master secret: it serves the keeper's published keys.

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
RUN pip install --no-cache-dir . \
    && python -m compileall -q /opt/venv/lib \
    && qev version

# --- runtime: slim, non-root, no compilers ----------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 qev \
    && useradd --system --uid 10001 --gid qev --home-dir /var/lib/qev --create-home \
       --shell /usr/sbin/nologin qev \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/qev/keys
COPY --from=builder /opt/venv /opt/venv
# keeper/artifacts.py reads the contract ABIs from <site-packages>/contracts/artifacts
COPY contracts/artifacts /opt/venv/lib/python3.11/site-packages/contracts/artifacts
# The *_KEY_FILE values are paths to key files mounted at run time, not secrets.
# hadolint ignore=DL3064
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    QEV_HOST=0.0.0.0 \
    QEV_PORT=8000 \
    QEV_STORE_URL=sqlite:////var/lib/qev/qev.db \
    QEV_SERVICE_KEY_FILE=/var/lib/qev/keys/service.key \
    QEV_URGENT_KEY_FILE=/var/lib/qev/keys/keeper-urgent.key \
    QEV_HOUSEKEEPING_KEY_FILE=/var/lib/qev/keys/keeper-housekeeping.key
WORKDIR /var/lib/qev
USER 10001:10001
EXPOSE 8000
# /healthz of `qev serve`; the keeper's container overrides it (compose.yaml: its metrics)
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('QEV_PORT', '8000') + '/healthz', timeout=2)"]
ENTRYPOINT ["qev"]
CMD ["serve"]
