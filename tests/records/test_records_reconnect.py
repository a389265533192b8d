"""A call whose socket dropped and came back (Vobiz's ``maxRetries``) keeps one record: the
first socket's part stays, the later one follows it on the call's time axis. SQLite and
PostgreSQL (see ``conftest.py``); the app tests use the real server and real sockets."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from websockets.asyncio.client import ClientConnection, connect

from app.audio.codec import encode
from app.audio.formats import AudioFormat
from app.config import Settings
from app.main import conversation_factory, create_app
from app.pipeline.lifecycle import CallInfo, CallListener, CallOutcome
from app.providers.registry import ProviderSet
from app.providers.scripted import Rule, ScriptedLLM, ScriptedSTT, ToneTTS
from app.records.record import COMPLETED, IN_PROGRESS, CallRecord
from app.records.store import CallStore
from tests.e2e.test_media_socket import media_frame, registry_of, start_frame, token_for, wait_finished
from tests.e2e.test_stream_reuse import completed, on_server, record_of
from tests.records.test_records_store import T0, full_record
from tests.servers import RunningServer, run_server

ROOT = Path(__file__).resolve().parents[2]
MULAW = AudioFormat("mulaw", 8000)
FIRST, SECOND = "Hello from the first socket", "Hello again after the drop"


async def test_a_later_socket_continues_the_record(database_url: str) -> None:
    store = CallStore(make_url(database_url))
    first = full_record()
    later = dataclasses.replace(
        full_record(started_at=T0 + 60.0),
        ended_at=T0 + 90.0,
        end_reason="hangup",
        barge_ins=2,
        stats={"frames_in": 100, "frames_out": 50, "protocol_errors": {"bad-json": 1}},
        transcript=({"t": 0.5, "speaker": "caller", "text": "Sono di nuovo io", "interrupted": False},),
        tool_calls=({"id": "t2", "name": "end_call", "arguments": "{}"},),
        latency=(
            {"turn": 1, "speech_end": 1.0, "stt_final": None, "first_play_audio": 2.0, "interrupted": False},
        ),
    )
    started = CallRecord("call-1", IN_PROGRESS, "restaurant", "14155550100", "14155550199", T0)
    try:
        await store.insert_started(started)
        await store.save(first)
        await store.insert_started(dataclasses.replace(started, started_at=T0 + 60.0))  # the reconnect
        await store.save(later)
        record = await store.get("call-1")
    finally:
        await store.aclose()
    assert record is not None
    assert (record.status, record.started_at, record.ended_at, record.end_reason) == (
        COMPLETED, T0, T0 + 90.0, "hangup")  # fmt: skip
    assert record.transcript == (
        *first.transcript,
        {"t": 60.5, "speaker": "caller", "text": "Sono di nuovo io", "interrupted": False},
    )
    assert record.tool_calls == (*first.tool_calls, *later.tool_calls)
    assert record.latency == (
        *first.latency,
        {"turn": 2, "speech_end": 61.0, "stt_final": None, "first_play_audio": 62.0, "interrupted": False},
    )
    assert record.stats == {"frames_in": 2225, "frames_out": 1850, "protocol_errors": {"bad-json": 1}}
    assert (record.barge_ins, record.false_interruptions, record.provider_errors) == (3, 0, 4)
    assert (record.preemptive_started, record.preemptive_committed, record.preemptive_wasted) == (6, 4, 2)


# ── through the app: a conversation whose socket drops after a turn, then comes back ──


def conversation_app(
    make_settings: Callable[..., Settings], database_url: str, *extra: CallListener
) -> FastAPI:
    rules = [Rule("first", "Nice to hear you."), Rule("again", "Welcome back.")]
    providers = ProviderSet(
        stt=ScriptedSTT([FIRST, SECOND]), llm=ScriptedLLM(rules), tts={"offline": ToneTTS()}
    )
    settings = make_settings(prompts_dir=ROOT / "prompts", database_url=database_url)
    return create_app(settings, agent_factory=conversation_factory(providers), listeners=extra)


def voice(seconds: float) -> bytes:
    n = np.arange(int(8000 * seconds))
    return encode((6000 * np.sin(2 * np.pi * 300 * n / 8000)).astype(np.int16), MULAW)


async def say(srv: RunningServer, ws: ClientConnection, call_id: str, stream_id: str, words: str) -> int:
    """The caller says one sentence (0.8 s of voice, 0.6 s of quiet, in real time) and waits until the agent
    has written it down; the frames sent."""
    await ws.send(start_frame(call_id, MULAW, stream_id=stream_id))
    audio = voice(0.8) + b"\xff" * 4800
    frames = [audio[i : i + 160] for i in range(0, len(audio), 160)]
    for seq, frame in enumerate(frames, 1):
        await ws.send(media_frame(frame, seq))
        await asyncio.sleep(0.02)  # paced as a phone sends it: the turn-taker times on the call's clock

    async def heard() -> bool:
        session = registry_of(srv).get(call_id)
        transcript = getattr(session.agent, "transcript", []) if session is not None else []
        return any(e.text == words for e in transcript)

    for _ in range(300):
        if on_server(srv, heard()):
            return len(frames)
        await asyncio.sleep(0.01)
    raise AssertionError("the caller's words were never written down")


def caller_lines(record: CallRecord) -> list[tuple[float, str]]:
    return [(x["t"], x["text"]) for x in record.transcript if x["speaker"] == "caller"]


@pytest.fixture
def convo(make_settings: Callable[..., Settings], database_url: str) -> Iterator[RunningServer]:
    with run_server(conversation_app(make_settings, database_url)) as running:
        yield running


async def test_a_reconnected_call_keeps_the_first_sockets_part(convo: RunningServer) -> None:
    stream_url = f"{convo.ws_url}/vobiz/media/{token_for('call-r')}"
    async with connect(stream_url) as ws:
        sent = await say(convo, ws, "call-r", "stream-1", FIRST)
    await wait_finished(convo)
    first = await completed(convo, "call-r")
    assert caller_lines(first) == [(caller_lines(first)[0][0], FIRST)]
    async with connect(stream_url) as ws:  # the socket dropped: Vobiz opens a new one, same URL
        sent += await say(convo, ws, "call-r", "stream-2", SECOND)
    await wait_finished(convo, 2)
    for _ in range(300):
        record = record_of(convo, "call-r")
        if record is not None and record.stats.get("sockets") == 2:
            break
        await asyncio.sleep(0.01)
    assert record is not None
    assert record.started_at == first.started_at
    assert record.transcript[: len(first.transcript)] == first.transcript  # the first part stays
    (t1, said1), (t2, said2) = caller_lines(record)
    assert (said1, said2) == (FIRST, SECOND)
    assert t2 > t1  # on the call's axis: after the first socket's words
    assert record.stats["frames_in"] == sent
    assert record.stats["sockets"] == 2
    assert (record.status, record.end_reason) == ("completed", "socket-closed")


class SlowEnd:
    """A listener whose end work waits until the test lets it go: a slow write at the end."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.ending = 0

    async def call_started(self, call: CallInfo) -> None:
        pass

    async def call_ended(self, call: CallInfo, outcome: CallOutcome) -> None:
        self.ending += 1
        if self.ending == 1:
            await self.go.wait()


async def test_a_reconnect_during_a_slow_end_write_is_let_in_and_follows_it(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    slow = SlowEnd()
    with run_server(conversation_app(make_settings, database_url, slow)) as srv:
        stream_url = f"{srv.ws_url}/vobiz/media/{token_for('call-w')}"
        async with connect(stream_url) as ws:
            await say(srv, ws, "call-w", "stream-1", FIRST)
        for _ in range(300):
            if slow.ending:
                break
            await asyncio.sleep(0.01)
        assert slow.ending == 1  # the first socket's end is being written
        try:
            async with connect(stream_url) as ws:  # let in, not refused with 403
                srv.loop.call_soon_threadsafe(slow.go.set)
                await say(srv, ws, "call-w", "stream-2", SECOND)
                # the reconnect's start is written after the first socket's end: in progress again
                live = await _until(
                    srv, "call-w", lambda r: r.status == IN_PROGRESS and r.stats.get("sockets") == 1
                )
                assert [said for _, said in caller_lines(live)] == [FIRST]
        finally:
            srv.loop.call_soon_threadsafe(slow.go.set)  # the server can stop, whatever happened
        await wait_finished(srv, 2)
        record = await _until(srv, "call-w", lambda r: r.stats.get("sockets") == 2)
    assert [said for _, said in caller_lines(record)] == [FIRST, SECOND]
    assert record.status == "completed"


async def _until(srv: RunningServer, call_id: str, ok: Callable[[CallRecord], bool]) -> CallRecord:
    for _ in range(300):
        record = record_of(srv, call_id)
        if record is not None and ok(record):
            return record
        await asyncio.sleep(0.01)
    raise AssertionError(f"the record never got there: {record_of(srv, call_id)}")
