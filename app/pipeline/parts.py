"""What a ``Conversation`` is made of: its settings, its providers, the call control it uses,
and the lines of its transcript. Plain values and protocols; no behaviour."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.pipeline import turns as tt
from app.pipeline.keypad import MenuChoice
from app.pipeline.responder import FIRST_TOKEN_S
from app.providers.base import (
    LanguageModel,
    LLMOptions,
    SpeechSynthesizer,
    SpeechToText,
    STTOptions,
    TTSOptions,
    TurnModel,
)
from app.providers.failover import CallFailovers
from app.providers.line_cache import LineCache
from app.providers.vad import VoiceActivityDetector


@dataclass(frozen=True, slots=True)
class ConversationConfig:
    system_prompt: str = "You are a friendly, concise phone assistant."
    greeting: str = "Hello! How can I help you today?"
    goodbye: str = "Thank you for calling. Goodbye!"
    apology: str = "Sorry, I had a problem there. Could you say that again?"
    policy: tt.TurnPolicy = field(default_factory=tt.TurnPolicy)
    llm: LLMOptions = field(default_factory=LLMOptions)
    tts: TTSOptions = field(default_factory=TTSOptions)
    stt: STTOptions = field(default_factory=STTOptions)
    vad_aggressiveness: int = 2
    tool_filler_after_s: float = 0.8  # a slow tool gets a spoken filler after this long
    first_token_s: float = FIRST_TOKEN_S  # an LLM round's first event must come within this long
    tick_s: float = 0.1
    keypad: Mapping[str, MenuChoice] = field(default_factory=dict)  # the persona's keys → actions
    keypad_gap_s: float = 1.0  # keys no map takes make one turn until this long without a key


#: makes a call's voice activity detector for the rate of the audio it will judge (Hz)
VadFactory = Callable[[int], VoiceActivityDetector]


@dataclass(frozen=True, slots=True)
class Providers:
    stt: SpeechToText
    llm: LanguageModel
    tts: SpeechSynthesizer
    fallback_tts: SpeechSynthesizer | None = None  # speaks the apology when ``tts`` has failed
    # the call's one VAD (None: WebRTC VAD at ``ConversationConfig.vad_aggressiveness``); its
    # verdicts go to the turn-taker and to the recogniser, so no frame is judged twice
    vad: VadFactory | None = None
    # the end-of-turn audio model, shared by every call (None: decide from silence and words)
    turn_model: TurnModel | None = None
    # the process's rendered fixed lines, shared by every call (None: each line synthesized anew)
    lines: LineCache | None = None
    # the stages that switched provider during the call (app/providers/failover.py); one per call
    failovers: CallFailovers = field(default_factory=CallFailovers)


class CallControl(Protocol):
    async def hang_up(self) -> None: ...

    async def transfer(self) -> str:
        """Transfer the call; returns a sentence for the model about what happened."""
        ...

    async def send_dtmf(self, digits: str) -> str:
        """Play DTMF tones on the call; returns a sentence for the model."""
        ...


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    t: float
    speaker: str  # "caller" | "agent"
    text: str
    interrupted: bool = False


def call_policy(policy: tt.TurnPolicy, interim_words: bool) -> tt.TurnPolicy:
    """The persona's turn policy for a recogniser with or without interim words. Without (Whisper),
    words come only when the caller stops: a long sentence over the agent would look like
    wordless noise (so no ``max_pause_s``), and its end of speech is only a pause."""
    if interim_words:
        return policy
    return dataclasses.replace(policy, max_pause_s=None, interim_words=False)


class ConversationObserver(Protocol):
    """Sees a call's transcript as it grows and the call's end (the simulator, call records);
    ``conversation`` is the call's ``Conversation``."""

    def on_transcript(self, conversation: Any, entry: TranscriptEntry) -> None: ...

    def on_end(self, conversation: Any) -> None: ...  # once, however the call ended
