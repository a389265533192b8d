"""The TurnTaker's vocabulary: who has the floor, the events it takes, the actions it gives."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from app.pipeline.end_of_turn import EndOfTurnPolicy
from app.pipeline.keypad import MenuChoice
from app.pipeline.language_words import cues_for


class Floor(Enum):
    LISTENING = "listening"  # the agent is silent, the caller may speak
    THINKING = "thinking"  # a reply is being prepared; nothing audible yet
    SPEAKING = "speaking"  # the agent's audio is playing
    PAUSED = "paused"  # silenced by a possible barge-in; deciding
    ENDING = "ending"  # the last words are playing; then hang up
    ENDED = "ended"


# said over the agent to show attention, not to take the floor: English and Hindi/Hinglish, the
# default (a persona's language adds its own: ``app.pipeline.language_words``)
BACKCHANNELS = cues_for("en-US").backchannels


@dataclass(frozen=True, slots=True)
class TurnPolicy:
    min_speech_s: float = 0.08
    min_words: int = 1
    backchannels: frozenset[str] = BACKCHANNELS  # normalised as ``language_words.words`` gives them
    # no words this long after a sound over the agent stopped: resume (interim-word recognisers)
    resume_after_s: float = 0.3
    false_interruption_s: float = 1.2  # ... at the latest, for any recogniser
    late_words_s: float = 1.0  # real words this soon after such a resume still interrupt
    interim_words: bool = True  # the recogniser gives words while the caller talks
    audio_model: bool = False  # an end-of-turn audio model answers ``Assess``
    # paused this long with no words, however loud: resume (None: never, for a recogniser that
    # gives no words until the caller stops, where long speech would look like noise)
    max_pause_s: float | None = 1.8
    eot: EndOfTurnPolicy = field(default_factory=EndOfTurnPolicy)
    greeting_interruptible: bool = True
    idle_reprompt_s: float = 8.0
    max_reprompts: int = 2
    max_duration_s: float = 600.0
    reprompt: str = "Are you still there?"
    idle_goodbye: str = "I'll let you go now. Goodbye!"
    closing_line: str = "We've reached the time limit for this call. Thank you for calling, goodbye!"
    shutdown_line: str = "I'm sorry, I have to end the call now. Please call us back. Goodbye!"


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


@dataclass(frozen=True, slots=True)
class KeyPressed:
    """The caller pressed a key (outside a digit collection): it takes the floor at once, as
    speech that barges in does, unless the agent may not be interrupted now."""

    t: float


@dataclass(frozen=True, slots=True)
class Keyed:
    """The caller's keys make their turn: ``text`` for the history ("The caller pressed 1.");
    ``menu``: what the persona's keypad map does with the key (None: the model decides)."""

    t: float
    text: str
    menu: MenuChoice | None = None


@dataclass(frozen=True, slots=True)
class Collecting:
    """A digit collection starts (``active``) or ends. Meanwhile the caller's speech neither
    barges in nor makes a turn: the number is keyed, never heard (and misheard)."""

    t: float
    active: bool


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
    | KeyPressed
    | Keyed
    | Collecting
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
    keyed: bool = field(default=False, compare=False)  # the caller's turn was keys (``Keyed``)
    menu: MenuChoice | None = None  # keys the persona maps: its reply and tool come first


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
