"""Two service apps sharing one real Redis (``REDIS_URL``): the rules of ``app/api/guard.py`` hold
across them, and an end request (hang-up, stream stopped, operator) that lands on one reaches
the call's session on the other through the call bus (``app/api/bus.py``)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from app.audio.formats import AudioFormat
from app.config import Settings
from app.main import create_app
from app.pipeline.lifecycle import CallInfo
from app.records.listener import started_record
from app.records.record import COMPLETED, CallRecord
from app.records.store import CallStore
from app.telephony.signature import sign_headers
from tests.e2e.test_media_socket import (
    closed_by_server,
    media_frame,
    next_play,
    registry_of,
    start_frame,
    token_for,
    wait_finished,
)
from tests.servers import RunningServer, free_port, run_server

AUTH_TOKEN = "bus-test-auth-token"
API_KEY = "bus-test-api-key"
PUBLIC = "https://agent.example.com"
MULAW = AudioFormat("mulaw", 8000)


class HangupsHeard:
    """A listener that notes each hang-up callback completed here (``notify_hangup``)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def call_started(self, call: Any) -> None: ...

    async def call_ended(self, call: Any, outcome: Any) -> None: ...

    async def hangup_reported(self, call_id: str, cause: str, duration_s: float | None) -> None:
        self.calls.append(call_id)


def signed(path: str) -> dict[str, str]:
    return sign_headers(PUBLIC + path, AUTH_TOKEN)


async def post(srv: RunningServer, path: str, **form: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(f"{srv.url}{path}", data=form, headers=signed(path))


def new_call() -> str:
    return f"call-{secrets.token_hex(4)}"


@pytest.fixture
def settings(make_settings: Callable[..., Settings], redis_url: str) -> Settings:
    return make_settings(
        signature_mode="enforce", vobiz_auth_token=AUTH_TOKEN, redis_url=redis_url, calls_api_key=API_KEY
    )


@pytest.fixture
def heard() -> HangupsHeard:
    return HangupsHeard()


@pytest.fixture
def pair(settings: Settings, heard: HangupsHeard) -> Iterator[tuple[RunningServer, RunningServer]]:
    """A and B: two apps (two "processes") on one Redis and one call-record database."""
    with run_server(create_app(settings, listeners=[heard])) as a, run_server(create_app(settings)) as b:
        yield a, b


async def live_call(srv: RunningServer, call_id: str) -> ClientConnection:
    """A media socket to ``srv`` carrying ``call_id``, its session registered and echoing."""
    ws = await connect(f"{srv.ws_url}/vobiz/media/{token_for(call_id)}", max_size=None)
    await ws.send(start_frame(call_id, MULAW))
    await ws.send(media_frame(b"\xff" * 160))
    await next_play(ws)
    assert registry_of(srv).get(call_id) is not None
    return ws


def records_of(srv: RunningServer) -> CallStore:
    store: CallStore = srv.app.state.call_records
    return store


async def final_record(srv: RunningServer, call_id: str) -> CallRecord:
    """The call's record once completed (the holder writes it just after its session ends)."""
    for _ in range(200):
        record = await records_of(srv).get(call_id)
        if record is not None and record.status == COMPLETED:
            return record
        await asyncio.sleep(0.01)
    raise AssertionError("the call's record was not completed")


async def test_a_nonce_is_good_once_across_processes(pair: tuple[RunningServer, RunningServer]) -> None:
    a, b = pair
    headers = signed("/vobiz/answer")
    async with httpx.AsyncClient() as client:
        first = await client.post(f"{a.url}/vobiz/answer", data={"CallUUID": new_call()}, headers=headers)
        again = await client.post(f"{b.url}/vobiz/answer", data={"CallUUID": new_call()}, headers=headers)
    assert first.status_code == 200
    assert again.status_code == 403
    assert "replayed" in again.text


async def test_one_live_socket_per_call_across_processes(pair: tuple[RunningServer, RunningServer]) -> None:
    a, b = pair
    call_id = new_call()
    ws = await live_call(a, call_id)
    try:
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{b.ws_url}/vobiz/media/{token_for(call_id)}")
        assert refused.value.response.status_code == 403
        answer = await post(b, "/vobiz/answer", CallUUID=call_id)
        assert answer.status_code == 409  # a live call's stream is not minted twice
        await ws.send(media_frame(b"\xff" * 160, seq=2))
        await next_play(ws)  # the live call goes on untouched
    finally:
        await ws.close()


async def test_an_ended_call_stays_ended_across_processes(pair: tuple[RunningServer, RunningServer]) -> None:
    a, b = pair
    call_id = new_call()
    assert (await post(a, "/vobiz/hangup", CallUUID=call_id, Event="Hangup")).status_code == 204
    assert (await post(b, "/vobiz/answer", CallUUID=call_id)).status_code == 409
    with pytest.raises(InvalidStatus):
        await connect(f"{b.ws_url}/vobiz/media/{token_for(call_id)}")


@pytest.mark.parametrize("path", ["/vobiz/hangup", "/vobiz/answer"])  # hangup_url may fall back
async def test_a_hangup_reaches_the_process_holding_the_call(
    pair: tuple[RunningServer, RunningServer], heard: HangupsHeard, path: str
) -> None:
    a, b = pair
    call_id = new_call()
    ws = await live_call(b, call_id)
    response = await post(a, path, CallUUID=call_id, Event="Hangup", HangupCause="NORMAL_CLEARING")
    assert response.status_code == 204
    assert await closed_by_server(ws) == 1000
    await wait_finished(b)
    assert registry_of(b).finished[-1].end_reason == "hangup"
    record = await final_record(a, call_id)
    assert record.end_reason == "hangup"
    assert heard.calls == []  # the holder wrote the record; A completed nothing itself


@pytest.mark.parametrize("event", ["StopStream", "stop-stream", "streamStopped"])
async def test_a_stream_stopped_callback_ends_the_session_elsewhere(
    pair: tuple[RunningServer, RunningServer], event: str
) -> None:
    a, b = pair
    call_id = new_call()
    ws = await live_call(b, call_id)
    played = await post(a, "/vobiz/stream-status", CallUUID=call_id, Event="PlayedStream", Name="x")
    assert played.status_code == 204
    await ws.send(media_frame(b"\xff" * 160, seq=2))
    await next_play(ws)  # other status events end nothing
    assert (await post(a, "/vobiz/stream-status", CallUUID=call_id, Event=event)).status_code == 204
    assert await closed_by_server(ws) == 1000
    await wait_finished(b)
    assert registry_of(b).finished[-1].end_reason == "stream-stopped"


async def test_a_dead_holder_leaves_the_record_to_the_receiver(
    pair: tuple[RunningServer, RunningServer], heard: HangupsHeard, redis_url: str
) -> None:
    """The live-socket fact names a process that no longer listens (it died mid-call): the
    hang-up completes the record where it lands, and the stale fact goes."""
    a, _ = pair
    call_id = new_call()
    await records_of(a).insert_started(started_record(CallInfo(call_id, "default", "", "", 1000.0)))
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        await redis.set(f"voice-agent:live:{call_id}", "sock@dead-host:1:2:3/abc", px=60_000)
        response = await post(a, "/vobiz/hangup", CallUUID=call_id, Event="Hangup", Duration="7")
        assert response.status_code == 204
        assert await redis.get(f"voice-agent:live:{call_id}") is None
    finally:
        await redis.aclose()
    assert heard.calls == [call_id]
    record = await final_record(a, call_id)
    assert record.end_reason == "hangup"


async def test_a_socket_reconnecting_after_its_holder_died_is_let_in(
    pair: tuple[RunningServer, RunningServer], redis_url: str
) -> None:
    """The process carrying the call died (kill -9, a node lost): Vobiz reconnects the stream
    to another replica, which takes the call over instead of refusing it for the dead lease's
    lifetime; a live holder's lease still refuses a second socket."""
    _, b = pair
    call_id = new_call()
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        await redis.set(f"voice-agent:live:{call_id}", "sock@dead-host:1:2:3/abc", px=60_000)
        ws = await live_call(b, call_id)  # accepted, and B carries the call
        try:
            lease = await redis.get(f"voice-agent:live:{call_id}")
            assert isinstance(lease, str)
            assert not lease.endswith("@dead-host:1:2:3/abc")  # the lease is B's now
            with pytest.raises(InvalidStatus):  # B is alive: a second socket is refused
                await connect(f"{b.ws_url}/vobiz/media/{token_for(call_id)}")
        finally:
            await ws.close()
    finally:
        await redis.aclose()


async def test_the_operator_ends_a_live_call_wherever_it_is(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    a, b = pair
    call_id = new_call()
    ws = await live_call(b, call_id)
    async with httpx.AsyncClient(base_url=a.url) as client:
        assert (await client.post(f"/calls/{call_id}/hangup")).status_code == 401
        wrong = await client.post(f"/calls/{call_id}/hangup", headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401
        auth = {"Authorization": f"Bearer {API_KEY}"}
        assert (await client.post(f"/calls/{new_call()}/hangup", headers=auth)).status_code == 404
        ended = await client.post(f"/calls/{call_id}/hangup", headers=auth)
        assert ended.status_code == 202
        assert ended.json() == {"call_id": call_id, "status": "ending"}
        assert await closed_by_server(ws) == 1000
        await wait_finished(b)
        assert registry_of(b).finished[-1].end_reason == "operator-hangup"
        assert (await client.post(f"/calls/{call_id}/hangup", headers=auth)).status_code == 404
    with pytest.raises(InvalidStatus):  # ended: its stream URL opens nothing any more
        await connect(f"{b.ws_url}/vobiz/media/{token_for(call_id)}")


async def test_the_operator_endpoint_is_off_without_a_key(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        response = await client.post("/calls/c-1/hangup", headers={"X-API-Key": "anything"})
    assert response.status_code == 404


async def test_without_redis_the_operator_ends_a_call_of_this_process(
    make_settings: Callable[..., Settings],
) -> None:
    with run_server(create_app(make_settings(calls_api_key=API_KEY))) as srv:
        call_id = new_call()
        ws = await live_call(srv, call_id)
        async with httpx.AsyncClient(base_url=srv.url, headers={"X-API-Key": API_KEY}) as client:
            assert (await client.post(f"/calls/{call_id}/hangup")).status_code == 202
        assert await closed_by_server(ws) == 1000
        await wait_finished(srv)
        assert registry_of(srv).finished[-1].end_reason == "operator-hangup"


async def test_redis_unreachable_answers_503_in_one_line(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://:pa55word-xyz@127.0.0.1:{free_port()}/0"  # nothing listens there
    app = create_app(make_settings(signature_mode="enforce", vobiz_auth_token=AUTH_TOKEN, redis_url=url))
    caplog.set_level(logging.INFO)
    caplog.clear()  # the start-up's own warnings
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        response = await client.post(
            "/vobiz/hangup", data={"CallUUID": "c-1", "Event": "Hangup"}, headers=signed("/vobiz/hangup")
        )
    assert response.status_code == 503  # Vobiz retries it later
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "Redis unreachable" in warnings[0].getMessage()
    assert all("pa55word" not in r.getMessage() and "pa55word" not in str(r.__dict__) for r in caplog.records)
