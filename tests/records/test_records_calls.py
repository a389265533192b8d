"""Calls through the app leave their records, however they end; GET /calls serves them behind
the API key. SQLite and PostgreSQL (see ``conftest.py``)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from app.clock import FakeClock
from app.config import Settings
from app.main import create_app
from app.pipeline.session import CallIO
from app.records.record import CallRecord
from app.records.store import CallStore
from app.simulator.caller import HangUp, Silence, Step
from app.simulator.connect import AsgiConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.telephony.token import StreamClaims, issue_token
from tests.records.conftest import API_KEY

ROOT = Path(__file__).resolve().parents[2]
ANSWER = "https://agent.example.com/vobiz/answer"
SECRET = b"test-secret-0123456789"  # make_settings' stream_token_secret
AUTH = {"Authorization": f"Bearer {API_KEY}"}
T0 = 1_767_225_600.0


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (migrations at start-up, the engine disposed at the end) and an
    HTTP client for its API."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            yield client


async def test_an_echo_call_is_in_progress_while_it_runs_then_complete(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    clock = FakeClock()
    app = create_app(make_settings(database_url=database_url, calls_api_key=API_KEY), clock=clock)
    seen_mid_call: list[dict[str, Any]] = []
    async with running(app) as api:
        vobiz = FakeVobiz(AsgiConnector(app), clock, PlatformConfig())

        async def look_mid_call() -> None:
            await clock.sleep(0.5)  # the caller is half way through a second of audio
            with clock.hold():  # the request's database work takes no call time
                seen_mid_call.extend((await api.get("/calls", headers=AUTH)).json()["calls"])

        steps: list[Step] = [Silence(1.0), HangUp()]
        dial = vobiz.dial(ANSWER, steps, {}, from_number="+1 415 555 0100", to_number="14155550199")
        rec, _ = await clock.run(asyncio.gather(dial, look_mid_call()))
        assert rec.protocol_errors == []
        assert [(c["call_id"], c["status"], c["ended_at"]) for c in seen_mid_call] == [
            (rec.call_id, "in-progress", None)
        ]
        reply = await api.get(f"/calls/{rec.call_id}", headers=AUTH)
    assert reply.status_code == 200
    record = reply.json()
    assert {
        k: record[k] for k in ("call_id", "status", "persona", "caller", "called", "end_reason", "agent")
    } == {
        "call_id": rec.call_id,
        "status": "completed",
        "persona": "default",
        "caller": "14155550100",
        "called": "14155550199",
        "end_reason": "socket-closed",  # the caller hung up: Vobiz closes the socket
        "agent": "EchoAgent",
    }
    assert record["stats"]["frames_in"] == 50  # 1 s of caller audio, 20 ms a frame
    assert record["ended_at"] >= record["started_at"] > time.time() - 60
    # the echo agent has no transcript, tools, latency or barge-in counts: stored as such
    assert (record["transcript"], record["tool_calls"], record["latency"]) == ([], [], [])
    assert record["barge_ins"] is None


def token(call_id: str) -> str:
    claims = StreamClaims(call_id, "default", 4_000_000_000, caller="14155550100", called="14155550199")
    return issue_token(SECRET, claims)


def start_frame(call_id: str) -> str:
    start = {"callId": call_id, "streamId": "s-1", "accountId": "1", "tracks": ["inbound"],
             "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}  # fmt: skip
    return json.dumps({"sequenceNumber": 0, "event": "start", "start": start})


SILENCE_20MS = base64.b64encode(b"\xff" * 160).decode()  # 160 μ-law samples at 8 kHz


def media_frame(seq: int) -> str:
    media = {"track": "inbound", "timestamp": str(seq * 20), "chunk": seq, "payload": SILENCE_20MS}
    return json.dumps({"sequenceNumber": seq, "streamId": "s-1", "event": "media", "media": media})


@pytest.mark.parametrize("frames", [0, 7])
async def test_a_dropped_socket_leaves_a_completed_record(
    frames: int, database_url: str, make_settings: Callable[..., Settings]
) -> None:
    """The socket dies (code 1006, no hang-up callback): mid-call, or before any audio."""
    app = create_app(make_settings(database_url=database_url, calls_api_key=API_KEY))
    async with running(app) as api:
        socket = await AsgiConnector(app).open_socket(
            f"wss://agent.example.com/vobiz/media/{token('drop-1')}"
        )
        if frames:
            await socket.send(start_frame("drop-1"))
            for seq in range(1, frames + 1):
                await socket.send(media_frame(seq))
        await socket.close(1006)  # returns once the app's socket handler has finished
        record = (await api.get("/calls/drop-1", headers=AUTH)).json()
    assert (record["status"], record["end_reason"]) == ("completed", "socket-closed")
    assert (record["caller"], record["called"]) == ("14155550100", "14155550199")
    assert record["stats"]["frames_in"] == frames


class Failing:
    """An agent with a bug: it raises once the call has started."""

    async def run(self, call: CallIO) -> None:
        await call.audio_in.get()
        raise RuntimeError("agent bug")


async def test_a_call_that_fails_leaves_a_record_of_the_error(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    clock = FakeClock()
    settings = make_settings(database_url=database_url, calls_api_key=API_KEY)
    app = create_app(settings, clock=clock, agent_factory=lambda claims, ctx: Failing())
    async with running(app) as api:
        vobiz = FakeVobiz(AsgiConnector(app), clock, PlatformConfig())
        rec = await clock.run(vobiz.dial(ANSWER, [Silence(1.0), HangUp()], {}))
        record = (await api.get(f"/calls/{rec.call_id}", headers=AUTH)).json()
    assert (record["status"], record["end_reason"], record["agent"]) == ("completed", "error", "Failing")


async def test_without_the_start_up_migration_the_first_call_makes_the_tables(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    """In-process hosts (the simulator, scenario runs) never run the lifespan."""
    clock = FakeClock()
    app = create_app(make_settings(database_url=database_url, calls_api_key=API_KEY), clock=clock)
    try:
        vobiz = FakeVobiz(AsgiConnector(app), clock, PlatformConfig())
        rec = await clock.run(vobiz.dial(ANSWER, [Silence(0.2), HangUp()], {}))
        record = await app.state.call_records.get(rec.call_id)
        assert record is not None
        assert record.status == "completed"
    finally:
        await app.state.call_records.aclose()


def summary(call_id: str, started_at: float) -> CallRecord:
    return CallRecord(call_id, "completed", "default", "14155550100", "14155550199", started_at,
                      started_at + 5.0, "hangup")  # fmt: skip


async def test_the_api_key_is_enforced(database_url: str, make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(database_url=database_url, calls_api_key=API_KEY))
    async with running(app) as api:
        await app.state.call_records.save(summary("c-1", T0))
        cases = [
            ({}, 401),
            ({"Authorization": "Bearer wrong-key"}, 401),
            ({"Authorization": f"Bearer {API_KEY}x"}, 401),
            ({"Authorization": f"Basic {API_KEY}"}, 401),
            ({"X-API-Key": "wrong-key"}, 401),
            ({"X-API-Key": "ключ"}, 401),  # not ASCII: refused, not a server error
            ({"Authorization": f"bearer {API_KEY}"}, 200),
            ({"Authorization": "Bearer wrong-key", "X-API-Key": API_KEY}, 401),  # the Bearer token counts
            ({"X-API-Key": API_KEY}, 200),
            (AUTH, 200),
        ]
        for headers, status in cases:
            for path in ("/calls", "/calls/c-1"):
                reply = await api.get(path, headers={k.encode(): v.encode() for k, v in headers.items()})
                assert reply.status_code == status, (headers, path)
                if status == 401:
                    assert reply.headers["www-authenticate"] == "Bearer"
                    assert "14155550100" not in reply.text
        assert (await api.get("/calls/c-2", headers=AUTH)).status_code == 404


async def test_without_a_key_the_endpoints_are_not_there(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    app = create_app(make_settings(database_url=database_url))  # CALLS_API_KEY empty
    async with running(app) as api:
        await app.state.call_records.save(summary("c-1", T0))
        for headers in ({}, AUTH, {"Authorization": "Bearer "}, {"X-API-Key": ""}):
            for path in ("/calls", "/calls/c-1"):
                reply = await api.get(path, headers=headers)
                assert (reply.status_code, reply.json()) == (404, {"detail": "Not Found"}), (headers, path)


async def test_the_list_is_newest_first_in_pages(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    app = create_app(make_settings(database_url=database_url, calls_api_key=API_KEY))
    async with running(app) as api:
        for n in range(3):
            await app.state.call_records.save(summary(f"c-{n}", T0 + n))
        first = (await api.get("/calls", params={"limit": 2}, headers=AUTH)).json()
        assert [c["call_id"] for c in first["calls"]] == ["c-2", "c-1"]
        assert first["next_before"] == "c-1"
        assert first["calls"][0]["duration"] == 5.0
        assert "transcript" not in first["calls"][0]
        rest = (await api.get("/calls", params={"limit": 2, "before": "c-1"}, headers=AUTH)).json()
        assert (rest["calls"][0]["call_id"], len(rest["calls"]), rest["next_before"]) == ("c-0", 1, None)
        unknown = await api.get("/calls", params={"before": "nope"}, headers=AUTH)
        assert (unknown.status_code, unknown.json()) == (400, {"detail": "before: no such call"})
        for limit in (0, 201):
            assert (await api.get("/calls", params={"limit": limit}, headers=AUTH)).status_code == 422


async def test_an_unreachable_database_does_not_touch_the_call(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    """The writes fail (nothing listens on port 1): the call runs as usual, and the log names
    the call id and the failure, never a number."""
    clock = FakeClock()
    settings = make_settings(database_url="postgresql+asyncpg://agent:hunter2@127.0.0.1:1/calls")
    app = create_app(settings, clock=clock)
    try:
        vobiz = FakeVobiz(AsgiConnector(app), clock, PlatformConfig())
        dial = vobiz.dial(ANSWER, [Silence(1.0), HangUp()], {}, from_number="14155550100")
        with caplog.at_level(logging.ERROR, logger="app.lifecycle"):
            rec = await clock.run(dial)
    finally:
        await app.state.call_records.aclose()
    assert rec.protocol_errors == []
    assert (rec.end_reason, rec.duration) == ("caller hung up", 1.0)  # on time, as without records
    failures = [r for r in caplog.records if r.name == "app.lifecycle"]
    assert [r.getMessage() for r in failures] == [
        "call listener failed at start",
        "call listener failed at end",
        "call listener failed at the hang-up callback",  # Vobiz's, after the end
    ]
    assert all(getattr(r, "call_id", None) == rec.call_id for r in failures)
    logged = caplog.text
    assert "call record not written at the start" in logged
    assert "14155550100" not in logged
    assert "hunter2" not in logged


CRASH = """
import asyncio, os, sys
from app.clock import FakeClock
from app.config import Settings
from app.main import create_app
from app.simulator.caller import HangUp, Silence
from app.simulator.connect import AsgiConnector
from app.simulator.platform import FakeVobiz, PlatformConfig

async def main() -> None:
    clock = FakeClock()
    settings = Settings(_env_file=None, database_url=sys.argv[1], data_dir=sys.argv[2], providers="echo",
                        stream_token_secret="test-secret-0123456789", public_url="https://agent.example.com",
                        signature_mode="off")
    app = create_app(settings, clock=clock)
    vobiz = FakeVobiz(AsgiConnector(app), clock, PlatformConfig())

    async def crash() -> None:
        await clock.sleep(2.0)  # mid-call
        os._exit(3)  # the process dies: no end of call, no clean-up

    dial = vobiz.dial("https://agent.example.com/vobiz/answer", [Silence(10.0), HangUp()], {},
                      call_id="crashed-call", from_number="14155550100")
    await clock.run(asyncio.gather(dial, crash()))

asyncio.run(main())
"""


async def test_a_process_that_dies_mid_call_leaves_the_in_progress_row(
    database_url: str, tmp_path: Path
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASH,
        database_url,
        str(tmp_path / "data"),
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    _, errors = await process.communicate()
    assert process.returncode == 3, errors.decode()
    store = CallStore(make_url(database_url))
    try:
        record = await store.get("crashed-call")
    finally:
        await store.aclose()
    assert record is not None
    assert (record.status, record.ended_at, record.end_reason) == ("in-progress", None, None)
    assert (record.persona, record.caller) == ("default", "14155550100")
