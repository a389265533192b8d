"""What the streaming recognisers' contract tests share: test audio, sending it the way the call
pipeline does (20 ms frames), and reading a stream's events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from app.providers.base import PCM, STTEvent, STTStream, Transcript

RATE = 16000


def loud(seconds: float) -> PCM:
    """A 200 Hz square wave at amplitude 5000: every 10 ms frame is loud."""
    t = np.arange(round(seconds * RATE)) / RATE
    return np.where(np.sin(2 * np.pi * 200 * t) >= 0, 5000, -5000).astype(np.int16)


def quiet(seconds: float) -> PCM:
    return np.zeros(round(seconds * RATE), dtype=np.int16)


async def send_all(stream: STTStream, *parts: PCM) -> None:
    """Send ``parts`` as 20 ms frames, the way the call pipeline does."""
    audio = np.concatenate(parts)
    for at in range(0, len(audio), RATE // 50):
        await stream.send(audio[at : at + RATE // 50])


async def collect(stream: STTStream) -> list[STTEvent]:
    return [event async for event in stream.events()]


async def run(stream: STTStream, *parts: PCM) -> list[STTEvent]:
    """Send the audio, end the input (which waits for the last results), return every event."""
    async with asyncio.TaskGroup() as tg:
        reader = tg.create_task(collect(stream))
        await send_all(stream, *parts)
        await stream.end_input()
    return reader.result()


async def until(condition: Callable[[], bool]) -> None:
    """Wait (up to 10 s: a loaded machine) for a state reached in another thread or task."""
    deadline = asyncio.get_running_loop().time() + 10.0
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def finals(events: list[STTEvent]) -> list[Transcript]:
    return [e for e in events if isinstance(e, Transcript) and e.is_final]
