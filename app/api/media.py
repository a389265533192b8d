"""The media WebSocket Vobiz opens after ``<Stream>``: token check, then a ``CallSession``."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from app.api.deps import AppContext, ws_ctx
from app.api.guard import CallGuard, SocketLease
from app.facts import FactsUnavailable
from app.observability.context import bind_call_id, unbind_call_id
from app.pipeline.lifecycle import CallInfo, CallOutcome, notify_ended, notify_started
from app.pipeline.session import CallSession, SessionConfig, TransportClosed
from app.recordings import recording_on, recordings_dir
from app.telephony.errors import TokenError
from app.telephony.token import StreamClaims, verify_token

log = logging.getLogger("app.media")
router = APIRouter()


class StarletteTransport:
    """``Transport`` over a Starlette WebSocket."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

    async def receive(self) -> str | bytes:
        message = await self._ws.receive()
        if message["type"] == "websocket.disconnect":
            raise TransportClosed(message.get("code"))
        text: str | None = message.get("text")
        if text is not None:
            return text
        data: bytes | None = message.get("bytes")
        return data if data is not None else b""

    async def send(self, message: str) -> None:
        try:
            await self._ws.send_text(message)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise TransportClosed(getattr(exc, "code", None)) from exc

    async def close(self, code: int = 1000) -> None:
        """Close; ``TransportClosed`` when the peer has already gone (e.g. ``stop``, then a
        reset): Starlette raises ``WebSocketDisconnect`` or ``RuntimeError`` then."""
        try:
            await self._ws.close(code)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise TransportClosed(getattr(exc, "code", None)) from exc


@router.websocket("/vobiz/media/{token}")
async def media(websocket: WebSocket, token: str) -> None:
    ctx = ws_ctx(websocket)
    try:
        claims = verify_token(ctx.token_secret, token, now=ctx.wall_time())
    except TokenError as exc:
        # refused before accept: no audio is read (the client sees HTTP 403)
        log.warning("media socket refused: token %s", exc.reason)
        await websocket.close(code=1008)
        return
    # one live socket per call; an ended call's URL opens nothing (rules: app/api/guard.py)
    try:
        lease = await ctx.guard.open_socket(claims.call_id)
        if lease == "live" and await ctx.bus.reclaim(claims.call_id):  # its holder died mid-call
            lease = await ctx.guard.open_socket(claims.call_id)
    except FactsUnavailable as exc:  # Redis down: refused before accept, Vobiz may retry (maxRetries)
        log.warning("media socket refused: %s", exc, extra={"call_id": claims.call_id})
        await websocket.close(code=1011)
        return
    if not isinstance(lease, SocketLease):
        log.warning("media socket refused: the call is %s", lease, extra={"call_id": claims.call_id})
        await websocket.close(code=1008)
        return
    slot = _Slot(ctx.guard, lease)
    try:
        await _run_call(websocket, ctx, claims, slot)
    finally:
        await slot.release("error")  # only if the call did not get as far as releasing it


class _Slot:
    """The socket's live slot (its lease), released once."""

    def __init__(self, guard: CallGuard, lease: SocketLease) -> None:
        self._guard = guard
        self._lease: SocketLease | None = lease

    async def release(self, reason: str) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            try:
                await self._guard.socket_ended(lease, reason)
            except FactsUnavailable as exc:  # the call is over either way; its lease expires
                log.warning("media socket release not recorded: %s", exc, extra={"call_id": lease.call_id})


async def _run_call(websocket: WebSocket, ctx: AppContext, claims: StreamClaims, slot: _Slot) -> None:
    """The call on its socket, from accept to its end. Its slot is released as soon as the
    session is over, before the record is written: a reconnect that arrives during a slow write
    is let in (the recorder writes its start after this end, ``records.listener``)."""
    settings = ctx.settings
    session = CallSession(
        call_id=claims.call_id,
        transport=StarletteTransport(websocket),
        agent=ctx.agent_factory(claims, ctx),
        clock=ctx.clock,
        config=SessionConfig(
            playback_rate=settings.playback_sample_rate,
            l16_byte_order=settings.l16_byte_order,
            max_message_bytes=settings.max_message_bytes,
            chunk_frames=settings.play_audio_ms // 20,
            recording_dir=(
                recordings_dir(settings) if recording_on(settings, ctx.personas.get(claims.persona)) else None
            ),
        ),
    )
    if not ctx.registry.add(session):
        # the call already has a live stream (a second REST stream, a replayed URL): it goes on
        log.warning(
            "media socket refused: the call already has a live stream", extra={"call_id": claims.call_id}
        )
        await websocket.close(code=1008)
        return  # released as "error", a dropped-socket reason: the live call's facts stay as they are
    try:
        await websocket.accept()
    except BaseException:
        ctx.registry.discard(session)  # the peer went before the socket opened
        raise
    tagged = bind_call_id(claims.call_id)  # every record logged by this call's tasks carries its id
    call = CallInfo(claims.call_id, claims.persona, claims.caller, claims.called, ctx.wall_time())
    reason = "error"
    try:
        async with asyncio.TaskGroup() as tg:
            # the call's start is written beside its first words: a greeting never waits for the
            # database (100 calls at once queue on SQLite's one writer); the end waits for it
            tg.create_task(notify_started(ctx.listeners, call), name=f"call-{claims.call_id}-started")
            reason = await session.run()
    finally:
        ctx.registry.remove(session)
        outcome = CallOutcome(reason, ctx.wall_time(), session.stats, session.agent)
        try:
            await slot.release(reason)
        finally:
            await notify_ended(ctx.listeners, call, outcome)
            unbind_call_id(tagged)
