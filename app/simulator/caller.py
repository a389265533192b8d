"""The simulated caller: a script of steps, run one 20 ms tick at a time (pure, no I/O).

Script lines (one step each; ``#`` starts a comment)::

    say Hello, I'd like to book a table      # spoken by the offline TTS
    say-wav recordings/question.wav          # a WAV file (any rate; converted)
    wait                                     # until the agent has spoken and gone quiet
    wait 10                                  # ... giving up after 10 s
    interrupt 1.2 Sorry, one more thing      # talk over the agent after 1.2 s of its speech
    silence 20                               # say nothing for 20 s
    press 1234#                              # phone keys (0-9 * # A-D, one word), 0.25 s apart
    hangup

A script that does not end with ``hangup`` waits for the agent to finish, then hangs up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

PCM = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class Say:
    text: str = ""  # what is said (the transcript); spoken by TTS unless ``wav``/``audio`` given
    wav: Path | None = None
    audio: PCM | None = field(default=None, compare=False)  # ready audio at the recording rate


@dataclass(frozen=True, slots=True)
class WaitForAgent:
    timeout: float = 30.0  # seconds
    quiet: float = 0.8  # seconds of agent silence that count as "stopped"


@dataclass(frozen=True, slots=True)
class InterruptAfter:
    seconds: float  # of agent speech heard during this step
    say: Say
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class Silence:
    seconds: float


@dataclass(frozen=True, slots=True)
class HangUp:
    pass


@dataclass(frozen=True, slots=True)
class Press:
    keys: str  # each sent as one ``dtmf`` frame, as Vobiz does
    interval: float = 0.25  # seconds between keys


KEYS = frozenset("0123456789*#ABCD")

Step = Say | WaitForAgent | InterruptAfter | Silence | HangUp | Press


class ScriptError(ValueError):
    pass


def parse_step(line: str) -> Step:
    verb, _, rest = line.strip().partition(" ")
    rest = rest.strip()
    try:
        match verb.lower().rstrip(":"):
            case "say":
                if not rest:
                    raise ScriptError("'say' needs the words to say")
                return Say(text=rest)
            case "say-wav":
                if not rest:
                    raise ScriptError("'say-wav' needs the path of a WAV file")
                return Say(text=f"({Path(rest).name})", wav=Path(rest))
            case "wait":
                return WaitForAgent(timeout=float(rest)) if rest else WaitForAgent()
            case "interrupt":
                seconds, _, words = rest.partition(" ")
                if not words.strip():
                    raise ScriptError("'interrupt' needs seconds and the words to say")
                return InterruptAfter(float(seconds), Say(text=words.strip()))
            case "silence":
                return Silence(float(rest))
            case "hangup" | "hang-up":
                return HangUp()
            case "press":
                keys = rest.upper()
                if not keys or not KEYS.issuperset(keys):
                    raise ScriptError("'press' needs phone keys: 0-9, *, #, A-D (e.g. press 1234#)")
                return Press(keys)
    except ValueError as exc:
        if isinstance(exc, ScriptError):
            raise
        raise ScriptError(f"bad number in {line.strip()!r}") from None
    raise ScriptError(f"unknown step {verb!r} (say, say-wav, wait, interrupt, silence, press, hangup)")


def _without_comment(raw: str) -> str:
    """The line before its ``#`` comment; on a ``press`` line ``#`` is a key, and a comment may
    follow the keys (one word) after a space."""
    verb, _, rest = raw.strip().partition(" ")
    if verb.lower() == "press":
        keys, _, tail = rest.strip().partition(" ")
        tail = tail.strip()
        return f"{verb} {keys}".strip() if not tail or tail.startswith("#") else f"{verb} {keys} {tail}"
    return raw.split("#", 1)[0].strip()


def parse_script(text: str) -> list[Step]:
    steps = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = _without_comment(raw)
        if line:
            try:
                steps.append(parse_step(line))
            except ScriptError as exc:
                raise ScriptError(f"line {number}: {exc}") from None
    return steps


@dataclass(frozen=True, slots=True)
class CallerTick:
    pcm: PCM  # this tick's caller audio (silence when not talking)
    started: Say | None = None  # an utterance began this tick
    ended: Say | None = None  # an utterance finished this tick
    hangup: bool = False
    note: str = ""  # e.g. a wait that timed out
    key: str = ""  # a phone key pressed this tick


class CallerRunner:
    """Steps through the script; ``tick`` is called once per frame with what the caller hears."""

    def __init__(self, steps: list[Step], audio: dict[int, PCM], frame: int) -> None:
        """``audio`` maps a step index (or the Say inside an InterruptAfter) to its samples."""
        if not steps or not isinstance(steps[-1], HangUp):
            steps = [*steps, WaitForAgent(), HangUp()]
        self._steps = steps
        self._audio = audio
        self._frame = frame
        self._silence = np.zeros(frame, np.int16)
        self._index = 0
        self._ticks_in_step = 0
        self._speaking: tuple[Say, PCM, int] | None = None
        self._heard = 0  # ticks of agent audio during the current step
        self._quiet = 0  # consecutive quiet ticks after agent audio
        self._pressed = 0  # keys of the current ``Press`` step sent
        self.finished = False

    @property
    def step(self) -> Step | None:
        return self._steps[self._index] if self._index < len(self._steps) else None

    def _next_step(self) -> None:
        self._index += 1
        self._ticks_in_step = self._heard = self._quiet = self._pressed = 0

    def _start_speaking(self, say: Say) -> CallerTick:
        pcm = self._audio[self._index]
        self._speaking = (say, pcm, 0)
        tick = self._speak()
        return CallerTick(tick.pcm, started=say, ended=tick.ended, hangup=False)

    def _speak(self) -> CallerTick:
        assert self._speaking is not None
        say, pcm, pos = self._speaking
        chunk = pcm[pos : pos + self._frame]
        if len(chunk) < self._frame:
            chunk = np.concatenate([chunk, np.zeros(self._frame - len(chunk), np.int16)])
        pos += self._frame
        if pos >= len(pcm):
            self._speaking = None
            self._next_step()
            return CallerTick(chunk, ended=say)
        self._speaking = (say, pcm, pos)
        return CallerTick(chunk)

    def tick(self, agent_audible: bool, tick_seconds: float) -> CallerTick:
        if self._speaking is not None:
            return self._speak()
        step = self.step
        self._ticks_in_step += 1
        elapsed = self._ticks_in_step * tick_seconds
        if agent_audible:
            self._heard += 1
            self._quiet = 0
        else:
            self._quiet += 1
        match step:
            case None | HangUp():
                self.finished = True
                return CallerTick(self._silence, hangup=True)
            case Say():
                return self._start_speaking(step)
            case Silence(seconds=seconds):
                if elapsed >= seconds - 1e-9:
                    self._next_step()
            case Press(keys=keys, interval=interval):
                if elapsed - tick_seconds >= self._pressed * interval - 1e-9:  # the first at once
                    key = keys[self._pressed]
                    self._pressed += 1
                    if self._pressed == len(keys):
                        self._next_step()
                    return CallerTick(self._silence, key=key)
            case WaitForAgent(timeout=timeout, quiet=quiet):
                if self._heard and self._quiet * tick_seconds >= quiet - 1e-9:
                    self._next_step()
                elif elapsed >= timeout - 1e-9:
                    self._next_step()
                    return CallerTick(self._silence, note=f"wait timed out after {timeout:g} s")
            case InterruptAfter(seconds=seconds, say=say, timeout=timeout):
                if self._heard * tick_seconds >= seconds - 1e-9:
                    return self._start_speaking(say)
                if elapsed >= timeout - 1e-9:
                    self._next_step()
                    return CallerTick(self._silence, note=f"agent never spoke for {seconds:g} s")
        return CallerTick(self._silence)


def utterances(steps: list[Step]) -> dict[int, Say]:
    """The Say of each step that speaks (directly or inside an InterruptAfter)."""
    out: dict[int, Say] = {}
    for index, step in enumerate(steps):
        if isinstance(step, Say):
            out[index] = step
        elif isinstance(step, InterruptAfter):
            out[index] = step.say
    return out
