"""The failover wrappers with small in-process providers (the real SDKs are in tests/e2e/test_failover.py):
what the caller's audio, the voice's audio and the call's record look like across a switch."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager

import numpy as np
import pytest

from app.clock import FakeClock
from app.providers.base import (
    PCM,
    STTCapabilities,
    STTEvent,
    STTOptions,
    Transcript,
    TTSOptions,
)
from app.providers.errors import ProviderError
from app.providers.failover import Breakers, CallFailovers, FailoverTTS
from app.providers.failover_stt import FailoverSTT
from app.providers.streaming import owned


class Voice:
    """Speaks ``chunks`` chunks of a constant per sentence, or fails after ``fail_after`` of them."""

    def __init__(self, name: str, rate: int, value: int, fail_after: int | None = None) -> None:
        self.name, self.sample_rate, self.value, self.fail_after = name, rate, value, fail_after
        self.asked: list[tuple[str, TTSOptions]] = []

    async def synthesize(self, text: str, options: TTSOptions) -> AsyncGenerator[PCM, None]:
        self.asked.append((text, options))
        for n in range(3):
            if self.fail_after is not None and n >= self.fail_after:
                raise ProviderError(self.name, "speak: HTTP 503", retryable=True)
            yield np.full(self.sample_rate // 50, self.value, np.int16)


async def spoken(voice: FailoverTTS, text: str) -> list[PCM]:
    return [chunk async for chunk in voice.synthesize(text, TTSOptions(voice="aura-2-thalia-en", speed=1.1))]


async def test_a_voice_that_breaks_off_is_replaced_for_the_sentence_and_the_call() -> None:
    clock = FakeClock()
    primary, fallback = Voice("deepgram", 16000, 100, fail_after=1), Voice("openai", 24000, 200)
    voice = FailoverTTS([("deepgram", primary), ("openai", fallback)], Breakers(), clock)
    calls = CallFailovers().enter(clock)
    chunks = await spoken(voice, "We open at nine.")
    assert voice.sample_rate == 16000
    assert chunks[0].tolist() == [100] * 320  # what the caller heard before the break
    assert sum(len(c) for c in chunks[1:]) == pytest.approx(3 * 320, abs=40)  # 24 kHz resampled to 16 kHz
    assert fallback.asked == [
        ("We open at nine.", TTSOptions(speed=1.1))
    ]  # its own voice, the persona's speed
    assert [(f.stage, f.from_, f.to, f.reason) for f in calls.events] == [
        ("tts", "deepgram", "openai", "speak: HTTP 503")
    ]
    await spoken(voice, "Anything else?")
    assert [text for text, _ in primary.asked] == ["We open at nine."]  # the switch sticks within the call
    assert len(calls.events) == 1


async def test_an_open_breaker_sends_a_new_call_straight_to_the_fallback() -> None:
    clock = FakeClock()
    primary, fallback = Voice("deepgram", 16000, 100, fail_after=0), Voice("offline", 16000, 200)
    voice = FailoverTTS([("deepgram", primary), ("offline", fallback)], Breakers(2, 30.0), clock)
    for _ in range(2):  # two calls fail over: the breaker opens
        CallFailovers().enter(clock)
        await spoken(voice, "Hello!")
    assert len(primary.asked) == 2
    calls = CallFailovers().enter(clock)
    await spoken(voice, "Hello!")
    assert len(primary.asked) == 2  # not asked
    assert [(f.from_, f.to, f.reason) for f in calls.events] == [("deepgram", "offline", "breaker-open")]
    await clock.advance(30.0)
    CallFailovers().enter(clock)
    await spoken(voice, "Hello!")
    assert len(primary.asked) == 3  # the half-open trial


async def test_the_last_voice_failing_raises_the_error() -> None:
    clock = FakeClock()
    voice = FailoverTTS(
        [("a", Voice("a", 16000, 1, fail_after=0)), ("b", Voice("b", 16000, 2, fail_after=0))],
        Breakers(),
        clock,
    )
    CallFailovers().enter(clock)
    with pytest.raises(ProviderError, match="HTTP 503"):
        await spoken(voice, "Hello!")


# ── speech-to-text ───────────────────────────────────────────────────────────────────────────


class Recogniser:
    """Hears frames; fails (events raise) once it got ``fail_after`` frames; says ``text`` as a
    final result (times from its own start) at ``end_input``."""

    def __init__(self, name: str, fail_after: int | None = None, text: str = "") -> None:
        self.name, self.sample_rate = name, 16000
        self.capabilities = STTCapabilities()
        self.fail_after, self.text = fail_after, text
        self.heard: list[tuple[int, bool | None]] = []  # (first sample value, voiced)

    def stream(self, options: STTOptions) -> AbstractAsyncContextManager[_Stream]:
        return owned(_Stream(self), f"test-{self.name}")


class _Stream:
    def __init__(self, owner: Recogniser) -> None:
        self.owner = owner
        self.task: asyncio.Task[None] | None = None
        self.queue: asyncio.Queue[STTEvent | ProviderError | None] = asyncio.Queue()
        self.done = False

    async def work(self) -> None:
        await asyncio.Event().wait()

    async def wait_ready(self) -> None:
        pass

    async def send(self, pcm: PCM, voiced: bool | None = None) -> None:
        if self.done:
            return
        self.owner.heard.append((int(pcm[0]), voiced))
        if self.owner.fail_after is not None and len(self.owner.heard) >= self.owner.fail_after:
            self.done = True
            self.queue.put_nowait(
                ProviderError(self.owner.name, "reconnect: ConnectionRefusedError", retryable=True)
            )

    async def events(self) -> AsyncIterator[STTEvent]:
        while (item := await self.queue.get()) is not None:
            if isinstance(item, ProviderError):
                raise item
            yield item

    async def end_input(self) -> None:
        if not self.done:
            self.done = True
            seconds = len(self.owner.heard) * 0.02
            self.queue.put_nowait(Transcript(self.owner.text, True, True, 0.9, 0.0, seconds))
            self.queue.put_nowait(None)
        if self.task is not None:
            self.task.cancel()


async def test_no_caller_audio_is_lost_across_a_recogniser_switch() -> None:
    clock = FakeClock()
    primary, fallback = (
        Recogniser("deepgram", fail_after=30),
        Recogniser("whisper", text="what time do you open"),
    )
    stt = FailoverSTT([("deepgram", primary), ("whisper", fallback)], Breakers(), clock)
    calls = CallFailovers().enter(clock)
    events: list[STTEvent] = []
    async with stt.stream(STTOptions()) as stream:

        async def read() -> None:
            events.extend([event async for event in stream.events()])

        async with asyncio.TaskGroup() as tg:
            reader = tg.create_task(read())
            for n in range(50):  # frames numbered 0..49 by their samples' value
                await stream.send(np.full(320, n, np.int16), voiced=n % 2 == 0)
                await asyncio.sleep(0)  # the reader's turn: the switch happens while audio comes in
            await stream.end_input()
            await asyncio.wait({reader})
    assert [n for n, _ in primary.heard] == list(range(30))
    # the fallback heard everything since the stream opened (no final result came before), in order
    assert fallback.heard == [(n, n % 2 == 0) for n in range(50)]
    assert [(f.stage, f.from_, f.to) for f in calls.events] == [("stt", "deepgram", "whisper")]
    assert [(e.text, e.end) for e in events if isinstance(e, Transcript)] == [("what time do you open", 1.0)]


async def test_a_recogniser_that_cannot_open_is_skipped_at_the_start() -> None:
    clock = FakeClock()

    class Refused(Recogniser):
        def stream(self, options: STTOptions) -> AbstractAsyncContextManager[_Stream]:
            @contextlib.asynccontextmanager
            async def refuse() -> AsyncIterator[_Stream]:
                raise ProviderError("deepgram", "connect: HTTP 401 (authentication failed)", retryable=False)
                yield _Stream(self)

            return refuse()

    fallback = Recogniser("whisper", text="hello")
    stt = FailoverSTT([("deepgram", Refused("deepgram")), ("whisper", fallback)], Breakers(), clock)
    calls = CallFailovers().enter(clock)
    async with stt.stream(STTOptions()) as stream:
        await stream.send(np.full(320, 7, np.int16))
        await stream.end_input()
        got = [e async for e in stream.events()]
    assert fallback.heard == [(7, None)]
    assert [e.text for e in got if isinstance(e, Transcript)] == ["hello"]
    assert calls.events[0].reason == "connect: HTTP 401 (authentication failed)"


def test_a_chain_of_mixed_rates_is_refused() -> None:
    slow = Recogniser("other")
    slow.sample_rate = 8000
    with pytest.raises(ValueError, match="same sample rate"):
        FailoverSTT([("a", Recogniser("a")), ("b", slow)], Breakers(), FakeClock())
