"""What the routes share, built once by ``create_app`` and kept on ``app.state.ctx``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request, WebSocket

from agents.personas import Persona
from app.api.bus import CallBus
from app.api.guard import CallGuard
from app.clock import Clock
from app.config import Settings
from app.drain import Drain
from app.pipeline.lifecycle import CallListener
from app.pipeline.registry import CallRegistry
from app.pipeline.session import Agent
from app.telephony.rest import VobizClient
from app.telephony.token import StreamClaims

if TYPE_CHECKING:
    from app.api.playground_feed import PlaygroundFeed

AgentFactory = Callable[[StreamClaims, "AppContext"], Agent]
"""Builds the agent for one call from its verified stream claims and the app's shared parts."""


@dataclass(slots=True)
class AppContext:
    settings: Settings
    token_secret: bytes
    registry: CallRegistry
    clock: Clock  # monotonic time for the call path
    wall_time: Callable[[], float]  # unix seconds, for token expiry across replicas
    agent_factory: AgentFactory
    personas: dict[str, Persona]
    vobiz: VobizClient | None  # the REST API, when VOBIZ_AUTH_ID/VOBIZ_AUTH_TOKEN are set
    guard: CallGuard  # one live socket per call, ended calls, webhook nonces (app/api/guard.py)
    bus: CallBus  # end requests reach the process that holds the call (app/api/bus.py)
    listeners: list[CallListener] = field(default_factory=list)  # told of each call's start and end
    drain: Drain = field(default_factory=Drain)  # SIGTERM: not ready, live calls go on (app/drain.py)
    playground: PlaygroundFeed | None = None  # PLAYGROUND=on: browser calls' feed (api/playground.py)
    # a campaign contact's {placeholder} values by call id, from the answer URL until the call's
    # socket opens (this process; another replica's socket uses the persona's defaults)
    call_variables: dict[str, dict[str, str]] = field(default_factory=dict)


async def get_ctx(request: Request) -> AppContext:
    """Async on purpose: a sync dependency would run in a worker thread on every request."""
    ctx: AppContext = request.app.state.ctx
    return ctx


def ws_ctx(websocket: WebSocket) -> AppContext:
    ctx: AppContext = websocket.app.state.ctx
    return ctx
