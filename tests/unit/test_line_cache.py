"""``LineCache``: a fixed line is rendered once per (sentence, voice, voice options, output
format), whoever asks and however many ask at once; a failure is not kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import numpy as np
import pytest

from app.audio.formats import AudioFormat
from app.providers.base import PCM, TTSOptions
from app.providers.errors import ProviderError
from app.providers.line_cache import LineCache
from app.providers.scripted import ToneTTS

MULAW = AudioFormat("mulaw", 8000)
L16 = AudioFormat("l16", 16000)
LINE = "Hello, thanks for calling."


class GatedVoice:
    """Speaks a tone per word once ``gate`` opens (so renderings overlap); fails instead while
    ``failing``. ``spoken`` counts the syntheses started."""

    name = "gated"
    sample_rate = 16000

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.failing = False
        self.spoken: list[str] = []

    async def synthesize(self, text: str, options: TTSOptions) -> AsyncGenerator[PCM, None]:
        self.spoken.append(text)
        await self.gate.wait()
        if self.failing:
            raise ProviderError(self.name, "scripted failure", retryable=True)
        for _ in text.split():
            yield np.full(3200, 1000, np.int16)


async def test_many_callers_at_once_share_one_rendering() -> None:
    cache, voice = LineCache(), GatedVoice()
    asks = [cache.frames(LINE, voice, TTSOptions(), MULAW) for _ in range(20)]
    waiting = asyncio.gather(*asks)
    await asyncio.sleep(0)
    voice.gate.set()
    results = await waiting
    assert voice.spoken == [LINE]  # one synthesis for twenty calls
    assert cache.renders == 1
    assert cache.hits == 19
    assert len({tuple(r) for r in results}) == 1
    assert len(results[0]) >= 40  # four words of 0.2 s: 40 frames of 20 ms (and the resampler's tail)
    assert all(len(f) == 160 for f in results[0])


async def test_a_line_is_rendered_once_then_served_from_memory() -> None:
    cache, voice = LineCache(), ToneTTS()
    first: list[bytes] = []
    again: list[list[bytes]] = []
    await cache.frames(LINE, voice, TTSOptions(), MULAW, first.extend)
    await cache.frames(LINE, voice, TTSOptions(), MULAW, again.append)
    assert voice.spoken == [LINE]
    assert again == [first]  # the cached frames, handed over at once
    assert cache.cached(LINE, voice, TTSOptions(), MULAW)
    assert cache.bytes == sum(len(f) for f in first)


async def test_another_voice_option_format_or_text_is_rendered_separately() -> None:
    cache, voice, other = LineCache(), ToneTTS(), ToneTTS()
    await cache.frames(LINE, voice, TTSOptions(), MULAW)
    await cache.frames(LINE, voice, TTSOptions(voice="aura-2-cora-en"), MULAW)
    await cache.frames(LINE, voice, TTSOptions(), L16)
    await cache.frames("Goodbye.", voice, TTSOptions(), MULAW)
    await cache.frames(LINE, other, TTSOptions(), MULAW)  # same name, another engine
    assert voice.spoken == [LINE, LINE, LINE, "Goodbye."]
    assert other.spoken == [LINE]
    assert len(cache) == 5
    l16 = await cache.frames(LINE, voice, TTSOptions(), L16)
    assert {len(f) for f in l16} == {640}  # 20 ms of 16 kHz L16
    assert len(voice.spoken) == 4  # and each is kept under its own key


async def test_a_failed_rendering_reaches_every_waiter_and_is_tried_again_next_time() -> None:
    cache, voice = LineCache(), GatedVoice()
    voice.failing = True
    waiting = asyncio.gather(
        *(cache.frames(LINE, voice, TTSOptions(), MULAW) for _ in range(3)), return_exceptions=True
    )
    await asyncio.sleep(0)
    voice.gate.set()
    errors = await waiting
    assert all(isinstance(e, ProviderError) and e.retryable for e in errors)
    assert voice.spoken == [LINE]  # the waiters did not each hammer the failing voice
    assert len(cache) == 0  # nothing kept
    voice.failing = False
    frames = await cache.frames(LINE, voice, TTSOptions(), MULAW)
    assert frames
    assert voice.spoken == [LINE, LINE]
    assert cache.cached(LINE, voice, TTSOptions(), MULAW)


async def test_a_cancelled_renderer_hands_the_rendering_to_a_waiter() -> None:
    cache, voice = LineCache(), GatedVoice()
    renderer = asyncio.create_task(cache.frames(LINE, voice, TTSOptions(), MULAW))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cache.frames(LINE, voice, TTSOptions(), MULAW))
    await asyncio.sleep(0)
    renderer.cancel()  # its caller cut in or hung up mid-rendering
    with pytest.raises(asyncio.CancelledError):
        await renderer
    voice.gate.set()
    frames = await waiter
    assert frames
    assert voice.spoken == [LINE, LINE]
    assert cache.cached(LINE, voice, TTSOptions(), MULAW)


async def test_the_cache_is_bounded_least_recently_used_first_out() -> None:
    voice = ToneTTS(seconds_per_word=0.2)
    size = sum(len(f) for f in await LineCache().frames("One.", voice, TTSOptions(), MULAW))
    cache = LineCache(max_bytes=3 * size)  # room for three one-word lines
    for text in ("One.", "Two.", "Three."):
        await cache.frames(text, voice, TTSOptions(), MULAW)
    await cache.frames("One.", voice, TTSOptions(), MULAW)  # used again: now the most recent
    await cache.frames("Four.", voice, TTSOptions(), MULAW)  # "Two." goes
    assert cache.bytes == 3 * size
    kept = [t for t in ("One.", "Two.", "Three.", "Four.") if cache.cached(t, voice, TTSOptions(), MULAW)]
    assert kept == ["One.", "Three.", "Four."]
    too_big = LineCache(max_bytes=size - 1)
    assert await too_big.frames("One.", voice, TTSOptions(), MULAW)  # played, not kept
    assert len(too_big) == 0
    assert too_big.bytes == 0


async def test_only_the_caller_that_renders_a_line_is_told_it_synthesized_it() -> None:
    cache, voice = LineCache(), GatedVoice()
    told: list[list[str]] = [[] for _ in range(3)]
    asks = [cache.frames(LINE, voice, TTSOptions(), MULAW, None, told[i].append) for i in range(3)]
    waiting = asyncio.gather(*asks)
    await asyncio.sleep(0)
    voice.gate.set()
    await waiting
    await cache.frames(LINE, voice, TTSOptions(), MULAW, None, told[0].append)  # from memory now
    assert sorted(told, key=len) == [[], [], [LINE]]  # the one rendering call, once; waiters and hits: none
    assert voice.spoken == [LINE]
