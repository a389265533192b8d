"""The seam between the session and the agent: ``CallIO`` is the agent's ``AudioSink``, and a
frame the agent marks comes back as an ``AudioWritten`` event on its queue when the socket
writer takes it (stamped then, on the call's clock), never as code run inside the writer."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np

from app.audio.formats import AudioFormat
from app.clock import FakeClock
from app.pipeline.outbox import Marked, Outbox
from app.pipeline.session import PCM, AgentEvent, AudioWritten, CallIO, CallSession, CallStats, SessionConfig
from app.telephony import events as ev
from tests.e2e.test_pipeline_dtmf import CALL_ID, ScriptedSocket, start_frame

FRAME = bytes(160)  # 20 ms of μ-law


class MarkingAgent:
    """Sends an unmarked frame, a marked one, then a marked one that a clear drops before the
    writer can take it; keeps every event it receives."""

    def __init__(self) -> None:
        self.events: list[AgentEvent] = []

    async def run(self, call: CallIO) -> None:
        await call.send_frame(FRAME)
        await call.send_frame(FRAME, mark=7)
        for _ in range(5):
            await asyncio.sleep(0)  # the writer takes both
        await call.send_frame(FRAME, mark=8)
        call.clear()  # before the writer took it: never sent, never reported
        while True:
            self.events.append(await call.events.get())


async def test_a_marked_frame_is_reported_as_an_event_when_the_writer_takes_it() -> None:
    clock = FakeClock()
    agent = MarkingAgent()
    socket = ScriptedSocket(clock, [start_frame()], linger_s=1.0)
    session = CallSession(call_id=CALL_ID, transport=socket, agent=agent, clock=clock, config=SessionConfig())
    assert await clock.run(session.run(), real_timeout=10) == "socket-closed"
    assert agent.events == [AudioWritten(7, 0.0)]
    plays = [m for m in socket.sent if '"playAudio"' in m]
    assert len(plays) == 2
    assert session.stats.frames_out == 3
    assert any('"clearAudio"' in m for m in socket.sent)


async def test_call_io_needs_no_session() -> None:
    # what the agent's side of a call needs is handed to it: an outbox, the counters, the end flag
    outbox, ended = Outbox(), asyncio.Event()
    start = ev.parse_inbound(start_frame())
    assert isinstance(start, ev.StartEvent)
    io = CallIO(
        start,
        AudioFormat("mulaw", 8000),
        config=SessionConfig(),
        outbox=outbox,
        stats=CallStats(CALL_ID),
        ended=ended,
    )
    await io.send_frame(FRAME, mark=3)
    item = await outbox.get()
    assert isinstance(item, Marked)
    assert item.mark == 3
    ended.set()
    assert io.ending
    await io.send_frame(FRAME)  # the call is over: nothing new is spoken
    assert outbox.audio_backlog == 0
    io.stop()
    assert io.stop_sent


class PacedSocket(ScriptedSocket):
    """Delivers ``burst`` frames at once (the reader runs on without yielding), then the rest
    20 ms apart on the virtual clock, as a phone line does."""

    def __init__(self, clock: FakeClock, frames: list[str], burst: int) -> None:
        super().__init__(clock, frames, linger_s=0.1)
        self.burst = burst

    async def receive(self) -> str | bytes:
        if self.burst:
            self.burst -= 1
        else:
            await self.clock.sleep(0.02)
        return await super().receive()


def media_frame(seq: int) -> str:
    payload = base64.b64encode(bytes([0x7F]) * 160).decode()
    return json.dumps(
        {"event": "media", "sequenceNumber": seq, "media": {"track": "inbound", "payload": payload}}
    )


class HearingAgent:
    """Takes what came before it started from the queue, then has the reader hand it each frame."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str]] = []  # (how, in which task)

    async def run(self, call: CallIO) -> None:
        while not call.audio_in.empty():
            call.audio_in.get_nowait()
            self.heard.append(("queue", _task_name()))
        call.take_audio(self.hear)
        await asyncio.Event().wait()

    async def hear(self, pcm: PCM) -> None:
        assert pcm.dtype == np.int16
        self.heard.append(("handler", _task_name()))


def _task_name() -> str:
    task = asyncio.current_task()
    return task.get_name() if task is not None else ""


async def test_a_registered_agent_hears_each_frame_in_the_socket_reader_without_a_queue() -> None:
    clock = FakeClock()
    agent = HearingAgent()
    # two frames come with the start (before the agent runs), three after it registered
    socket = PacedSocket(clock, [start_frame(), *[media_frame(n) for n in range(1, 6)]], burst=3)
    session = CallSession(call_id=CALL_ID, transport=socket, agent=agent, clock=clock, config=SessionConfig())
    assert await clock.run(session.run(), real_timeout=10) == "socket-closed"
    reader = f"call-{CALL_ID}-reader"
    agent_task = f"call-{CALL_ID}-agent"
    assert agent.heard == [("queue", agent_task)] * 2 + [("handler", reader)] * 3
    assert session.stats.frames_in == 5
    assert session.stats.inbound_dropped == 0


class ChunkingAgent:
    async def run(self, call: CallIO) -> None:
        assert call.chunk_frames == 3
        await call.send_frame(FRAME * 3)  # one playAudio of 60 ms
        await asyncio.Event().wait()


async def test_a_chunk_is_one_play_audio_and_counts_its_20_ms_frames() -> None:
    clock = FakeClock()
    socket = ScriptedSocket(clock, [start_frame()], linger_s=1.0)
    config = SessionConfig(chunk_frames=3)
    session = CallSession(
        call_id=CALL_ID, transport=socket, agent=ChunkingAgent(), clock=clock, config=config
    )
    assert await clock.run(session.run(), real_timeout=10) == "socket-closed"
    plays = [json.loads(m) for m in socket.sent if '"playAudio"' in m]
    assert [len(base64.b64decode(p["media"]["payload"])) for p in plays] == [480]
    assert session.stats.frames_out == 3
