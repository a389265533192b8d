"""A stream URL opens one live socket per call, and nothing once its call has ended; a socket
that merely dropped may come back (Vobiz's ``maxRetries``). Real server, real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from app.audio.formats import AudioFormat
from app.config import Settings
from app.main import create_app
from app.records.record import CallRecord
from tests.e2e.test_media_socket import (
    closed_by_server,
    media_frame,
    next_play,
    registry_of,
    start_frame,
    token_for,
    wait_finished,
)
from tests.servers import RunningServer, run_server

T = TypeVar("T")
MULAW = AudioFormat("mulaw", 8000)


@pytest.fixture
def srv(make_settings: Callable[..., Settings]) -> Iterator[RunningServer]:
    with run_server(create_app(make_settings())) as running:
        yield running


def on_server(srv: RunningServer, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` on the server's loop (its guard and its records live there)."""
    return asyncio.run_coroutine_threadsafe(work, srv.loop).result(timeout=5)


def record_of(srv: RunningServer, call_id: str) -> CallRecord | None:
    record: CallRecord | None = on_server(srv, srv.app.state.call_records.get(call_id))
    return record


async def completed(srv: RunningServer, call_id: str) -> CallRecord:
    """The call's record once its end is written."""
    for _ in range(300):
        record = record_of(srv, call_id)
        if record is not None and record.ended_at is not None:
            return record
        await asyncio.sleep(0.01)
    raise AssertionError("the record was never completed")


async def settled(srv: RunningServer, call_id: str, state: str) -> None:
    """Wait until the guard has taken in the end of the call's last socket."""
    for _ in range(300):
        if on_server(srv, srv.app.state.ctx.guard.call_state(call_id)) == state:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the call never became {state}")


def url(srv: RunningServer, call_id: str) -> str:
    return f"{srv.ws_url}/vobiz/media/{token_for(call_id)}"


async def refused(stream_url: str) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with connect(stream_url):
            pass
    status: int = info.value.response.status_code
    return status


async def echoing(ws: ClientConnection, seq: int = 1) -> None:
    await ws.send(media_frame(b"\xff" * 160, seq))
    assert (await next_play(ws))["event"] == "playAudio"


async def test_a_second_socket_for_a_live_call_is_refused_and_the_call_goes_on(srv: RunningServer) -> None:
    stream_url = url(srv, "call-1")
    async with connect(stream_url) as ws:
        await ws.send(start_frame("call-1", MULAW))
        await echoing(ws)
        assert await refused(stream_url) == 403
        # another token for the same call (a second answer) gets no second socket either
        assert await refused(url(srv, "call-1")) == 403
        await echoing(ws, 2)  # untouched: still the live call
        assert len(registry_of(srv)) == 1
        assert len(registry_of(srv).finished) == 0
    await wait_finished(srv)
    assert [s.end_reason for s in registry_of(srv).finished] == ["socket-closed"]


async def test_the_url_of_a_call_ended_by_its_hangup_is_refused_and_its_record_stays(
    srv: RunningServer,
) -> None:
    stream_url = url(srv, "call-h")
    async with connect(stream_url) as ws:
        await ws.send(start_frame("call-h", MULAW))
        await echoing(ws)
        async with httpx.AsyncClient() as client:
            hangup = await client.post(
                f"{srv.url}/vobiz/hangup", data={"CallUUID": "call-h", "Event": "Hangup"}
            )
        assert hangup.status_code == 204
        assert await closed_by_server(ws) == 1000
    await wait_finished(srv)
    await settled(srv, "call-h", "ended")
    before = await completed(srv, "call-h")
    assert before.end_reason == "hangup"
    for _ in range(3):
        assert await refused(stream_url) == 403
    assert record_of(srv, "call-h") == before
    assert len(registry_of(srv).finished) == 1


async def test_a_socket_ended_by_stop_is_final(srv: RunningServer) -> None:
    stream_url = url(srv, "call-s")
    async with connect(stream_url) as ws:
        await ws.send(start_frame("call-s", MULAW))
        await ws.send('{"event":"stop","streamId":"stream-1","reason":"call_ended"}')
        assert await closed_by_server(ws) == 1000
    await wait_finished(srv)
    await settled(srv, "call-s", "ended")
    assert await refused(stream_url) == 403


async def test_a_dropped_socket_reconnects_until_the_hangup_arrives(srv: RunningServer) -> None:
    """PROTOCOL.md §2: with maxRetries a dropped socket is followed by a new one (new
    streamId, same callId) on the same URL."""
    stream_url = url(srv, "call-r")
    async with connect(stream_url) as ws:
        await ws.send(start_frame("call-r", MULAW, stream_id="stream-1"))
        await echoing(ws)
    await wait_finished(srv)
    await settled(srv, "call-r", "new")
    async with connect(stream_url) as again:
        await again.send(start_frame("call-r", MULAW, stream_id="stream-2"))
        await echoing(again)
    await wait_finished(srv, 2)
    async with httpx.AsyncClient() as client:
        await client.post(f"{srv.url}/vobiz/hangup", data={"CallUUID": "call-r", "Event": "Hangup"})
    assert await refused(stream_url) == 403
