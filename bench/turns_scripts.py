"""The callers of ``bench.turns``: what each behaviour says and does, and the audio it says it with.

A behaviour is a list of ``Part``s: a line spoken by the offline TTS (Piper; eSpeak NG where
Piper is missing), a scripted pause, or a sound over the agent (``over``: said after the agent
has been audible that long during the step). Lines are synthesised once per run (``Voice``) and
trimmed to their first and last sample above ``TRIM_LEVEL``, so the script knows exactly where
each line ends; pauses are inserted as silence (``Silence``: exact to one 20 ms frame, the rest
of the line's last frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.simulator.caller import PCM, HangUp, InterruptAfter, Say, Silence, Step, WaitForAgent

RATE = 16000  # the fake Vobiz's recording rate: the callers' audio is made at it
TRIM_LEVEL = 300  # |int16| below this at either end of a synthesised line is its silence
OVER_AFTER_S = 1.5  # sounds over the agent start this long into its (long) answer
GREETING = "Hi, Sunrise Bakery."
LONG_ASK = "Tell me about your menu"
# ≥ 6 s of audio on every voice (ToneTTS: 0.25 s a word; Piper: about 2.5 words a second)
LONG_ANSWER = (
    "We bake sourdough, rye and seeded loaves every morning, croissants until noon, "
    "and cakes to order for birthdays and weddings, with soup at lunch time."
)
BACKCHANNEL_WORDS = ("uh-huh", "okay", "mm-hmm", "haan")


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    over: float | None = None  # said over the agent, once it has been audible this long


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class Noise:
    seconds: float  # a filtered noise burst (a cough, a click), said over the agent
    over: float = OVER_AFTER_S


Part = Line | Pause | Noise


@dataclass(frozen=True, slots=True)
class Behaviour:
    name: str  # "a", "b0.5", …
    title: str
    parts: tuple[Part, ...]
    kind: str  # "reply": answer after the caller's speech; "over": a sound over the agent's answer


def behaviours(rep: int) -> list[Behaviour]:
    """Every behaviour for repetition ``rep`` (backchannel word and noise length vary with it)."""
    word = BACKCHANNEL_WORDS[rep % len(BACKCHANNEL_WORDS)]
    noise_s = (0.15, 0.2, 0.25, 0.3)[rep % 4]
    book = (Line("I'd like to book a table for"), Line("four people tonight"))
    return [
        Behaviour("a", "complete question", (Line("What time do you open tomorrow?"),), "reply"),
        *(
            Behaviour(f"b{p:g}", f"unfinished phrase + {p:g} s pause", (book[0], Pause(p), book[1]), "reply")
            for p in (0.5, 1.0, 1.5)
        ),
        Behaviour(
            "c",
            "phone number in three chunks, 0.8 s pauses",
            (Line("my number is 98765"), Pause(0.8), Line("432"), Pause(0.8), Line("10")),
            "reply",
        ),
        Behaviour(
            "d", "um + 1.0 s pause + answer", (Line("um"), Pause(1.0), Line("I think tomorrow")), "reply"
        ),
        Behaviour("e", "backchannel over the agent", (Line(LONG_ASK), Line(word, over=OVER_AFTER_S)), "over"),
        Behaviour("f", "cough/noise burst over the agent", (Line(LONG_ASK), Noise(noise_s)), "over"),
        Behaviour(
            "g",
            "real interruption over the agent",
            (Line(LONG_ASK), Line("wait actually I want to change the time", over=OVER_AFTER_S)),
            "over",
        ),
    ]


def heard_lines(behaviour: Behaviour) -> list[str]:
    """What a perfect recogniser hears, in order (noise is heard as nothing)."""
    return [p.text for p in behaviour.parts if isinstance(p, Line)]


def trim(pcm: PCM, level: int = TRIM_LEVEL) -> PCM:
    """``pcm`` from its first to its last sample above ``level`` (all of it if none is)."""
    loud = np.nonzero(np.abs(pcm.astype(np.int32)) > level)[0]
    return pcm[loud[0] : loud[-1] + 1] if len(loud) else pcm


def noise_burst(seconds: float, seed: int = 0, rate: int = RATE) -> PCM:
    """A cough-like burst: white noise band-limited to about 300-3400 Hz, with a fast attack
    and an exponential decay; deterministic for a ``seed``."""
    n = int(seconds * rate)
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    shaped = np.fft.irfft(spectrum, n)
    t = np.arange(n) / rate
    envelope = np.minimum(1.0, t / 0.01) * np.exp(-t / (seconds / 2.5))
    shaped *= envelope
    shaped *= 14000 / max(1e-9, float(np.abs(shaped).max()))  # peak at 14000 (about -7 dBFS)
    return np.round(shaped).astype(np.int16)


class Voice:
    """The callers' voice, each line synthesised once per run (the offline TTS, 16 kHz, trimmed)."""

    def __init__(self) -> None:
        from app.simulator.audio_prep import caller_voice

        self._tts = caller_voice()
        self._cache: dict[str, PCM] = {}

    def line(self, text: str) -> PCM:
        if text not in self._cache:
            from app.audio.wavio import resample_clip

            speech = self._tts.synthesize(text)
            pcm = speech.pcm
            if speech.sample_rate != RATE:
                pcm = resample_clip(pcm, speech.sample_rate, RATE)
            self._cache[text] = trim(pcm)
        return self._cache[text]


def script(behaviour: Behaviour, voice: Voice, seed: int = 0) -> tuple[list[Step], dict[int, PCM]]:
    """The fake Vobiz's caller steps and their audio: wait for the greeting, the parts, then
    wait for the agent to finish (at most ``wait_s``) and hang up."""
    steps: list[Step] = [WaitForAgent(timeout=15.0, quiet=0.5)]
    audio: dict[int, PCM] = {}
    for part in behaviour.parts:
        match part:
            case Pause(seconds=seconds):
                steps.append(Silence(seconds))
            case Line(text=text, over=None):
                audio[len(steps)] = voice.line(text)
                steps.append(Say(text, audio=audio[len(steps)]))
            case Line(text=text, over=float() as over):
                pcm = voice.line(text)
                audio[len(steps)] = pcm
                steps.append(InterruptAfter(over, Say(text, audio=pcm), timeout=15.0))
            case Noise(seconds=seconds, over=over):
                pcm = noise_burst(seconds, seed)
                audio[len(steps)] = pcm
                steps.append(InterruptAfter(over, Say("(noise)", audio=pcm), timeout=15.0))
    steps += [WaitForAgent(timeout=15.0, quiet=1.0), HangUp()]
    return steps, audio
