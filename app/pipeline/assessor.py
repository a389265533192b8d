"""``TurnAssessor``: the caller's last seconds of audio, judged by the end-of-turn audio model.

The turn-taker asks (``Assess``) when the caller's words leave the end of the turn unsure; the
model's probability comes back as ``Assessed``. The model runs off the event loop (its own
thread, see the provider); here only the caller's frames are kept (references to the frames
the call already has, at most ``WINDOW_S``) and joined when asked.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

import numpy as np

from app.clock import Clock
from app.pipeline import turns as tt
from app.providers.base import PCM, TurnModel

log = logging.getLogger("app.conversation")

WINDOW_S = 8.0  # the model hears the last 8 s
RATE = 16000  # the model's sample rate, the pipeline's


class TurnAssessor:
    RATE = RATE

    def __init__(
        self,
        model: TurnModel,
        clock: Clock,
        answer: Callable[[tt.Assessed], None],
        call_id: str,
        frame_s: float = 0.02,
    ) -> None:
        self._model, self._clock, self._answer, self._call_id = model, clock, answer, call_id
        self.frames: deque[PCM] = deque(maxlen=round(WINDOW_S / frame_s))
        self.asked = self.unanswered = 0

    def push(self, pcm: PCM) -> None:
        """One frame of the caller's audio (16 kHz int16), on the per-frame path: an append."""
        self.frames.append(pcm)

    def assess(self, seq: int, tg: asyncio.TaskGroup) -> None:
        self.asked += 1
        tg.create_task(self._run(seq), name=f"conv-{self._call_id}-assess-{seq}")

    async def _run(self, seq: int) -> None:
        audio = np.concatenate(self.frames) if self.frames else np.zeros(0, dtype=np.int16)
        try:
            probability = await self._model.complete_probability(audio)
        except Exception as exc:  # the model's contract is None on failure; a bug must not end the call
            log.warning("end-of-turn model failed: %s", type(exc).__name__, extra={"call_id": self._call_id})
            probability = None
        if probability is None:
            self.unanswered += 1
        self._answer(tt.Assessed(self._clock.now(), seq, probability))
