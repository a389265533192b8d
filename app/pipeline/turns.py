"""``TurnTaker``: who has the floor. A pure state machine: events in, actions out.

It is the ONLY owner of "the agent is speaking". Time arrives inside events (seconds on the
call's clock). The policy, "stop fast, decide later":

- While the agent is audible, a voiced run of ``min_speech_s`` silences it at once
  (``Silence``: clearAudio, keep the unplayed audio). Words decide what it was: real words
  (not a backchannel, at least ``min_words``) cancel the reply and the caller keeps the
  floor; a backchannel resumes from the cut at once. No words: with a recogniser that gives
  interim words, ``resume_after_s`` after the sound stopped; with one that does not (Whisper),
  as soon as it reports the sound held no words (``UtteranceEnded``), at most
  ``false_interruption_s``. Real words that arrive within ``late_words_s`` of such a resume
  still cancel it. Voiced noise that never becomes words (a fan, traffic) resumes after
  ``max_pause_s``; barge-in by voice alone then waits until that noise has stopped, while
  words still interrupt.
- The caller's turn ends by meaning, not by a fixed silence (``app.pipeline.end_of_turn``):
  after ``eot.decide_after_s`` of silence the words are judged complete, unsure or incomplete
  (an audio model settles "unsure", ``Assess`` → ``Assessed``), and the turn ends after that
  verdict's silence, or on the recogniser's end of speech unless the words trail off. From
  ``decide_after_s`` on, a reply is prepared unheard (``Respond(held=True)``); the end of the
  turn commits it (``Commit``), and new words discard it (``Cancel``).
- Idle: ``idle_reprompt_s`` of silence on both sides → a reprompt; after ``max_reprompts`` a
  goodbye and hang-up. ``max_duration_s`` → a closing line and hang-up; ``Shutdown`` (the
  process is going away) → ``shutdown_line`` and hang-up (reason ``shutdown``).
- Keys (``app.pipeline.keypad``): a key cancels the reply at once (``KeyPressed``), and the keys
  are a turn (``Keyed``); during a digit collection (``Collecting``) speech is not listened to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.pipeline.end_of_turn import Verdict, resolve, same_words, text_verdict
from app.pipeline.keypad import MenuChoice
from app.pipeline.language_words import words
from app.pipeline.turn_events import (
    BACKCHANNELS,
    Assess,
    Assessed,
    AudioDone,
    AudioStarted,
    CallOver,
    Cancel,
    Collecting,
    Commit,
    EndRequested,
    Floor,
    HangUp,
    Keyed,
    KeyPressed,
    ReplyEmpty,
    Respond,
    Resume,
    Shutdown,
    Silence,
    Speak,
    Tick,
    TurnAction,
    TurnEvent,
    TurnPolicy,
    UtteranceEnded,
    Voice,
    Words,
)

__all__ = [
    "BACKCHANNELS", "Assess", "Assessed", "AudioDone", "AudioStarted", "CallOver", "Cancel", "Collecting",
    "Commit", "EndRequested", "Floor", "HangUp", "KeyPressed", "Keyed", "ReplyEmpty", "Respond", "Resume",
    "Shutdown", "Silence", "Speak", "Tick", "TurnAction", "TurnEvent", "TurnPolicy", "TurnTaker",
    "UtteranceEnded", "Voice", "Words",
]  # fmt: skip


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
    _resumed_at: float | None = None  # when the agent last resumed after a cut
    _noise: bool = False  # resumed over wordless noise: voice alone cannot barge in until it stops
    _final_at: float | None = None  # when the last final words of this turn arrived
    _quiet_since: float = 0.0  # when both sides last went quiet
    _reprompts: int = 0
    _last_user_text: str = ""
    _end_reason: str = ""
    _closing: bool = False
    # this pause of the caller's: the recogniser ended the speech; the audio model's question
    _signalled: bool = False
    _seq: int = 0
    _asked: int = 0  # the ``Assess`` of this pause (0: not asked)
    _answered: bool = False
    _asked_after: float = 0.0  # seconds of silence when it was last asked
    _probability: float | None = None
    _held: int = 0  # the reply prepared unheard (0: none) and the words it answers
    _held_text: str = ""
    _judged: tuple[str, Verdict] = ("", Verdict.UNSURE)  # the last words judged, and the verdict
    _collecting: bool = False  # a digit collection runs: speech neither barges in nor makes a turn
    _keyed: Keyed | None = None  # keys that came while the agent could not be cut: answered after

    @property
    def closing(self) -> bool:
        """The agent is ending the call: it hangs up once its current reply has been heard."""
        return self._closing

    @property
    def agent_speaking(self) -> bool:
        """True while the caller can hear (or is about to hear) the agent."""
        return self.floor in (Floor.SPEAKING, Floor.ENDING)

    @property
    def held(self) -> int:
        """The turn of the reply being prepared unheard (0: none)."""
        return self._held

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
                if self.floor is Floor.PAUSED and self._wordless_burst_over():
                    return self._resume(t)  # the recogniser found no words in the sound
                self._signalled = self.policy.interim_words  # see ``_on_words``
                return self._maybe_end_turn(t)
            case Assessed(t=t, seq=seq, complete=complete) if seq == self._asked and not self._answered:
                self._answered, self._probability = True, complete
                return self._maybe_end_turn(t)
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
            case Shutdown() if not self._closing:
                return self._close("service shutting down", self.policy.shutdown_line)
            case KeyPressed(t=t):
                return self._on_key(t)
            case Keyed():
                if self._closing:
                    return []
                if self.floor is not Floor.LISTENING:
                    self._keyed = event  # the agent could not be cut: the keys are answered after
                    return []
                return self._key_turn(event)
            case Collecting(t=t, active=active):
                self._collecting, self._quiet_since = active, t
                self._heard_words, self._interim = [], ""  # what was said meanwhile is no turn
                actions = self._drop_held()
                if active and self.floor is Floor.PAUSED:
                    actions += self._resume(t)
                return actions
            case CallOver():
                dropped = self._drop_held()
                self.floor = Floor.ENDED
                if not self._heard_words:
                    return dropped
                text = " ".join(self._heard_words)
                self._heard_words, self._interim = [], ""
                self.turn += 1
                return [*dropped, Respond(self.turn, text, final_at=self._final_at)]
        return []

    # ── internals ──

    def _speak(self, text: str) -> list[TurnAction]:
        self.turn += 1
        self.floor = Floor.THINKING
        return [Speak(self.turn, text)]

    def _drop_held(self) -> list[TurnAction]:
        """Discard the reply prepared unheard, if any."""
        if not self._held:
            return []
        turn, self._held, self._held_text = self._held, 0, ""
        return [Cancel(turn)]

    def _on_voice(self, event: Voice) -> list[TurnAction]:
        t = event.t
        if self.floor is Floor.PAUSED and self._pause_expired(t):
            return self._resume_over_noise(t)
        if not event.voiced:
            self._voiced_run = 0.0
            waited = t - max(self._last_voice, self._paused_at)
            if self._noise and t - self._last_voice >= self.policy.false_interruption_s - 1e-9:
                self._noise = False
            if self.floor is Floor.PAUSED and not self._pause_words:
                policy = self.policy
                patience = policy.resume_after_s if policy.interim_words else policy.false_interruption_s
                if waited >= patience - 1e-9:
                    return self._resume(t)
            return self._maybe_end_turn(t)
        self._voiced_run += 0.02
        self._last_voice = self._quiet_since = t
        if self._asked or self._signalled:  # the caller goes on: this pause's judgement is void
            self._signalled, self._asked, self._answered, self._probability = False, 0, False, None
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
        first = self.policy.greeting_interruptible or self.turn > 1
        return first and not self._closing and not self._collecting

    def _on_key(self, t: float) -> list[TurnAction]:
        """A key takes the floor: the reply in flight is cancelled (no pause to decide: a key is
        never a cough), and words the reply answered join the keys' turn."""
        self._quiet_since, self._reprompts = t, 0
        actions = self._drop_held()
        if self.floor in (Floor.SPEAKING, Floor.THINKING, Floor.PAUSED) and self._may_barge_in():
            if self.floor is Floor.THINKING and self._last_user_text:
                self._heard_words = [self._last_user_text, *self._heard_words]
            self._noise, self._resumed_at, self._last_user_text = False, None, ""
            if self.floor is Floor.SPEAKING:
                actions.append(Silence(self.turn))  # a barge-in, counted as one
            self.floor = Floor.LISTENING
            actions.append(Cancel(self.turn))
        return actions

    def _key_turn(self, keyed: Keyed) -> list[TurnAction]:
        """The caller's turn is their keys (after any final words they said first)."""
        self._final_at = keyed.t
        return self._end_turn(" ".join([*self._heard_words, keyed.text]), keyed.menu, keyed=True)

    def _pause_expired(self, t: float) -> bool:
        """Paused ``max_pause_s`` with no words since the pause (or since the last words)."""
        if self.policy.max_pause_s is None:
            return False
        since = max(self._paused_at, self._pause_words_at)
        return t - since >= self.policy.max_pause_s - 1e-9

    def _wordless_burst_over(self) -> bool:
        """Paused, the sound has stopped, and a recogniser without interim words found no real
        words in it (its ``UtteranceEnded`` follows its words)."""
        return not self.policy.interim_words and not self._pause_words and self._voiced_run == 0.0

    def _resume_over_noise(self, t: float) -> list[TurnAction]:
        # loud but wordless: talk on, and while the noise lasts do not let it cut again at once
        self._noise = t - self._last_voice < self.policy.false_interruption_s
        return self._resume(t)

    def _is_backchannel(self, text: str) -> bool:
        said = words(text)
        return bool(said) and all(w in self.policy.backchannels for w in said)

    def _counts_as_interruption(self, text: str) -> bool:
        return len(words(text)) >= self.policy.min_words and not self._is_backchannel(text)

    def _on_words(self, event: Words) -> list[TurnAction]:
        text = event.text.strip()
        if not text or self._collecting:
            return []
        self._quiet_since = event.t
        actions: list[TurnAction] = []
        if self.floor is Floor.PAUSED:
            self._pause_words_at = event.t
            if self._is_backchannel(text):
                if event.final:
                    return self._resume(event.t)  # "uh-huh": carry on
                return []
            if not self._counts_as_interruption(text):
                return []
            self._pause_words = True
            actions.append(Cancel(self.turn))
            self.floor = Floor.LISTENING
        elif self.floor is Floor.SPEAKING:
            late = self._resumed_at is not None and event.t - self._resumed_at <= self.policy.late_words_s
            if not ((self._noise or late) and self._may_barge_in() and self._counts_as_interruption(text)):
                return []  # heard over the agent without a barge-in: ignore
            # real words in a sound taken for noise (or that voice could not cut): stop the reply
            self._noise, self._resumed_at = False, None
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
        if self._held:
            said = self._said()
            if same_words(self._held_text, said):
                self._held_text = said  # the same words (a final for its interim): still the answer
            else:
                actions += self._drop_held()  # the caller went on: the prepared reply answers too little
        if event.speech_final:
            # a streaming recogniser's endpoint is its judgement that speech ended; Whisper's
            # is only the end of a stretch of speech (0.2 s of silence), so silence decides there
            self._signalled = self.policy.interim_words
        actions += self._maybe_end_turn(event.t)
        return actions

    def _said(self) -> str:
        """The caller's words this turn: the final ones, then the interim tail."""
        final = " ".join(self._heard_words)
        return f"{final} {self._interim}".strip() if self._interim else final

    def _maybe_end_turn(self, t: float) -> list[TurnAction]:
        """Judge the caller's words once they have paused; end the turn, or prepare a reply."""
        if self.floor is not Floor.LISTENING or not (self._heard_words or self._interim):
            return []
        if self._voiced_run > 0.0 and not self._signalled:
            return []  # the caller is talking (unless the recogniser heard the end of speech)
        text = self._said()
        eot, silence = self.policy.eot, t - self._last_voice
        if silence < eot.decide_after_s - 1e-9 and not self._signalled:
            return []
        actions: list[TurnAction] = []
        if self._judged[0] != text:  # judged once per wording, not on every quiet frame
            self._judged = (text, text_verdict(text, eot.languages, full_stop=self.policy.interim_words))
        verdict = self._judged[1]
        pending = False  # the audio model has been asked and has not answered
        if verdict is Verdict.UNSURE and self.policy.audio_model:
            doubted = (
                self._answered and self._probability is not None and self._probability < eot.model_threshold
            )
            if not self._asked or (doubted and silence >= self._asked_after + eot.reassess_s - 1e-9):
                # asked once per pause, and again while it hears "not finished": the model grows
                # surer of an end as the silence lengthens
                self._seq += 1
                self._asked, self._answered, self._asked_after = self._seq, False, silence
                actions.append(Assess(self._seq))
            pending = not self._answered
            verdict = resolve(verdict, self._probability, eot.model_threshold)
            # the model's "not finished" is less sure than words that trail off: a shorter wait
            wait = eot.model_incomplete_s if verdict is Verdict.INCOMPLETE else eot.wait(verdict)
        else:
            wait = eot.wait(verdict)
        waited = silence >= wait - 1e-9
        over = waited or (self._signalled and verdict is not Verdict.INCOMPLETE and not pending)
        if over and not self._interim:  # the turn ends on final words only
            return actions + self._end_turn(text)
        if eot.preemptive and verdict is not Verdict.INCOMPLETE and text != self._held_text:
            actions += self._drop_held()
            self.turn += 1
            self._held, self._held_text = self.turn, text
            actions.append(Respond(self.turn, text, final_at=self._final_at, held=True))
        return actions

    def _end_turn(self, text: str, menu: MenuChoice | None = None, keyed: bool = False) -> list[TurnAction]:
        self._heard_words, self._interim = [], ""
        self._last_user_text = text
        self._reprompts = 0
        self._signalled, self._asked, self._answered, self._probability = False, 0, False, None
        self.floor = Floor.THINKING
        if self._held and not keyed and same_words(self._held_text, text):
            turn, self._held, self._held_text = self._held, 0, ""
            return [Commit(turn, final_at=self._final_at)]
        actions = self._drop_held()
        self.turn += 1
        return [*actions, Respond(self.turn, text, final_at=self._final_at, keyed=keyed, menu=menu)]

    def _resume(self, t: float) -> list[TurnAction]:
        self.floor = Floor.SPEAKING
        self._resumed_at = t
        return [Resume(self.turn)]

    def _on_reply_over(self, t: float) -> list[TurnAction]:
        self._quiet_since = t
        if self._closing or self.floor is Floor.ENDING:
            self.floor = Floor.ENDED
            return [HangUp(self._end_reason or "agent ended the call")]
        if self.floor in (Floor.SPEAKING, Floor.THINKING):
            self.floor = Floor.LISTENING
            self._last_user_text = ""
        keyed, self._keyed = self._keyed, None
        return self._key_turn(keyed) if keyed is not None and self.floor is Floor.LISTENING else []

    def _close(self, reason: str, line: str) -> list[TurnAction]:
        """End the call now: whatever is in flight is cut, ``line`` is said, then ``HangUp``."""
        self._closing = True
        self._end_reason = reason
        cancel: list[TurnAction] = [Cancel(self.turn)] if self.floor is not Floor.LISTENING else []
        return [*self._drop_held(), *cancel, *self._speak(line)]

    def _on_tick(self, t: float) -> list[TurnAction]:
        policy = self.policy
        if self.floor is Floor.PAUSED and self._pause_expired(t):
            return self._resume_over_noise(t)  # in case no audio frames arrive to decide it
        if t - self.started_at >= policy.max_duration_s and not self._closing:
            return self._close("maximum call duration", policy.closing_line)
        idle = self.floor is Floor.LISTENING and not self._heard_words and self._voiced_run == 0.0
        if idle and t - self._quiet_since >= policy.idle_reprompt_s:
            self._quiet_since = t
            if self._reprompts >= policy.max_reprompts:
                self._closing = True
                self._end_reason = "caller silent"
                return self._speak(policy.idle_goodbye)
            self._reprompts += 1
            return self._speak(policy.reprompt)
        if self.floor is Floor.LISTENING and (self._heard_words or self._interim):
            return self._maybe_end_turn(t)
        return []
