"""The end of a call waits for the recogniser's last words, but only for the grace period: a
recogniser that never answers holds a finished call open for ``end_grace_s`` and no longer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from agents.tools import ToolRegistry
from app.audio.codec import encode
from app.audio.formats import AudioFormat
from app.clock import FakeClock
from app.pipeline.conversation import Conversation, ConversationConfig, Providers
from app.pipeline.session import CallSession, SessionConfig
from app.providers.base import PCM, STTCapabilities, STTEvent, STTOptions, Transcript
from app.providers.scripted import ScriptedLLM, ScriptedSTT, ToneTTS
from tests.e2e.fake_agents import tone
from tests.e2e.test_media_socket import media_frame
from tests.e2e.test_pipeline_dtmf import CALL_ID, NoControl, ScriptedSocket, start_frame

LINGER_S = 1.0  # the socket closes this long after the start


class SilentStream:
    """A recogniser that never answers: no events, and its first ``end_input`` (the flush) never
    returns. A second ``end_input`` returns at once, as the protocol asks."""

    def __init__(self) -> None:
        self.flushing = False

    async def send(self, pcm: PCM, voiced: bool | None = None) -> None:
        pass

    async def events(self) -> AsyncIterator[STTEvent]:
        await asyncio.Event().wait()
        yield Transcript("never", is_final=True)  # pragma: no cover

    async def end_input(self) -> None:
        if not self.flushing:
            self.flushing = True
            await asyncio.Event().wait()


class SilentSTT:
    name = "silent"
    sample_rate = 16000
    capabilities = STTCapabilities()

    def __init__(self) -> None:
        self.silent = SilentStream()

    @contextlib.asynccontextmanager
    async def stream(self, options: STTOptions) -> AsyncIterator[SilentStream]:
        try:
            yield self.silent
        finally:
            await self.silent.end_input()


@pytest.mark.parametrize("grace_s", [2.0, 0.5])
async def test_a_recogniser_that_never_answers_delays_the_end_by_the_grace_period_only(
    grace_s: float,
) -> None:
    clock, stt = FakeClock(), SilentSTT()
    conversation = Conversation(
        config=ConversationConfig(greeting=""),
        providers=Providers(stt, ScriptedLLM(), ToneTTS()),
        clock=clock,
        control=NoControl(),
        tools=ToolRegistry({}),
        call_id=CALL_ID,
        persona="default",
    )
    socket = ScriptedSocket(clock, [start_frame()], linger_s=LINGER_S)
    session = CallSession(
        call_id=CALL_ID,
        transport=socket,
        agent=conversation,
        clock=clock,
        config=SessionConfig(end_grace_s=grace_s),
    )
    assert await clock.run(session.run(), real_timeout=10) == "socket-closed"
    assert stt.silent.flushing  # the end did ask for the last words
    assert session.stats.ended_at == pytest.approx(LINGER_S + grace_s)


def said_frames(seconds: float) -> list[str]:
    """The caller's words as 20 ms μ-law media frames (a tone the scripted STT hears as words)."""
    pcm = tone(seconds, 300, 6000, rate=8000)
    fmt = AudioFormat("mulaw", 8000)
    return [
        media_frame(encode(pcm[at : at + 160], fmt), n + 1) for n, at in enumerate(range(0, len(pcm), 160))
    ]


@pytest.mark.parametrize("ending", ["socket-closed", "hangup", "stream-stopped"])
async def test_every_ending_keeps_the_words_said_just_before_it(ending: str) -> None:
    # the caller says a sentence and the call ends at once, before the recogniser's endpoint
    clock = FakeClock()
    conversation = Conversation(
        config=ConversationConfig(greeting=""),
        providers=Providers(ScriptedSTT(["What time do you open"]), ScriptedLLM(), ToneTTS()),
        clock=clock,
        control=NoControl(),
        tools=ToolRegistry({}),
        call_id=CALL_ID,
        persona="default",
    )
    frames = [start_frame(), *said_frames(0.8)]
    if ending == "stream-stopped":
        frames.append('{"event":"stop","streamId":"stream-1"}')
    linger = 0.0 if ending == "socket-closed" else 60.0
    socket = ScriptedSocket(clock, frames, linger_s=linger)
    session = CallSession(
        call_id=CALL_ID, transport=socket, agent=conversation, clock=clock, config=SessionConfig()
    )

    async def call() -> str:
        async with asyncio.TaskGroup() as tg:
            ended = tg.create_task(session.run())
            if ending == "hangup":
                await clock.sleep(0.01)  # the frames are in; the hang-up callback arrives
                session.end("hangup")
        return ended.result()

    assert await clock.run(call(), real_timeout=10) == ending
    assert [(e.speaker, e.text) for e in conversation.transcript] == [("caller", "What time do you open")]
    assert not any('"playAudio"' in m for m in socket.sent)  # nothing new was spoken
