# runservice: a small, non-root image serving workflows over gRPC with SQLite in /data.
#   docker build -t runservice .
#   docker run -p 50051:50051 -v runservice-data:/data runservice
# Serve your own workflows by building FROM this image and adding your package, then
#   CMD ["serve", "--workflows", "my_app.workflows"]   (or ENV RUNSERVICE_WORKFLOWS=my_app.workflows)

# --- build: install the package and its pinned dependencies into a venv ------------------------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# Dependencies are pinned in pyproject.toml (the grpc family exactly); no dev extras.
COPY pyproject.toml README.md ./
COPY stubs ./stubs
COPY service ./service
RUN pip install --no-cache-dir .

# --- runtime ------------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RUNSERVICE_ADDRESS=0.0.0.0:50051 \
    RUNSERVICE_DATA_DIR=/data

RUN groupadd --system --gid 10001 runservice \
    && useradd --system --uid 10001 --gid runservice --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin runservice \
    && mkdir /data \
    && chown runservice:runservice /data

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 50051

# The standard gRPC health service on the port of RUNSERVICE_ADDRESS (NOT_SERVING while draining).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; port = os.environ.get('RUNSERVICE_ADDRESS', ':50051').rpartition(':')[2]; reply = g.HealthStub(grpc.insecure_channel('127.0.0.1:' + port)).Check(h.HealthCheckRequest(), timeout=3); sys.exit(reply.status != h.HealthCheckResponse.SERVING)"]

ENTRYPOINT ["runservice"]
CMD ["serve"]
