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

import asyncio
import contextlib
import ipaddress
import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from starlette.websockets import WebSocketDisconnect

from agents.personas import is_valid_name
from app.api.dashboard import signed_in, templates
from app.api.deps import AppContext, get_ctx
from app.api.webhooks import MEDIA_PATH
from app.telephony.token import StreamClaims, issue_token

if TYPE_CHECKING:
    from app.pipeline.conversation import Conversation, ConversationObserver
    from app.pipeline.parts import TranscriptEntry

log = logging.getLogger("app")
router = APIRouter(prefix="/playground", include_in_schema=False)
Ctx = Annotated[AppContext, Depends(get_ctx)]
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")
FEED_QUEUE = 256  # events held for a slow page; past that the oldest are dropped


@dataclass(slots=True)
class _Watch:
    secret: str
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(FEED_QUEUE))


class PlaygroundFeed:
    """A ``ConversationObserver`` that hands each playground call's transcript and latency to the
    page watching it (and only that page: each call has its own secret)."""

    def __init__(self) -> None:
        self._watches: dict[str, _Watch] = {}

    def open(self, call_id: str) -> str:
        secret = secrets.token_urlsafe(24)
        self._watches[call_id] = _Watch(secret)
        return secret

    def watch(self, call_id: str, secret: str) -> asyncio.Queue[dict[str, Any]] | None:
        found = self._watches.get(call_id)
        if found is None or not secrets.compare_digest(found.secret, secret):
            return None
        return found.queue

    def close(self, call_id: str) -> None:
        self._watches.pop(call_id, None)

    def _put(self, call_id: str, event: dict[str, Any]) -> None:
        found = self._watches.get(call_id)
        if found is None:
            return
        if found.queue.full():
            found.queue.get_nowait()
        found.queue.put_nowait(event)

    def on_transcript(self, conversation: Conversation, entry: TranscriptEntry) -> None:
        event: dict[str, Any] = {
            "type": "transcript",
            "t": round(entry.t, 3),
            "speaker": entry.speaker,
            "text": entry.text,
            "interrupted": entry.interrupted,
        }
        if entry.speaker == "agent" and conversation.latency.turns:
            stamps = conversation.latency.turns[max(conversation.latency.turns)]
            event["turn"] = stamps.turn
            event["latency_ms"] = {k: round(v * 1000) for k, v in stamps.since_speech_end().items()}
        self._put(conversation.call_id, event)

    def on_end(self, conversation: Conversation) -> None:
        self._put(conversation.call_id, {"type": "end"})


class Observers:
    """Several ``ConversationObserver`` as one (the simulator's or a test's, and the feed)."""

    def __init__(self, *observers: ConversationObserver) -> None:
        self._observers = observers

    def on_transcript(self, conversation: Conversation, entry: TranscriptEntry) -> None:
        for observer in self._observers:
            observer.on_transcript(conversation, entry)

    def on_end(self, conversation: Conversation) -> None:
        for observer in self._observers:
            observer.on_end(conversation)


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
