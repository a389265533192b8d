"""The TurnTaker's vocabulary: who has the floor, the events it takes, the actions it gives."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Floor(Enum):
    LISTENING = "listening"  # the agent is silent, the caller may speak
    THINKING = "thinking"  # a reply is being prepared; nothing audible yet
    SPEAKING = "speaking"  # the agent's audio is playing
    PAUSED = "paused"  # silenced by a possible barge-in; deciding
    ENDING = "ending"  # the last words are playing; then hang up
    ENDED = "ended"


# ── events in ──


@dataclass(frozen=True, slots=True)
class Voice:
    t: float
    voiced: bool  # VAD verdict for one 20 ms frame


@dataclass(frozen=True, slots=True)
class Words:
    t: float
    text: str
    final: bool
    speech_final: bool = False


@dataclass(frozen=True, slots=True)
class UtteranceEnded:
    t: float


@dataclass(frozen=True, slots=True)
class AudioStarted:
    t: float
    turn: int


@dataclass(frozen=True, slots=True)
class AudioDone:
    """Every sample of the turn's reply has played (its last checkpoint acknowledged)."""

    t: float
    turn: int


@dataclass(frozen=True, slots=True)
class ReplyEmpty:
    """The reply finished without producing any audio (e.g. a tool call only, or a failure)."""

    t: float
    turn: int


@dataclass(frozen=True, slots=True)
class EndRequested:
    """The agent decided to end the call (``end_call``) in the turn now being spoken."""

    t: float
    reason: str


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The process is shutting down (its drain timed out): the call ends now, politely."""

    t: float


@dataclass(frozen=True, slots=True)
class Tick:
    t: float


@dataclass(frozen=True, slots=True)
class CallOver:
    """The call has ended (the recogniser is flushed): final words not yet answered become one
    last ``Respond`` (to be written down, never answered); the floor is ``ENDED`` after."""

    t: float


@dataclass(frozen=True, slots=True)
class Assessed:
    """The end-of-turn model's answer to ``Assess(seq)``: the probability that the caller's
    turn is complete (None: no answer, e.g. the model was busy or failed)."""

    t: float
    seq: int
    complete: float | None


TurnEvent = (
    Voice
    | Words
    | UtteranceEnded
    | AudioStarted
    | AudioDone
    | ReplyEmpty
    | Shutdown
    | EndRequested
    | Tick
    | CallOver
    | Assessed
)

# ── actions out ──


@dataclass(frozen=True, slots=True)
class Respond:
    """Start reply ``turn`` to what the caller said. ``final_at``: when the last final
    transcript of ``text`` arrived (the turn may end later, on silence); metadata, not identity."""

    turn: int
    text: str
    final_at: float | None = field(default=None, compare=False)
    # preemptive: prepare the reply now (LLM, first sentence's audio) but play nothing, run no
    # tool and keep nothing in the history until ``Commit(turn)``; ``Cancel(turn)`` discards it
    held: bool = False


@dataclass(frozen=True, slots=True)
class Commit:
    """The caller's turn ended as the held ``Respond(turn)`` foresaw: it becomes the reply.
    ``final_at``: when the last final transcript of its words arrived."""

    turn: int
    final_at: float | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Assess:
    """Ask the end-of-turn audio model whether the caller's turn is complete (the caller's
    recent audio); its answer comes back as ``Assessed(seq=seq)``."""

    seq: int


@dataclass(frozen=True, slots=True)
class Speak:
    """Say a fixed line as reply ``turn`` (greeting, reprompt, closing)."""

    turn: int
    text: str


@dataclass(frozen=True, slots=True)
class Silence:
    """Stop the agent's audio now (clearAudio), keeping what was not heard."""

    turn: int


@dataclass(frozen=True, slots=True)
class Resume:
    """It was not an interruption: play the rest of ``turn`` from the cut."""

    turn: int


@dataclass(frozen=True, slots=True)
class Cancel:
    """Abandon reply ``turn``; only what the caller heard stays in the history."""

    turn: int


@dataclass(frozen=True, slots=True)
class HangUp:
    reason: str


TurnAction = Respond | Commit | Assess | Speak | Silence | Resume | Cancel | HangUp
