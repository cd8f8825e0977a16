# syntax=docker/dockerfile:1
# The operator's image: the locked dependencies and the package in a virtual environment,
# copied onto a slim Python without build tools, run as a non-root user.
#
#   docker build -t <registry>/shared-services-operator:0.1.0 .
#
# Python's minor version matches the one the tests install and run the operator with; uv's
# version matches UV_VERSION in the Makefile.

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11.14-slim-trixie AS build
COPY --from=uv /uv /usr/local/bin/uv
# Bytecode compiled at build time, since the root filesystem is read-only at run time; copy
# rather than hard-link out of the cache mount; never download a Python, use the image's.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3.11
WORKDIR /app
# The dependencies first, in a layer that changes only with the lock file.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable --no-install-project
COPY operator ./operator
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable

FROM python:3.11.14-slim-trixie
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Any non-root UID works; 65532 is the conventional "nonroot" of distroless images, and the
# chart's securityContext names the same.
USER 65532:65532
# Metrics, and the probes /healthz (liveness) and /readyz (readiness) on the health port.
# Ports and everything else are set through the environment (see --help), as the chart does.
EXPOSE 9090 8080
ENTRYPOINT ["/app/.venv/bin/shared-services-operator"]
