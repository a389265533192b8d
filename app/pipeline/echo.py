"""A trivial agent: says what it hears, 20 ms at a time. Stands in until the real pipeline."""

from __future__ import annotations

import asyncio

from app.pipeline.session import CallIO


class EchoAgent:
    """Plays each inbound frame straight back, with a checkpoint every second of audio.

    It also reads the call's control events (the acks of its checkpoints): the queue is
    bounded, and a call whose agent never reads it would overflow it after a few minutes."""

    def __init__(self, checkpoint_every: int = 50) -> None:
        self._every = checkpoint_every

    async def run(self, call: CallIO) -> None:
        name = call.start.stream_id[:16]
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._echo(call), name=f"echo-{name}-audio")
            tg.create_task(self._drain(call), name=f"echo-{name}-events")

    async def _echo(self, call: CallIO) -> None:
        frames = 0
        while True:
            pcm = await call.audio_in.get()
            await call.play(pcm, call.pipeline_rate)
            frames += 1
            if frames % self._every == 0:
                call.checkpoint(f"echo-{frames // self._every}")

    async def _drain(self, call: CallIO) -> None:
        while True:
            await call.events.get()  # nothing to act on: the echo has no turns to finish
