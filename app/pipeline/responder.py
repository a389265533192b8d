"""``Responder``: one agent reply, as one cancellable task.

LLM deltas → sentences → TTS → 20 ms frames → ``Playout``. The first sentence goes to TTS as
soon as it is complete; its first audio goes to the playout as soon as it exists. Tool calls
are executed between LLM rounds. A provider failure becomes a short spoken apology.
Cancelling the task stops the LLM and TTS streams at their next await.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from app.audio.formats import AudioFormat
from app.audio.frames import OutboundEncoder
from app.clock import Clock
from app.pipeline.latency import TurnStamps
from app.pipeline.playout import FRAME_S, Playout
from app.pipeline.sentences import SentenceSplitter
from app.providers.base import (
    Finished,
    LanguageModel,
    LLMOptions,
    Message,
    ProviderError,
    SpeechSynthesizer,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    TTSOptions,
)

log = logging.getLogger("app.responder")

MAX_TOOL_ROUNDS = 4

ToolRunner = Callable[[ToolCall], Awaitable[str]]


@dataclass(slots=True)
class ReplyResult:
    text: str = ""  # everything the reply said (the heard part is the playout's business)
    spoke: bool = False  # at least one sentence was queued
    failed: bool = False
    messages: list[Message] = field(default_factory=list)  # tool calls and results, in order


@dataclass(slots=True)
class Responder:
    turn: int
    playout: Playout
    tts: SpeechSynthesizer
    tts_options: TTSOptions
    out_format: AudioFormat
    clock: Clock
    stamps: TurnStamps
    apology: str = "Sorry, I had a problem there. Could you say that again?"
    max_ahead_s: float = 3.0  # synthesis waits while this much audio is still unheard
    _sentences: int = 0
    result: ReplyResult = field(default_factory=ReplyResult)

    async def say(self, text: str) -> None:
        """Speak ``text`` (a fixed line) sentence by sentence."""
        splitter = SentenceSplitter()
        for sentence in splitter.push(text + " "):
            await self._speak(sentence)
        tail = splitter.flush()
        if tail:
            await self._speak(tail)

    async def reply(
        self,
        llm: LanguageModel,
        history: Sequence[Message],
        tools: Sequence[ToolSpec],
        options: LLMOptions,
        run_tool: ToolRunner,
    ) -> None:
        """Answer the conversation in ``history`` (its last message is the caller's)."""
        messages = list(history)
        try:
            for _ in range(MAX_TOOL_ROUNDS):
                calls, text = await self._llm_round(llm, messages, tools, options)
                if not calls:
                    return
                assistant = Message("assistant", text, tool_calls=tuple(calls))
                messages.append(assistant)
                self.result.messages.append(assistant)
                for call in calls:
                    output = await run_tool(call)
                    result = Message("tool", output, tool_call_id=call.id)
                    messages.append(result)
                    self.result.messages.append(result)
        except ProviderError as exc:
            self.result.failed = True
            log.warning("reply failed: %s", exc.provider, extra={"retryable": exc.retryable})
            await self._apologise()

    async def _llm_round(
        self, llm: LanguageModel, messages: list[Message], tools: Sequence[ToolSpec], options: LLMOptions
    ) -> tuple[list[ToolCall], str]:
        splitter = SentenceSplitter()
        calls: list[ToolCall] = []
        said: list[str] = []
        async with contextlib.aclosing(llm.stream(messages, tools, options)) as stream:
            async for event in stream:
                match event:
                    case TextDelta(text=delta):
                        self.stamps.stamp("llm_first_token", self.clock.now())
                        for sentence in splitter.push(delta):
                            said.append(sentence)
                            await self._speak(sentence)
                    case ToolCallRequest(call=call):
                        self.stamps.stamp("llm_first_token", self.clock.now())
                        calls.append(call)
                    case Finished():
                        break
        tail = splitter.flush()
        if tail:
            said.append(tail)
            await self._speak(tail)
        return calls, " ".join(said)

    async def _apologise(self) -> None:
        try:
            await self._speak(self.apology)
        except ProviderError as exc:
            log.warning("apology failed too: %s", exc.provider)

    async def _speak(self, sentence: str) -> None:
        # synthesise just ahead of the caller's ear, not the whole reply at once: a barge-in
        # then wastes little, and many calls' replies don't burst the CPU together
        while self._sentences and self.playout.backlog_s() > self.max_ahead_s:
            await self.clock.sleep(FRAME_S * 5)
        self._sentences += 1
        self.result.text = f"{self.result.text} {sentence}".strip()
        self.result.spoke = True
        audio = self.playout.open_segment(self.turn, f"t{self.turn}-s{self._sentences}", sentence)
        encoder = OutboundEncoder(self.tts.sample_rate, self.out_format)
        try:
            async with contextlib.aclosing(self.tts.synthesize(sentence, self.tts_options)) as chunks:
                async for chunk in chunks:
                    if len(chunk):
                        self.stamps.stamp("tts_first_audio", self.clock.now())
                        self.playout.add_frames(audio, encoder.push(chunk))
                        # let the playout send what just arrived before synthesising on: a TTS that
                        # never waits (offline engines, cached audio) must not delay the first frame
                        await asyncio.sleep(0)
            self.playout.add_frames(audio, encoder.flush())
        finally:
            self.playout.close_segment(audio)  # even when cancelled or failed: no half-open segment
