"""What the fake Vobiz observed during one call, on one timeline (seconds from the dial).

The emulator fills a ``CallRecording``; ``report.write_outputs`` turns it into files.
Audio tracks are mono int16 at ``sample_rate``: sample ``i`` is what was on the line at
``i / sample_rate`` seconds, so the caller and agent tracks are aligned as the caller hears them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

PCM = npt.NDArray[np.int16]

EventKind = Literal[
    "call_started",  # the emulator dialled (answer webhook POSTed)
    "socket_open",
    "caller_speech_start",  # detail: {"text": ...} when known
    "caller_speech_end",
    "agent_audio_start",  # playout began after silence
    "agent_audio_end",  # playout ran dry (end of a reply, or cut)
    "checkpoint",  # the app sent a checkpoint; detail: {"name"}
    "played_stream",  # the emulator acked it; detail: {"name"}
    "clear_audio",  # the app sent clearAudio; detail: {"dropped_s": seconds of audio dropped}
    "cleared_audio",
    "barge_in",  # the caller started talking while the agent was audible
    "agent_said",  # in-process agent: a reply as the caller heard it; detail: {"text", "interrupted"}
    "agent_heard",  # in-process agent: what its speech-to-text heard; detail: {"text"}
    "stop",  # the app sent stop
    "hangup",  # detail: {"by": "caller" | "app" | "api"}
    "protocol_error",  # detail: {"rule", "detail"}
    "dtmf",
    "speak",  # Vobiz's own <Speak> (after a transfer); detail: {"text"}
    "status_callback",  # detail: {"event"}
    "script_note",  # the caller script's own remark, e.g. "wait timed out"; detail: {"note"}
]


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    t: float  # seconds since the call started
    kind: EventKind
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    t: float
    rule: str  # short stable id, e.g. "playaudio-format-mismatch"
    detail: str  # human-readable


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    t: float
    speaker: Literal["caller", "agent"]
    text: str
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class TurnLatency:
    """From the end of the caller's speech to the first agent audio the caller hears."""

    turn: int
    caller_end: float
    agent_start: float

    @property
    def latency(self) -> float:
        return self.agent_start - self.caller_end


@dataclass(slots=True)
class CallRecording:
    call_id: str
    sample_rate: int = 16000
    caller: PCM = field(default_factory=lambda: np.zeros(0, np.int16))
    agent: PCM = field(default_factory=lambda: np.zeros(0, np.int16))
    events: list[TimelineEvent] = field(default_factory=list)
    transcript: list[TranscriptLine] = field(default_factory=list)
    turns: list[TurnLatency] = field(default_factory=list)
    protocol_errors: list[ProtocolViolation] = field(default_factory=list)
    duration: float = 0.0
    end_reason: str = ""
    clock_origin: float = 0.0  # the clock's reading at t = 0 (the dial)
    # the caller's speech as the agent's speech-to-text heard it (in-process calls only)
    heard: list[TranscriptLine] = field(default_factory=list)
    # times (s) of playout ticks that ran dry mid-segment: gaps in the agent's audio (underruns)
    underruns: list[float] = field(default_factory=list)

    def events_of(self, kind: EventKind) -> list[TimelineEvent]:
        return [e for e in self.events if e.kind == kind]
