# Vobiz voice agent: the service image.
# Build:  docker build -t vobiz-voice-agent .
# Run:    docker run --env-file .env -p 8000:8000 vobiz-voice-agent
# With the embedded offline engines (GPL voice; no keys needed):
#         docker build --build-arg EXTRAS=embedded -t vobiz-voice-agent .
FROM python:3.12-slim AS build
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY agents ./agents
RUN python -m venv /opt/venv && /opt/venv/bin/pip install ".${EXTRAS:+[$EXTRAS]}"

FROM python:3.12-slim
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
USER agent
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
CMD ["voice-agent", "serve", "--host", "0.0.0.0", "--port", "8000"]
