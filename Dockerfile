# Vobiz voice agent: the service image.
# Build:  docker build -t vobiz-voice-agent .
# Run:    docker run --env-file .env -p 8000:8000 vobiz-voice-agent
# With the embedded offline engines (GPL voice; no keys needed):
#         docker build --build-arg EXTRAS=embedded -t vobiz-voice-agent .
# The base is pinned to an exact Python patch release and Debian release (the tag, not a digest:
# no registry was reachable where this file was written to read one; add @sha256:… to pin the
# bytes). Python 3.11 is the version the lock files are solved for and CI runs.
FROM python:3.11.14-slim-bookworm AS build
# "" (the cloud engines) or "embedded": picks requirements.lock or requirements-embedded.lock
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The dependencies first, from the lock with every file's sha256: this layer is rebuilt only when
# a lock changes, not on every code change
COPY requirements.lock requirements-embedded.lock requirements-dev.lock ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes -r "requirements${EXTRAS:+-$EXTRAS}.lock"
COPY pyproject.toml README.md ./
COPY app ./app
COPY agents ./agents
# The project itself, nothing more (--no-deps); its build backend (hatchling) at the locked version
RUN grep -E '^[A-Za-z0-9]' requirements-dev.lock | sed 's/ *\\$//' > /tmp/lock-constraints.txt \
 && PIP_CONSTRAINT=/tmp/lock-constraints.txt /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/pip check

FROM python:3.11.14-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN useradd --create-home --uid 10001 agent
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY --chown=agent:agent prompts ./prompts
# DATA_DIR: the example agents' SQLite tables (a volume in docker-compose.yml)
RUN mkdir -p /srv/data && chown agent:agent /srv/data
ENV DATA_DIR=/srv/data
USER 10001
EXPOSE 8000
# Liveness: /healthz stays 200 while a stopping container drains its calls (/readyz says 503 then)
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
# SIGTERM starts the drain (docker stop, a rolling update); the grace period before SIGKILL must
# cover DRAIN_TIMEOUT: stop_grace_period in docker-compose.yml, terminationGracePeriodSeconds in deploy/
STOPSIGNAL SIGTERM
CMD ["voice-agent", "serve", "--host", "0.0.0.0", "--port", "8000"]
