"""The fake Vobiz REST API acting on live emulated calls, through the real async client.

Every call here is of the real (correct) app, so each test fails on any protocol error
(``clean``), including those of REST-started streams, which report into the same recording.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response, WebSocket
from starlette.websockets import WebSocketDisconnect

from app.clock import FakeClock
from app.config import Settings
from app.main import create_app
from app.simulator.caller import HangUp, Silence
from app.simulator.connect import AsgiConnector, TapConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import CallRecording
from app.simulator.vobiz_rest import create_fake_rest_app
from app.simulator.vobiz_rest_state import FakeVobizState
from app.telephony.rest import VobizClient
from tests.e2e.test_emulator import clean, rms

AUTH_ID, AUTH_TOKEN = "MA_SIMULATOR00000001", "simulator-auth-token"
ANSWER = "https://agent.example.com/vobiz/answer"


Script = Callable[[str, dict[str, Any]], list[str]]  # (stream id, message) -> frames to send


@dataclass
class ForkTarget:
    """A small WebSocket service for REST-started streams: records what each stream sends it
    and answers each non-media message with ``script``'s frames; takes status callbacks at
    ``/status``."""

    script: Script = lambda sid, message: []
    starts: list[dict[str, Any]] = field(default_factory=list)
    media: Counter[str] = field(default_factory=Counter)  # media frames per stream id
    heard: list[dict[str, Any]] = field(default_factory=list)  # playedStream, clearedAudio, …
    closed: bool = False
    callbacks: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.websocket("/fork")
        async def fork(ws: WebSocket) -> None:
            await ws.accept()
            sid = ""
            try:
                while True:
                    message = json.loads(await ws.receive_text())
                    if message["event"] == "media":
                        self.media[message["streamId"]] += 1
                        continue
                    if message["event"] == "start":
                        self.starts.append(message)
                        sid = message["start"]["streamId"]
                    else:
                        self.heard.append(message)
                    for frame in self.script(sid, message):
                        await ws.send_text(frame)
            except WebSocketDisconnect:
                self.closed = True

        @app.post("/status")
        async def status(request: Request) -> Response:
            form = await request.form()
            self.callbacks.append({k: v for k, v in form.items() if isinstance(v, str)})
            return Response(status_code=204)

        return app


def play(sid: str, frames: int) -> list[str]:
    """``frames`` 20 ms μ-law frames at full scale (0x80)."""
    media = {
        "contentType": "audio/x-mulaw",
        "sampleRate": 8000,
        "payload": base64.b64encode(b"\x80" * 160).decode(),
    }
    return [json.dumps({"event": "playAudio", "streamId": sid, "media": media})] * frames


def command(event: str, sid: str, **fields: str) -> str:
    return json.dumps({"event": event, "streamId": sid, **fields})


@dataclass
class World:
    clock: FakeClock
    vobiz: FakeVobiz
    client: VobizClient
    state: FakeVobizState
    app: Any
    tap: TapConnector  # every webhook request and media frame


@asynccontextmanager
async def world(
    make_settings: Callable[..., Settings], fork: ForkTarget | None = None
) -> AsyncIterator[World]:
    clock = FakeClock()
    app = create_app(make_settings(signature_mode="enforce", vobiz_auth_token=AUTH_TOKEN), clock=clock)
    hosts = {"fork.example.com": fork.app()} if fork else {}
    connector = TapConnector(AsgiConnector(app, hosts))
    vobiz = FakeVobiz(connector, clock, PlatformConfig(auth_token=AUTH_TOKEN))
    state = FakeVobizState()
    vobiz.attach_rest(state)
    rest_app = create_fake_rest_app(AUTH_ID, AUTH_TOKEN, state)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=rest_app), base_url="http://vobiz")
    client = VobizClient(AUTH_ID, AUTH_TOKEN, "http://vobiz/api/v1", http=http, retry_backoff=0)
    try:
        yield World(clock, vobiz, client, state, app, connector)
    finally:
        await http.aclose()
        await connector.aclose()


async def test_rest_started_stream_opens_a_socket_and_stops(make_settings: Callable[..., Settings]) -> None:
    fork = ForkTarget()
    async with world(make_settings, fork) as w:

        async def operate() -> tuple[str, str]:
            await w.clock.sleep(0.5)
            started = await w.client.start_stream(
                "call-fork", "wss://fork.example.com/fork", content_type="audio/x-l16;rate=16000"
            )
            assert started.stream_id is not None
            await w.clock.sleep(1.0)
            assert await w.client.stop_stream("call-fork", started.stream_id)
            return started.stream_id, (await w.client.get_stream("call-fork", started.stream_id)).status or ""

        async def both() -> tuple[Any, tuple[str, str]]:
            async with asyncio.TaskGroup() as tg:
                call = tg.create_task(w.vobiz.dial(ANSWER, [Silence(3), HangUp()], {}, call_id="call-fork"))
                ops = tg.create_task(operate())
            return call.result(), ops.result()

        rec, (stream_id, status) = await w.clock.run(both())
    clean(rec)
    assert len(fork.starts) == 1
    start = fork.starts[0]["start"]
    assert start["callId"] == "call-fork"
    assert start["streamId"] == stream_id
    assert start["mediaFormat"] == {"encoding": "audio/x-l16", "sampleRate": 16000}
    assert 49 <= fork.media[stream_id] <= 51  # one second of 20 ms frames between start and stop
    assert fork.closed
    assert status == "completed"


async def test_make_call_dials_the_app_outbound(make_settings: Callable[..., Settings]) -> None:
    async with world(make_settings) as w:
        w.vobiz.outbound_steps = [Silence(1.0), HangUp()]

        async def place() -> str:
            async with w.vobiz.serving():
                fired = await w.client.make_call(
                    "14155550100", "14155550123", ANSWER, hangup_url="https://agent.example.com/vobiz/hangup"
                )
            return fired.call_uuid or ""

        call_uuid = await w.clock.run(place())
    assert len(w.vobiz.finished) == 1
    rec = clean(w.vobiz.finished[0])
    assert rec.call_id == call_uuid
    # an outbound answer POST names the A leg and the API request (PROTOCOL.md §1.1)
    (answer,) = [r.form for r in w.tap.requests if r.form.get("Event") == "StartApp"]
    assert answer["Direction"] == "outbound"
    assert answer["ALegUUID"] == call_uuid
    assert answer["ALegRequestUUID"] == call_uuid
    assert rec.events[0].detail == {"Direction": "outbound"}
    assert rec.end_reason == "caller hung up"
    assert rec.duration == 1.0
    assert w.app.state.ctx.registry.finished[-1].call_id == call_uuid
    assert not w.state.calls[call_uuid].is_live


async def test_transfer_fetches_the_new_xml_and_ends_the_stream(
    make_settings: Callable[..., Settings],
) -> None:
    async with world(make_settings) as w:

        async def transfer_later() -> str:
            await w.clock.sleep(1.0)
            result = await w.client.transfer_call("call-t", "https://agent.example.com/vobiz/answer")
            return result.message or ""

        async def both() -> tuple[Any, str]:
            async with asyncio.TaskGroup() as tg:
                call = tg.create_task(w.vobiz.dial(ANSWER, [Silence(10), HangUp()], {}, call_id="call-t"))
                moved = tg.create_task(transfer_later())
            return call.result(), moved.result()

        rec, message = await w.clock.run(both())
    clean(rec)
    assert message == "call transferred"
    assert rec.end_reason == "transferred to https://agent.example.com/vobiz/answer"
    transfer = [e for e in rec.events if e.detail.get("event") == "Transfer"]
    assert transfer[0].detail["status"] == 200  # the app answered the signed Event=Transfer request
    assert rec.duration == 1.0


async def dial_while(w: World, call_id: str, seconds: float, operate: Any) -> tuple[CallRecording, Any]:
    """Dial the app for ``seconds`` of caller silence while ``operate()`` runs; both results."""

    async def both() -> tuple[CallRecording, Any]:
        async with asyncio.TaskGroup() as tg:
            call = tg.create_task(w.vobiz.dial(ANSWER, [Silence(seconds), HangUp()], {}, call_id=call_id))
            ops = tg.create_task(operate())
        return call.result(), ops.result()

    rec, result = await w.clock.run(both())
    return clean(rec), result


async def test_bidirectional_rest_stream_plays_acks_and_clears(
    make_settings: Callable[..., Settings],
) -> None:
    """A REST stream's playAudio is heard by the caller; its checkpoint is acked once played;
    clearAudio drops the rest, voids its checkpoint and is answered; status callbacks follow."""

    def script(sid: str, message: dict[str, Any]) -> list[str]:
        if message["event"] == "start":
            return [*play(sid, 25), command("checkpoint", sid, name="fork-1")]
        if message == {"event": "playedStream", "name": "fork-1"}:
            return [*play(sid, 100), command("checkpoint", sid, name="fork-2"), command("clearAudio", sid)]
        return []

    fork = ForkTarget(script)
    async with world(make_settings, fork) as w:

        async def operate() -> str:
            await w.clock.sleep(0.5)
            started = await w.client.start_stream(
                "call-bidi",
                "wss://fork.example.com/fork",
                bidirectional=True,
                content_type="audio/x-mulaw;rate=8000",
                status_callback_url="https://fork.example.com/status",
            )
            assert started.stream_id is not None
            await w.clock.sleep(2.0)
            assert await w.client.stop_stream("call-bidi", started.stream_id)
            return started.stream_id

        rec, sid = await dial_while(w, "call-bidi", 4.0, operate)
        assert w.state.streams[sid].status == "completed"
    # the fork's checkpoint is acked after its 0.5 s of audio has played, fork-2's never
    assert fork.heard == [
        {"event": "playedStream", "name": "fork-1"},
        {"event": "clearedAudio", "streamId": sid},
    ]
    acks = [e for e in rec.events if e.kind == "played_stream" and e.detail.get("stream") == sid]
    assert [e.detail["name"] for e in acks] == ["fork-1"]
    opened = next(e.t for e in rec.events if e.kind == "socket_open" and e.detail.get("via") == "rest")
    assert acks[0].t == pytest.approx(opened + 0.5, abs=0.041)
    (clear,) = [e for e in rec.events if e.kind == "clear_audio"]
    assert clear.detail["stream"] == sid
    assert clear.detail["voided"] == ["fork-2"]
    assert clear.detail["dropped_s"] == pytest.approx(2.0, abs=0.041)
    cleared = next(e.t for e in rec.events if e.kind == "cleared_audio")
    assert cleared == pytest.approx(clear.t + 0.02)
    # the caller heard the fork's audio, and nothing once it was cleared
    assert rms(rec, "agent", opened + 0.1, opened + 0.45) > 20000
    assert rms(rec, "agent", clear.t + 0.04, 3.9) < 50
    # StartStream, PlayedStream, then StopStream for the REST DELETE, all for the fork's stream
    assert [c["Event"] for c in fork.callbacks] == ["StartStream", "PlayedStream", "StopStream"]
    assert {c["StreamID"] for c in fork.callbacks} == {sid}
    assert fork.callbacks[0]["ServiceURL"] == "wss://fork.example.com/fork"
    assert fork.callbacks[1]["Name"] == "fork-1"
    assert fork.closed


async def test_rest_stream_timeout_stops_it_and_a_hangup_is_no_stop(
    make_settings: Callable[..., Settings],
) -> None:
    """stream_timeout ends a REST stream with StopStream; one still open at hang-up gets none (D18)."""
    fork = ForkTarget()
    async with world(make_settings, fork) as w:

        async def operate() -> tuple[str, str]:
            await w.clock.sleep(0.5)
            ids = []
            for n, timeout in ((1, 1), (2, None)):
                started = await w.client.start_stream(
                    "call-timeout",
                    f"wss://fork.example.com/fork?n={n}",
                    stream_timeout=timeout,
                    status_callback_url="https://fork.example.com/status",
                )
                assert started.stream_id is not None
                ids.append(started.stream_id)
            return ids[0], ids[1]

        rec, (timed, open_at_end) = await dial_while(w, "call-timeout", 3.0, operate)
        assert w.state.streams[timed].status == "completed"
        assert w.state.streams[open_at_end].status == "completed"  # ended with the call
    events = [(c["StreamID"], c["Event"]) for c in fork.callbacks]
    assert events == [(timed, "StartStream"), (open_at_end, "StartStream"), (timed, "StopStream")]
    stop = next(e for e in rec.events if e.detail.get("event") == "StopStream")
    assert stop.t == pytest.approx(1.5, abs=0.021)
    assert fork.media[timed] == 50  # exactly 1 s of frames
    assert 124 <= fork.media[open_at_end] <= 126  # until the hang-up at 3 s
