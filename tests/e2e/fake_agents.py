"""Small agents for driving the emulator through the real app (energy-based turn-taking)."""

from __future__ import annotations

import asyncio

import numpy as np

from app.pipeline.session import PCM, CallIO
from app.telephony import events as ev

RATE = 16000


def tone(seconds: float, freq: float, amplitude: int = 8000, rate: int = RATE) -> PCM:
    n = np.arange(int(seconds * rate))
    return (amplitude * np.sin(2 * np.pi * freq * n / rate)).astype(np.int16)


def voice_like(seconds: float, amplitude: int = 4000, rate: int = RATE) -> PCM:
    """A vowel-like sound (a 140 Hz voice with harmonics, vibrato and a 4 Hz syllable rhythm)
    that a VAD calls voiced in every frame, as it does speech (a pure tone is voiced only at
    its onset)."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(140 + 20 * np.sin(2 * np.pi * 5 * t)) / rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 12))
    return (amplitude * harmonics * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.int16)


class TurnAgent:
    """Greets, answers each caller utterance with a tone, and yields to barge-in."""

    def __init__(
        self,
        greeting_s: float = 1.0,
        reply_s: float = 1.5,
        *,
        stop_after_greeting: bool = False,
        quiet_frames: int = 10,
        barge_frames: int = 3,
    ) -> None:
        self.greeting_s = greeting_s
        self.reply_s = reply_s
        self.stop_after_greeting = stop_after_greeting
        self.quiet_frames = quiet_frames
        self.barge_frames = barge_frames
        self.replies = 0
        self.cleared = 0

    async def _say(self, call: CallIO, name: str, seconds: float, freq: float) -> None:
        await call.play(tone(seconds, freq), RATE)
        await call.flush(RATE)
        call.checkpoint(name)

    async def run(self, call: CallIO) -> None:
        speaking: str | None = "greeting"
        await self._say(call, "greeting", self.greeting_s, 600)
        loud = quiet = 0
        caller_turn = False
        while True:
            pcm = await call.audio_in.get()
            while not call.events.empty():
                event = call.events.get_nowait()
                if isinstance(event, ev.PlayedStreamEvent) and event.name == speaking:
                    speaking = None
                    if self.stop_after_greeting and event.name == "greeting":
                        call.stop()
            voiced = int(np.abs(pcm).max()) > 1000
            loud, quiet = (loud + 1, 0) if voiced else (0, quiet + 1)
            if speaking is not None and loud >= self.barge_frames:
                call.clear()
                self.cleared += 1
                speaking = None
            if loud >= self.barge_frames:
                caller_turn = True
            if caller_turn and quiet >= self.quiet_frames:
                caller_turn = False
                self.replies += 1
                speaking = f"reply-{self.replies}"
                await self._say(call, speaking, self.reply_s, 700)
            await asyncio.sleep(0)
