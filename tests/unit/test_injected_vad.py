"""The call's voice activity detector is injected (``Providers.vad``): it is made once, for the
call's pipeline rate, judges every inbound frame once, and its verdicts reach both the
turn-taker and the recogniser."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from agents.tools import ToolRegistry
from app.audio.codec import encode
from app.audio.formats import MULAW_8K
from app.clock import FakeClock
from app.pipeline.conversation import Conversation, ConversationConfig, Providers
from app.pipeline.session import CallSession, SessionConfig
from app.providers.base import PCM, STTOptions
from app.providers.scripted import ScriptedLLM, ScriptedSTT, ScriptedSTTStream, ToneTTS
from tests.e2e.fake_agents import tone
from tests.e2e.test_media_socket import media_frame
from tests.e2e.test_pipeline_dtmf import CALL_ID, NoControl, ScriptedSocket, start_frame

FRAMES = 30


class EveryOtherFrame:
    """A detector whose verdicts are known in advance: voiced on every other frame."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.judged: list[int] = []  # samples per frame judged

    def is_voiced(self, pcm: PCM) -> bool:
        self.judged.append(len(pcm))
        return len(self.judged) % 2 == 0


class RecordingSTT(ScriptedSTT):
    """The scripted recogniser, keeping the verdict that came with each frame."""

    def __init__(self) -> None:
        super().__init__()
        self.verdicts: list[bool | None] = []

    @contextlib.asynccontextmanager
    async def stream(self, options: STTOptions) -> AsyncIterator[ScriptedSTTStream]:
        async with super().stream(options) as inner:
            send = inner.send

            async def recording_send(pcm: PCM, voiced: bool | None = None) -> None:
                self.verdicts.append(voiced)
                await send(pcm, voiced)

            inner.send = recording_send  # type: ignore[method-assign]
            yield inner


async def test_the_injected_detector_judges_each_frame_once_and_its_verdicts_reach_the_recogniser() -> None:
    clock, stt = FakeClock(), RecordingSTT()
    made: list[EveryOtherFrame] = []

    def make_vad(rate: int) -> EveryOtherFrame:
        made.append(EveryOtherFrame(rate))
        return made[-1]

    conversation = Conversation(
        config=ConversationConfig(greeting=""),
        providers=Providers(stt, ScriptedLLM(), ToneTTS(), vad=make_vad),
        clock=clock,
        control=NoControl(),
        tools=ToolRegistry({}),
        call_id=CALL_ID,
        persona="default",
    )
    quiet = encode(tone(0.02, 440.0, amplitude=0, rate=8000), MULAW_8K)
    frames = [start_frame(), *(media_frame(quiet, seq) for seq in range(1, FRAMES + 1))]
    session = CallSession(
        call_id=CALL_ID,
        transport=ScriptedSocket(clock, frames),
        agent=conversation,
        clock=clock,
        config=SessionConfig(),
    )
    assert await clock.run(session.run()) == "socket-closed"
    assert len(made) == 1  # one detector per call
    vad = made[0]
    assert vad.sample_rate == SessionConfig().pipeline_rate
    assert vad.judged == [vad.sample_rate // 50] * FRAMES  # each 20 ms frame judged once
    assert stt.verdicts == [i % 2 == 0 for i in range(1, FRAMES + 1)]
