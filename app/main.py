"""``create_app(settings)``: the FastAPI service. ``uvicorn --factory app.main:create_app``."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from fastapi import FastAPI

from agents.personas import persona_names
from app.api import health, media, webhooks
from app.api.deps import AgentFactory, AppContext
from app.clock import Clock, SystemClock
from app.config import Settings, SignatureMode
from app.pipeline.echo import EchoAgent
from app.pipeline.registry import CallRegistry
from app.telephony.token import MIN_SECRET_BYTES, new_secret

log = logging.getLogger("app")


class ConfigurationError(RuntimeError):
    """The settings cannot work; raised at start-up, never mid-call."""


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    agent_factory: AgentFactory | None = None,
    prompts_dir: Path | None = None,
) -> FastAPI:
    settings = settings if settings is not None else Settings()
    prompts_dir = prompts_dir or settings.prompts_dir
    if settings.signature_mode is SignatureMode.ENFORCE and not settings.vobiz_auth_token.get_secret_value():
        raise ConfigurationError("SIGNATURE_MODE=enforce needs VOBIZ_AUTH_TOKEN to check signatures")
    personas = persona_names(prompts_dir)
    if settings.default_persona not in personas:
        raise ConfigurationError(
            f"DEFAULT_PERSONA={settings.default_persona!r}: no {settings.default_persona}.md in {prompts_dir}"
        )
    secret = settings.stream_token_secret.get_secret_value().encode()
    if secret and len(secret) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"STREAM_TOKEN_SECRET must be at least {MIN_SECRET_BYTES} characters")
    if not secret:
        secret = new_secret()
        log.warning("STREAM_TOKEN_SECRET is not set: using a random key (valid for one replica only)")
    app = FastAPI(title="Vobiz voice agent", docs_url=None, redoc_url=None)
    app.state.ctx = AppContext(
        settings=settings,
        token_secret=secret,
        registry=CallRegistry(),
        clock=clock or SystemClock(),
        wall_time=time.time,
        agent_factory=agent_factory or (lambda claims: EchoAgent()),
        personas=personas,
    )
    app.include_router(health.router)
    app.include_router(webhooks.router)
    app.include_router(media.router)
    return app
