"""The seam between the session and the agent: ``CallIO`` is the agent's ``AudioSink``, and a
frame the agent marks comes back as an ``AudioWritten`` event on its queue when the socket
writer takes it (stamped then, on the call's clock), never as code run inside the writer."""

from __future__ import annotations

import asyncio

from app.audio.formats import AudioFormat
from app.clock import FakeClock
from app.pipeline.outbox import Marked, Outbox
from app.pipeline.session import AgentEvent, AudioWritten, CallIO, CallSession, CallStats, SessionConfig
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
