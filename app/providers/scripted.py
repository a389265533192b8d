"""Zero-latency, deterministic providers for tests and benchmarks (not for callers).

- ``ScriptedSTT`` "recognises" loud audio: each burst of sound followed by ``endpoint_s`` of
  quiet becomes the next scripted utterance (an interim of its first words after
  ``interim_after_s`` of sound, an interim of all of them at each pause, then a final with
  ``speech_final``, then ``UtteranceEnd``; with ``endpointing=False`` the final alone). A
  burst shorter than ``min_word_s`` is noise.
- ``ScriptedLLM`` answers by rules (regex → reply, optionally with a tool call, and
  ``after_tool``: what it says once the tool's result is in).
- ``ToneTTS`` speaks each word as ``seconds_per_word`` of a tone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.providers.base import (
    PCM,
    Finished,
    LLMEvent,
    LLMOptions,
    Message,
    STTCapabilities,
    STTEvent,
    STTOptions,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Transcript,
    TTSOptions,
    UtteranceEnd,
)
from app.providers.errors import ProviderError

_CLOSED = object()


class ScriptedSTT:
    name = "scripted-stt"
    sample_rate = 16000

    def __init__(
        self,
        utterances: Iterable[str] = (),
        *,
        threshold: int = 1500,
        endpoint_s: float = 0.3,
        interim_after_s: float = 0.2,
        min_word_s: float = 0.16,
        endpointing: bool = True,
        interim_words: bool = True,
    ) -> None:
        self.utterances: deque[str] = deque(utterances)
        self.endpointing = endpointing
        # interim_words=False: like Whisper, words only once the caller stops
        self.capabilities = STTCapabilities(interim_words=interim_words)
        self.threshold = threshold
        self.endpoint_s = endpoint_s
        self.interim_after_s = interim_after_s
        self.min_word_s = min_word_s
        self.streams: list[ScriptedSTTStream] = []

    @contextlib.asynccontextmanager
    async def stream(self, options: STTOptions) -> AsyncIterator[ScriptedSTTStream]:
        """No task: leaving the block ends the input (``end_input``), as every stream's does."""
        stream = ScriptedSTTStream(self, options)
        self.streams.append(stream)
        try:
            yield stream
        finally:
            await stream.end_input()


class ScriptedSTTStream:
    def __init__(self, provider: ScriptedSTT, options: STTOptions) -> None:
        self._p = provider
        self.options = options
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._t = 0.0  # stream audio time, seconds
        self._voiced = 0.0
        self._quiet = 0.0
        self._speaking = False
        self._interim_sent = False
        self.closed = False

    async def send(self, pcm: PCM, voiced: bool | None = None) -> None:
        """``voiced`` is not used: loudness decides (``threshold``)."""
        p = self._p
        step = len(pcm) / p.sample_rate
        self._t += step
        loud = len(pcm) > 0 and int(np.abs(pcm).max()) > p.threshold
        if loud:
            self._speaking = True
            self._voiced += step
            self._quiet = 0.0
            if (
                p.capabilities.interim_words
                and not self._interim_sent
                and self._voiced >= p.interim_after_s
                and p.utterances
            ):
                self._interim_sent = True
                first = p.utterances[0].split()
                if first:
                    self._events.put_nowait(Transcript(" ".join(first[:2]), is_final=False))
            return
        if not self._speaking:
            return
        if self._quiet == 0.0 and self._interim_sent and p.utterances:
            # the caller paused: the latest hypothesis has every word (as a streaming
            # recogniser's interim does by then), the final follows after ``endpoint_s``
            self._events.put_nowait(Transcript(p.utterances[0], is_final=False))
        self._quiet += step
        if self._quiet + 1e-9 >= p.endpoint_s:
            self._utterance_over(speech_final=p.endpointing)

    def _utterance_over(self, *, speech_final: bool) -> None:
        p = self._p
        if self._voiced + 1e-9 >= p.min_word_s and p.utterances:
            text = p.utterances.popleft()
            if text:
                end = self._t - self._quiet
                self._events.put_nowait(
                    Transcript(text, is_final=True, speech_final=speech_final, confidence=0.99, end=end)
                )
                if speech_final:
                    self._events.put_nowait(UtteranceEnd(end))
        self._speaking = self._interim_sent = False
        self._voiced = self._quiet = 0.0

    async def events(self) -> AsyncIterator[STTEvent]:
        while True:
            item = await self._events.get()
            if item is _CLOSED:
                return
            yield item

    async def end_input(self) -> None:
        """An utterance in progress becomes final (not ``speech_final``: the caller was cut off,
        as Deepgram's ``Finalize`` answers), then ``events`` ends."""
        if not self.closed:
            self.closed = True
            if self._speaking:
                self._utterance_over(speech_final=False)
            self._events.put_nowait(_CLOSED)


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: str  # regex, searched case-insensitively in the caller's last words
    reply: str
    tool: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    after_tool: str = ""  # said in the round after the tool's result


class ScriptedLLM:
    name = "scripted-llm"

    def __init__(
        self,
        rules: Sequence[Rule] = (),
        *,
        default: str = "You said {text}.",
        fail_on: str | None = None,
    ) -> None:
        self.rules = list(rules)
        self.default = default
        self.fail_on = fail_on
        self.requests: list[list[Message]] = []  # every history it was asked to answer
        self.closed = 0  # streams finished or closed

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], options: LLMOptions
    ) -> AsyncGenerator[LLMEvent, None]:
        self.requests.append(list(messages))
        try:
            async for event in self._reply(messages):
                yield event
        finally:
            self.closed += 1  # every stream is closed, also one abandoned at a barge-in

    async def _reply(self, messages: Sequence[Message]) -> AsyncGenerator[LLMEvent, None]:
        last = messages[-1]
        if last.role == "tool":
            asked = next((m.content for m in reversed(messages) if m.role == "user"), "")
            rule = self._rule(asked)
            for delta in _tokens(rule.after_tool if rule else ""):
                yield delta
            yield Finished("stop")
            return
        text = last.content
        if self.fail_on and re.search(self.fail_on, text, re.IGNORECASE):
            yield TextDelta("Let me")
            raise ProviderError(self.name, "scripted failure", retryable=True)
        rule = self._rule(text)
        reply = rule.reply if rule else self.default.format(text=text.rstrip(".?! "))
        for delta in _tokens(reply):
            yield delta
        if rule and rule.tool:
            args = json.dumps(dict(rule.arguments))
            yield ToolCallRequest(ToolCall(f"call_{len(self.requests)}", rule.tool, args))
            yield Finished("tool_calls")
            return
        yield Finished("stop")

    def _rule(self, text: str) -> Rule | None:
        return next((r for r in self.rules if re.search(r.pattern, text, re.IGNORECASE)), None)


def _tokens(text: str) -> list[TextDelta]:
    """Word by word, as a model streams (with no delay)."""
    return [TextDelta(word if i == 0 else " " + word) for i, word in enumerate(text.split())]


class ToneTTS:
    name = "tone-tts"

    def __init__(
        self, *, sample_rate: int = 16000, seconds_per_word: float = 0.25, fail_on: str | None = None
    ) -> None:
        self.sample_rate = sample_rate
        self.seconds_per_word = seconds_per_word
        self.fail_on = fail_on
        self.spoken: list[str] = []

    async def synthesize(self, text: str, options: TTSOptions) -> AsyncGenerator[PCM, None]:
        if self.fail_on and re.search(self.fail_on, text, re.IGNORECASE):
            raise ProviderError(self.name, "scripted failure", retryable=True)
        self.spoken.append(text)
        n = int(self.seconds_per_word * self.sample_rate)
        t = np.arange(n) / self.sample_rate
        for i, _ in enumerate(text.split()):
            freq = 500 + 60 * (i % 5)
            yield (7000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
