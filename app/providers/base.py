"""The provider interfaces the pipeline talks to: speech-to-text, language model, text-to-speech.

Each is a small ``Protocol``; implementations live beside this file (Deepgram, OpenAI, the
offline engines). Vendor errors become ``ProviderError`` at this edge, with ``retryable``
saying whether the same request may work a moment later.

Audio crossing these interfaces is mono int16 numpy at the implementation's ``sample_rate``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

PCM = npt.NDArray[np.int16]


# ── speech-to-text ───────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Transcript:
    """Words heard. ``is_final``: this span will not be revised. ``speech_final``: the
    recogniser's endpointing thinks the caller finished speaking (end of an utterance)."""

    text: str
    is_final: bool
    speech_final: bool = False
    confidence: float | None = None
    start: float | None = None  # seconds of stream audio since the stream opened
    end: float | None = None


@dataclass(frozen=True, slots=True)
class UtteranceEnd:
    """The recogniser saw a gap after the last word (Deepgram ``UtteranceEnd``)."""

    last_word_end: float | None = None


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    timestamp: float | None = None


STTEvent = Transcript | UtteranceEnd | SpeechStarted


@dataclass(frozen=True, slots=True)
class STTOptions:
    language: str = "en-US"
    model: str = ""  # provider default when empty
    keywords: tuple[str, ...] = ()
    endpointing_ms: int = 300
    utterance_end_ms: int = 1000
    interim_results: bool = True


@dataclass(frozen=True, slots=True)
class STTCapabilities:
    """What a recogniser can do. ``interim_words``: words arrive while the caller is still
    talking (False: only once an utterance ends, as with Whisper). ``languages``: language tags
    it understands (empty: any it is asked for). ``sample_rates``: Hz of audio it takes."""

    interim_words: bool = True
    languages: tuple[str, ...] = ()
    sample_rates: tuple[int, ...] = (16000,)


class STTStream(Protocol):
    async def send(self, pcm: PCM, voiced: bool | None = None) -> None:
        """Queue caller audio (int16 at the provider's ``sample_rate``). Never blocks for long.

        ``voiced``: the call's voice activity verdict for this audio (one 20 ms frame), so a
        recogniser that segments by voice need not run a detector of its own (None: unknown)."""
        ...

    def events(self) -> AsyncIterator[STTEvent]:
        """Recognition results in order; ends after ``end_input`` or when the stream closes."""
        ...

    async def end_input(self) -> None:
        """No more audio: the recogniser finalises what it heard, its last results arrive
        (bounded in time), then ``events`` ends. Later audio is ignored. Safe to call twice."""
        ...


class SpeechToText(Protocol):
    name: str
    sample_rate: int  # Hz of the audio ``send`` takes
    capabilities: STTCapabilities

    def stream(self, options: STTOptions) -> AbstractAsyncContextManager[STTStream]:
        """A live recognition stream for ``async with``: entering opens it (``ProviderError`` if
        it cannot), leaving ends the input as ``end_input`` does and stops its every task."""
        ...


# ── language model ───────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model produced it


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # on role="tool": which call this answers


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """A complete tool call (arguments fully streamed)."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class LLMUsage:
    """Tokens the service reported for this request (OpenAI's final usage chunk), sent just
    before ``Finished``; a request closed early, or a model that reports nothing, sends none."""

    model: str  # as asked for (the price table's key)
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Finished:
    reason: str  # "stop", "tool_calls", "length", ...


LLMEvent = TextDelta | ToolCallRequest | LLMUsage | Finished


@dataclass(frozen=True, slots=True)
class LLMOptions:
    model: str = ""
    temperature: float = 0.6
    max_tokens: int = 300


class LanguageModel(Protocol):
    name: str

    def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], options: LLMOptions
    ) -> AsyncGenerator[LLMEvent, None]:
        """Stream one reply. Raises ``ProviderError`` (before or during the stream).

        Closing the generator early (barge-in) releases the connection at once."""
        ...


# ── text-to-speech ───────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class TTSOptions:
    voice: str = ""  # provider default when empty
    model: str = ""
    speed: float = 1.0
    language: str = ""  # BCP-47, e.g. "hi-IN", for a voice that speaks several (Sarvam); "": its default


class SpeechSynthesizer(Protocol):
    name: str
    sample_rate: int  # Hz of the audio chunks produced

    def synthesize(self, text: str, options: TTSOptions) -> AsyncGenerator[PCM, None]:
        """Stream speech for ``text`` as int16 chunks, the first as soon as it exists.

        Closing the generator early (barge-in) stops the synthesis."""
        ...


# ── end of turn ──────────────────────────────────────────────────────────────────────────────


class TurnModel(Protocol):
    """An audio model of whether the caller has finished their turn (intonation, a word cut
    short), asked when the caller pauses. Work runs off the event loop; one instance serves
    every call of the process."""

    name: str

    async def complete_probability(self, audio: PCM) -> float | None:
        """Probability (0..1) that the turn is complete, from int16 16 kHz mono audio of any
        length ending at the pause (only the last 8 s count). ``None`` when no verdict can be
        had in time (the model is busy with other calls) or the model failed: decide without
        it. Never raises for a model failure; cancelling abandons the verdict."""
        ...
