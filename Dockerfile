# syntax=docker/dockerfile:1
# guardrail's image: `docker build -t guardrail .`
#   docker run --env-file .env -p 3000:3000 guardrail            # serve (the default command)
#   docker run --env-file .env guardrail migrate                  # one-off: bring the schema up to date
# Everything is installed from requirements.lock (hashed, binary wheels only), so neither stage
# needs a compiler; the final stage gets the virtualenv and the playbooks, nothing else.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/guardrail
WORKDIR /src
# The lock first: this layer is rebuilt only when a dependency changes, not on every code change.
COPY requirements.lock ./
RUN /opt/guardrail/bin/pip install --require-hashes --only-binary :all: --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN /opt/guardrail/bin/pip install --no-deps . \
 && /opt/guardrail/bin/pip check

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="guardrail" \
      org.opencontainers.image.description="Freeze windows, live health answers and incident playbooks, in Slack." \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 guardrail \
 && useradd --system --uid 10001 --gid guardrail --home-dir /app --no-create-home --shell /usr/sbin/nologin guardrail \
 && mkdir -p /app /data \
 && chown guardrail:guardrail /data
COPY --from=build /opt/guardrail /opt/guardrail
WORKDIR /app
# The example playbooks; mount your own over /app/playbooks (compose: ./playbooks; Kubernetes: a ConfigMap).
COPY playbooks ./playbooks
ENV PATH="/opt/guardrail/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=3000 \
    GUARDRAIL_CONFIG=/app/playbooks \
    DATABASE_URL=sqlite:////data/guardrail.db
# SQLite lives here when DATABASE_URL is not PostgreSQL (one container only; see docs/operations.md).
VOLUME ["/data"]
USER 10001:10001
EXPOSE 3000
# No curl in a slim image: the interpreter that runs guardrail asks /healthz (exit 1 on any failure).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3000') + '/healthz', timeout=4)"
ENTRYPOINT ["guardrail"]
CMD ["serve"]
