# runservice: a small, non-root image serving workflows over gRPC with SQLite in /data.
#   docker build -t runservice .
#   docker run -p 50051:50051 -v runservice-data:/data runservice
# Serve your own workflows by building FROM this image (README "Docker" has a full example):
#   COPY my_app /app/my_app  +  ENV RUNSERVICE_APP_DIR=/app RUNSERVICE_WORKFLOWS=my_app.workflows
# tests/test_image.py builds the same wheel, installs it into a fresh venv and runs this
# ENTRYPOINT (after tini's `--`) + CMD with this ENV, then this HEALTHCHECK.

# --- build: the project's wheel, installed with its pinned dependencies into a venv --------------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Dependencies are pinned in pyproject.toml (the grpc family exactly); no dev extras. The otlp
# extra: the OTLP span exporters, so that the standard OTEL_EXPORTER_OTLP_* variables and
# --tracing export spans from the image (README "Traces").
COPY pyproject.toml README.md ./
COPY stubs ./stubs
COPY service ./service
# DL3013 takes the wheel with its extra for a package from the index: its versions are pyproject's.
# hadolint ignore=DL3013
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && set -- /wheels/runservice-*.whl \
    && pip install "$1[otlp]"

# --- runtime ------------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    RUNSERVICE_ADDRESS=0.0.0.0:50051 \
    RUNSERVICE_DATA_DIR=/data

# tini is PID 1: it reaps the processes that steps' own children leave behind (a `sh -c 'x &'`:
# runservice as PID 1 never waited for them, and they stayed zombies for the container's life),
# and a SIGTERM that comes before the server installs its handlers stops the server (PID 1 gets
# no default action: the signal was lost, and a pod deleted while starting waited for SIGKILL).
# DL3008: Debian's tini of this base image's release; its version is the release's.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

# /data is the server user's alone (0700, as the server makes a data directory): a new named
# volume takes the mode of the image's directory, so no other account can read the runs.
RUN groupadd --system --gid 10001 runservice \
    && useradd --system --uid 10001 --gid runservice --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin runservice \
    && mkdir /data /app \
    && chown runservice:runservice /data \
    && chmod 0700 /data

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /app
VOLUME ["/data"]
EXPOSE 50051

# `runservice health` asks the gRPC health service on the server's plaintext health socket
# /data/runservice.HOSTNAME.sock (so it works with TLS on), else at the address the server wrote into
# /data/runservice.address when it started (it follows an --address given in the command).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["runservice", "health"]

# Exec form: tini passes SIGTERM on to runservice (health NOT_SERVING, drain, grace).
ENTRYPOINT ["/usr/bin/tini", "--", "runservice"]
CMD ["serve"]
