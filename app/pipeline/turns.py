"""``TurnTaker``: who has the floor. A pure state machine: events in, actions out.

It is the ONLY owner of "the agent is speaking". Time arrives inside events (seconds on the
call's clock). The policy, "stop fast, decide later":

- While the agent is audible, a voiced run of ``min_speech_s`` silences it at once
  (``Silence``: clearAudio, keep the unplayed audio). Words decide what it was: real words
  (not a backchannel, at least ``min_words``) cancel the reply and the caller keeps the
  floor; a backchannel, or no words within ``false_interruption_s``, resumes from the cut.
  Voiced noise that never becomes words (a fan, traffic) resumes after ``max_pause_s``; barge-in
  by voice alone then waits until that noise has stopped, while words still interrupt.
- The caller's turn ends on a final transcript plus an end signal: ``speech_final``,
  ``UtteranceEnd``, or ``end_of_turn_silence_s`` of VAD silence.
- Idle: ``idle_reprompt_s`` of silence on both sides → a reprompt; after ``max_reprompts`` a
  goodbye and hang-up. ``max_duration_s`` → a closing line and hang-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

# said over the agent to show attention, not to take the floor (English and Hindi/Hinglish)
BACKCHANNELS = (
    *("uh-huh", "uh", "huh", "mm-hmm", "mhm", "mm", "hmm", "okay", "ok", "yeah", "yes", "yep"),
    *("right", "sure", "haan", "haa", "ha", "achha", "acha", "accha", "theek", "thik", "hai", "ji"),
)


@dataclass(frozen=True, slots=True)
class TurnPolicy:
    min_speech_s: float = 0.08
    min_words: int = 1
    backchannels: frozenset[str] = frozenset(BACKCHANNELS)
    false_interruption_s: float = 1.2  # voice stopped this long with no words: resume
    # paused this long with no words, however loud: resume (None: never, for a recogniser that
    # gives no words until the caller stops, where long speech would look like noise)
    max_pause_s: float | None = 1.8
    end_of_turn_silence_s: float = 0.7
    greeting_interruptible: bool = True
    idle_reprompt_s: float = 8.0
    max_reprompts: int = 2
    max_duration_s: float = 600.0
    reprompt: str = "Are you still there?"
    idle_goodbye: str = "I'll let you go now. Goodbye!"
    closing_line: str = "We've reached the time limit for this call. Thank you for calling, goodbye!"


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
    """The caller's turn ended as the held ``Respond(turn)`` foresaw: it becomes the reply."""

    turn: int


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

_WORD = re.compile(r"[\w'-]+", re.UNICODE)


@dataclass
class TurnTaker:
    policy: TurnPolicy = field(default_factory=TurnPolicy)
    floor: Floor = Floor.LISTENING
    turn: int = 0  # the current (or last) agent reply
    started_at: float = 0.0
    _voiced_run: float = 0.0
    _last_voice: float = 0.0  # when the caller was last voiced
    _heard_words: list[str] = field(default_factory=list)  # caller's final words this turn
    _interim: str = ""
    _paused_at: float = 0.0
    _pause_words: bool = False
    _pause_words_at: float = 0.0  # last words (any) seen while paused
    _noise: bool = False  # resumed over wordless noise: voice alone cannot barge in until it stops
    _final_at: float | None = None  # when the last final words of this turn arrived
    _quiet_since: float = 0.0  # when both sides last went quiet
    _reprompts: int = 0
    _last_user_text: str = ""
    _end_reason: str = ""
    _closing: bool = False

    @property
    def closing(self) -> bool:
        """The agent is ending the call: it hangs up once its current reply has been heard."""
        return self._closing

    @property
    def agent_speaking(self) -> bool:
        """True while the caller can hear (or is about to hear) the agent."""
        return self.floor in (Floor.SPEAKING, Floor.ENDING)

    def start(self, t: float, greeting: str) -> list[TurnAction]:
        self.started_at = self._quiet_since = t
        if not greeting:
            return []
        return self._speak(greeting)

    def handle(self, event: TurnEvent) -> list[TurnAction]:
        if self.floor is Floor.ENDED:
            return []
        match event:
            case Voice():
                return self._on_voice(event)
            case Words():
                return self._on_words(event)
            case UtteranceEnded(t=t):
                return self._maybe_end_turn(t, signal=True)
            case AudioStarted(turn=turn) if turn == self.turn and self.floor is Floor.THINKING:
                self.floor = Floor.SPEAKING
            case AudioDone(t=t, turn=turn) | ReplyEmpty(t=t, turn=turn) if turn == self.turn:
                return self._on_reply_over(t)
            case EndRequested(reason=reason):
                self._end_reason = reason
                if self.floor in (Floor.SPEAKING, Floor.THINKING, Floor.PAUSED):
                    self._closing = True
            case Tick(t=t):
                return self._on_tick(t)
            case CallOver():
                self.floor = Floor.ENDED
                if not self._heard_words:
                    return []
                text = " ".join(self._heard_words)
                self._heard_words, self._interim = [], ""
                self.turn += 1
                return [Respond(self.turn, text, final_at=self._final_at)]
        return []

    # ── internals ──

    def _speak(self, text: str) -> list[TurnAction]:
        self.turn += 1
        self.floor = Floor.THINKING
        return [Speak(self.turn, text)]

    def _on_voice(self, event: Voice) -> list[TurnAction]:
        t = event.t
        if self.floor is Floor.PAUSED and self._pause_expired(t):
            return self._resume_over_noise(t)
        if not event.voiced:
            self._voiced_run = 0.0
            waited = t - max(self._last_voice, self._paused_at)
            if self._noise and t - self._last_voice >= self.policy.false_interruption_s - 1e-9:
                self._noise = False
            if (
                self.floor is Floor.PAUSED
                and not self._pause_words
                and waited >= self.policy.false_interruption_s
            ):
                return self._resume()
            return self._maybe_end_turn(t, signal=False)
        self._voiced_run += 0.02
        self._last_voice = self._quiet_since = t
        if (
            self.floor is Floor.SPEAKING
            and self._may_barge_in()
            and not self._noise
            and self._voiced_run >= self.policy.min_speech_s - 1e-9
        ):
            self.floor = Floor.PAUSED
            self._paused_at = t
            self._pause_words = False
            return [Silence(self.turn)]
        return []

    def _may_barge_in(self) -> bool:
        return (self.policy.greeting_interruptible or self.turn > 1) and not self._closing

    def _pause_expired(self, t: float) -> bool:
        """Paused ``max_pause_s`` with no words since the pause (or since the last words)."""
        if self.policy.max_pause_s is None:
            return False
        since = max(self._paused_at, self._pause_words_at)
        return t - since >= self.policy.max_pause_s - 1e-9

    def _resume_over_noise(self, t: float) -> list[TurnAction]:
        # loud but wordless: talk on, and while the noise lasts do not let it cut again at once
        self._noise = t - self._last_voice < self.policy.false_interruption_s
        return self._resume()

    def _is_backchannel(self, text: str) -> bool:
        words = [w.lower() for w in _WORD.findall(text)]
        return bool(words) and all(w in self.policy.backchannels for w in words)

    def _counts_as_interruption(self, text: str) -> bool:
        words = _WORD.findall(text)
        return len(words) >= self.policy.min_words and not self._is_backchannel(text)

    def _on_words(self, event: Words) -> list[TurnAction]:
        text = event.text.strip()
        if not text:
            return []
        self._quiet_since = event.t
        actions: list[TurnAction] = []
        if self.floor is Floor.PAUSED:
            self._pause_words_at = event.t
            if self._is_backchannel(text):
                if event.final:
                    return self._resume()  # "uh-huh": carry on
                return []
            if not self._counts_as_interruption(text):
                return []
            self._pause_words = True
            actions.append(Cancel(self.turn))
            self.floor = Floor.LISTENING
        elif self.floor is Floor.SPEAKING:
            if not (self._noise and self._may_barge_in() and self._counts_as_interruption(text)):
                return []  # heard over the agent without a barge-in: ignore
            # voice cannot barge in through the noise, so real words do: stop the reply now
            self._noise = False
            actions.append(Cancel(self.turn))
            self.floor = Floor.LISTENING
        elif self.floor is Floor.THINKING and self._last_user_text and self._counts_as_interruption(text):
            # the caller went on talking before the reply was audible: answer it all at once
            actions.append(Cancel(self.turn))
            self._heard_words = [self._last_user_text]
            self._last_user_text = ""
            self.floor = Floor.LISTENING
        if self.floor is not Floor.LISTENING:
            return actions
        if event.final:
            self._heard_words.append(text)
            self._final_at = event.t
            self._interim = ""
        else:
            self._interim = text
        if event.speech_final:
            actions += self._maybe_end_turn(event.t, signal=True)
        return actions

    def _maybe_end_turn(self, t: float, *, signal: bool) -> list[TurnAction]:
        if self.floor is not Floor.LISTENING or not self._heard_words:
            return []
        quiet = t - self._last_voice >= self.policy.end_of_turn_silence_s - 1e-9
        if not (signal or quiet):
            return []
        text = " ".join(self._heard_words)
        self._heard_words, self._interim = [], ""
        self._last_user_text = text
        self._reprompts = 0
        self.turn += 1
        self.floor = Floor.THINKING
        return [Respond(self.turn, text, final_at=self._final_at)]

    def _resume(self) -> list[TurnAction]:
        self.floor = Floor.SPEAKING
        return [Resume(self.turn)]

    def _on_reply_over(self, t: float) -> list[TurnAction]:
        self._quiet_since = t
        if self._closing or self.floor is Floor.ENDING:
            self.floor = Floor.ENDED
            return [HangUp(self._end_reason or "agent ended the call")]
        if self.floor in (Floor.SPEAKING, Floor.THINKING):
            self.floor = Floor.LISTENING
            self._last_user_text = ""
        return []

    def _on_tick(self, t: float) -> list[TurnAction]:
        policy = self.policy
        if self.floor is Floor.PAUSED and self._pause_expired(t):
            return self._resume_over_noise(t)  # in case no audio frames arrive to decide it
        if t - self.started_at >= policy.max_duration_s and not self._closing:
            self._closing = True
            self._end_reason = "maximum call duration"
            cancel: list[TurnAction] = [Cancel(self.turn)] if self.floor is not Floor.LISTENING else []
            return [*cancel, *self._speak(policy.closing_line)]
        idle = self.floor is Floor.LISTENING and not self._heard_words and self._voiced_run == 0.0
        if idle and t - self._quiet_since >= policy.idle_reprompt_s:
            self._quiet_since = t
            if self._reprompts >= policy.max_reprompts:
                self._closing = True
                self._end_reason = "caller silent"
                return self._speak(policy.idle_goodbye)
            self._reprompts += 1
            return self._speak(policy.reprompt)
        if self.floor is Floor.LISTENING and self._heard_words:
            return self._maybe_end_turn(t, signal=False)
        return []
