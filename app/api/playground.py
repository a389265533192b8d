"""``/playground``: talk to the agent from a browser, over the same protocol Vobiz speaks.

The page captures the microphone, sends 20 ms ``media`` frames (μ-law 8 kHz like a phone, or
L16 16 kHz) over the service's own media WebSocket, and plays the agent's ``playAudio`` while
honouring ``checkpoint`` (``playedStream`` once the audio before it has played), and
``clearAudio`` (drop what is queued, answer ``clearedAudio``), as Vobiz does. A second socket
carries the conversation as it happens: what the agent heard, what it said and where it was cut,
and each turn's latency.

Off unless ``PLAYGROUND=on`` (``voice-agent playground`` sets it). Then ``POST
/playground/calls`` mints a stream token, which a webhook signed by Vobiz does otherwise, only
for a browser on this machine (a loopback peer, a loopback ``Host`` and no proxy's forwarding
headers: behind a reverse proxy every peer is loopback) or one signed in to the dashboard (the
``CALLS_API_KEY`` cookie). A public deployment with the playground off has no such route at all.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import secrets
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from starlette.websockets import WebSocketDisconnect

from agents.personas import is_valid_name
from app.api.dashboard import signed_in, templates
from app.api.deps import AppContext, get_ctx
from app.api.playground_feed import PlaygroundFeed
from app.api.webhooks import MEDIA_PATH
from app.telephony.token import StreamClaims, issue_token

if TYPE_CHECKING:
    pass

log = logging.getLogger("app")
router = APIRouter(prefix="/playground", include_in_schema=False)
Ctx = Annotated[AppContext, Depends(get_ctx)]
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")


def from_this_machine(request: Request) -> bool:
    """A browser on this machine, talking to the service directly (not through a proxy)."""
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    peer = request.client.host if request.client else ""
    host = (request.url.hostname or "").strip("[]")
    return _loopback(peer) and (host == "localhost" or _loopback(host))


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _enabled(ctx: AppContext) -> PlaygroundFeed:
    feed = ctx.playground
    if feed is None:
        raise HTTPException(status_code=404, detail="Not Found")
    return feed


def _allowed(request: Request, ctx: AppContext) -> bool:
    if from_this_machine(request):
        return True
    return bool(ctx.settings.calls_api_key.get_secret_value()) and signed_in(request, ctx)


@router.get("", response_class=HTMLResponse)
async def page(request: Request, ctx: Ctx) -> Response:
    _enabled(ctx)
    if not _allowed(request, ctx):
        raise HTTPException(status_code=403, detail="the playground is for this machine or a signed-in user")
    personas = sorted(ctx.personas)
    context = {"personas": personas, "default": ctx.settings.default_persona}
    return templates.TemplateResponse(request, "playground.html", context)


class NewCall(BaseModel):
    persona: str = Field(default="", max_length=64)


@router.post("/calls")
async def new_call(request: Request, ctx: Ctx, body: NewCall) -> dict[str, str]:
    """A stream token for one browser call, and the secret that lets the page watch it."""
    feed = _enabled(ctx)
    if not _allowed(request, ctx):
        raise HTTPException(status_code=403, detail="the playground is for this machine or a signed-in user")
    persona = body.persona or ctx.settings.default_persona
    if not is_valid_name(persona) or persona not in ctx.personas:
        raise HTTPException(status_code=400, detail="no such persona")
    call_id = f"playground-{secrets.token_hex(8)}"
    claims = StreamClaims(
        call_id=call_id,
        persona=persona,
        expires_at=int(ctx.wall_time()) + ctx.settings.stream_token_ttl_seconds,
    )
    token = issue_token(ctx.token_secret, claims)
    watch = feed.open(call_id)
    log.info("playground call", extra={"call_id": call_id, "persona": persona})
    return {
        "call_id": call_id,
        "media_path": f"{MEDIA_PATH}/{token}",
        "events_path": f"/playground/events/{call_id}/{watch}",
    }


@router.websocket("/events/{call_id}/{secret}")
async def events(websocket: WebSocket, call_id: str, secret: str) -> None:
    """The call's transcript and latency as JSON messages, until the call ends."""
    ctx: AppContext = websocket.app.state.ctx
    feed = ctx.playground
    queue = feed.watch(call_id, secret) if feed is not None else None
    if feed is None or queue is None:
        await websocket.close(code=1008)
        return
    await websocket.accept()
    try:
        while True:
            event = await queue.get()
            await websocket.send_json(event)
            if event["type"] == "end":
                break
    except WebSocketDisconnect:
        pass
    finally:
        feed.close(call_id)
        with contextlib.suppress(RuntimeError):
            await websocket.close()
