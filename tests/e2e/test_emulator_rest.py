"""The fake Vobiz REST API acting on live emulated calls, through the real async client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, WebSocket
from starlette.websockets import WebSocketDisconnect

from app.clock import FakeClock
from app.config import Settings
from app.main import create_app
from app.simulator.caller import HangUp, Silence
from app.simulator.connect import AsgiConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.vobiz_rest import create_fake_rest_app
from app.simulator.vobiz_rest_state import FakeVobizState
from app.telephony.rest import VobizClient

AUTH_ID, AUTH_TOKEN = "MA_SIMULATOR00000001", "simulator-auth-token"
ANSWER = "https://agent.example.com/vobiz/answer"


@dataclass
class ForkTarget:
    """A WebSocket service that records what a REST-started stream sends it."""

    starts: list[dict[str, Any]] = field(default_factory=list)
    media: int = 0
    closed: bool = False

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.websocket("/fork")
        async def fork(ws: WebSocket) -> None:
            await ws.accept()
            try:
                while True:
                    message = json.loads(await ws.receive_text())
                    if message["event"] == "start":
                        self.starts.append(message)
                    elif message["event"] == "media":
                        self.media += 1
            except WebSocketDisconnect:
                self.closed = True

        return app


@dataclass
class World:
    clock: FakeClock
    vobiz: FakeVobiz
    client: VobizClient
    state: FakeVobizState
    app: Any


@asynccontextmanager
async def world(
    make_settings: Callable[..., Settings], fork: ForkTarget | None = None
) -> AsyncIterator[World]:
    clock = FakeClock()
    app = create_app(make_settings(signature_mode="enforce", vobiz_auth_token=AUTH_TOKEN), clock=clock)
    hosts = {"fork.example.com": fork.app()} if fork else {}
    connector = AsgiConnector(app, hosts)
    vobiz = FakeVobiz(connector, clock, PlatformConfig(auth_token=AUTH_TOKEN))
    state = FakeVobizState()
    vobiz.attach_rest(state)
    rest_app = create_fake_rest_app(AUTH_ID, AUTH_TOKEN, state)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=rest_app), base_url="http://vobiz")
    client = VobizClient(AUTH_ID, AUTH_TOKEN, "http://vobiz/api/v1", http=http, retry_backoff=0)
    try:
        yield World(clock, vobiz, client, state, app)
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
    assert rec.protocol_errors == []
    assert len(fork.starts) == 1
    start = fork.starts[0]["start"]
    assert start["callId"] == "call-fork"
    assert start["streamId"] == stream_id
    assert start["mediaFormat"] == {"encoding": "audio/x-l16", "sampleRate": 16000}
    assert 49 <= fork.media <= 51  # one second of 20 ms frames between start and stop
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
    rec = w.vobiz.finished[0]
    assert rec.call_id == call_uuid
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
    assert message == "call transferred"
    assert rec.end_reason == "transferred to https://agent.example.com/vobiz/answer"
    transfer = [e for e in rec.events if e.detail.get("event") == "Transfer"]
    assert transfer[0].detail["status"] == 200  # the app answered the signed Event=Transfer request
    assert rec.duration == 1.0
