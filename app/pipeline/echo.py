"""A trivial agent: says what it hears, 20 ms at a time. Stands in until the real pipeline."""

from __future__ import annotations

from app.pipeline.session import CallIO


class EchoAgent:
    """Plays each inbound frame straight back, with a checkpoint every second of audio."""

    def __init__(self, checkpoint_every: int = 50) -> None:
        self._every = checkpoint_every

    async def run(self, call: CallIO) -> None:
        frames = 0
        while True:
            pcm = await call.audio_in.get()
            await call.play(pcm, call.pipeline_rate)
            frames += 1
            if frames % self._every == 0:
                call.checkpoint(f"echo-{frames // self._every}")
