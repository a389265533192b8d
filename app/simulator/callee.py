"""Who answers an outbound call on the fake Vobiz (Make Call): a person, a busy line, no answer,
or an answering machine (a greeting, then a beep, then silence while it records).

``FakeVobiz.callees`` maps a number's digits to a :class:`Callee`; each attempt to the number
takes the next of its ``answers`` (the last repeats), so "busy, then a person" is a retried call
that gets through. A machine's greeting and beep are synthetic audio (a voiced buzz, a 1 kHz tone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from app.simulator.caller import HangUp, Say, Silence, Step, WaitForAgent
from app.simulator.recording import PCM

Answer = Literal["person", "busy", "no-answer", "machine"]
BEEP_TEXT = "(beep)"
GREETING_TEXT = "(voicemail greeting)"

#: what the hang-up of an unanswered call says (PROTOCOL.md §1.1 ``CallStatus``; cause names as
#: carriers report them)
UNANSWERED = {"busy": ("busy", "USER_BUSY", 3010), "no-answer": ("no-answer", "NO_ANSWER", 3000)}


@dataclass(frozen=True, slots=True)
class Callee:
    answers: tuple[Answer, ...] = ("person",)
    steps: tuple[Step, ...] = (WaitForAgent(timeout=10.0), HangUp())  # a person's script
    ring_s: float = 2.0  # seconds of ringing before busy / no-answer ends the attempt
    greeting_s: float = 2.0  # a machine's greeting
    beep_s: float = 0.5
    record_s: float = 30.0  # a machine records this long after its beep, then hangs up
    detect_after_s: float = 1.5  # Vobiz's detection verdict comes this long after the answer
    attempts: list[int] = field(default_factory=lambda: [0], compare=False)  # mutable counter

    def next_answer(self) -> Answer:
        index = self.attempts[0]
        self.attempts[0] += 1
        return self.answers[min(index, len(self.answers) - 1)]


def machine_script(callee: Callee, rate: int) -> tuple[list[Step], dict[int, PCM]]:
    """A machine's side of the call: greeting, beep, silence (recording), hang-up."""
    t = np.arange(int(callee.greeting_s * rate)) / rate
    # a buzz with a syllable-rate envelope: voiced enough for a VAD, unlike any word
    greeting = 0.3 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    tb = np.arange(int(callee.beep_s * rate)) / rate
    beep = 0.5 * np.sin(2 * np.pi * 1000 * tb)
    steps: list[Step] = [Say(GREETING_TEXT), Say(BEEP_TEXT), Silence(callee.record_s), HangUp()]
    audio = {0: (greeting * 32767).astype(np.int16), 1: (beep * 32767).astype(np.int16)}
    return steps, audio
