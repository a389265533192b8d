"""``ThreadedSynthesizer``: a blocking TTS engine streamed off the event loop.

Most tests drive a small deterministic engine written here: chunk ``i`` is ``size``
samples of value ``i + 1``; it records how many chunks it made, signals when it starts
each one, can wait on a gate before one, and can fail at one. eSpeak NG checks the
adapter with a real engine (it takes milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from app.clock import FakeClock
from app.providers.base import PCM, SpeechSynthesizer, TTSOptions
from app.providers.errors import MissingEngineError, ProviderError, TTSError
from app.providers.espeak import EspeakTTS
from app.providers.offline_tts import ChunkedTextToSpeech, ThreadedSynthesizer, best_offline_tts
from app.providers.tts import SpeechAudio

OPTIONS = TTSOptions()
SENTENCE = "Please hold the line while I check your booking details."
WAIT_S = 5.0  # generous bound for thread hand-offs; a passing test never waits this long


class FakeEngine:
    """Makes ``n`` known chunks, ``delay`` seconds each (sleeping, like a C call releasing the GIL)."""

    name = "fake"
    sample_rate = 8000

    def __init__(
        self,
        n: int = 3,
        *,
        size: int = 80,
        delay: float = 0.0,
        gate_at: int | None = None,
        fail_at: int | None = None,
        error: Exception | None = None,
    ) -> None:
        self.n, self.size, self.delay = n, size, delay
        self.gate_at, self.fail_at, self.error = gate_at, fail_at, error
        self.gate = threading.Event()
        self.started = [threading.Event() for _ in range(n)]
        self.closed = threading.Event()
        self.produced = 0
        self.threads: set[str] = set()

    def chunk(self, i: int) -> PCM:
        return np.full(self.size, i + 1, dtype=np.int16)

    def synthesize_chunks(self, text: str) -> Iterator[PCM]:
        try:
            for i in range(self.n):
                self.started[i].set()
                self.threads.add(threading.current_thread().name)
                if i == self.gate_at:
                    assert self.gate.wait(WAIT_S)
                if i == self.fail_at and self.error is not None:
                    raise self.error
                time.sleep(self.delay)
                self.produced += 1
                yield self.chunk(i)
        finally:
            self.closed.set()

    def synthesize(self, text: str) -> SpeechAudio:
        return SpeechAudio(np.concatenate(list(self.synthesize_chunks(text))), self.sample_rate)


class ClipEngine:
    """Only the plain protocol: one whole clip (a ramp), or ``error``."""

    name = "clip"
    sample_rate = 8000

    def __init__(self, seconds: float = 0.25, error: Exception | None = None) -> None:
        self.pcm = np.arange(int(seconds * self.sample_rate), dtype=np.int16)
        self.error = error

    def synthesize(self, text: str) -> SpeechAudio:
        if self.error is not None:
            raise self.error
        return SpeechAudio(self.pcm, self.sample_rate)


async def _collect(synth: ThreadedSynthesizer, text: str = "hello") -> list[PCM]:
    return [chunk async for chunk in synth.synthesize(text, OPTIONS)]


async def _wait(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, WAIT_S)


async def test_chunks_arrive_in_order_made_off_the_loop() -> None:
    engine = FakeEngine(4)
    synth: SpeechSynthesizer = ThreadedSynthesizer(engine)
    assert isinstance(engine, ChunkedTextToSpeech)
    assert (synth.name, synth.sample_rate) == ("fake", 8000)
    chunks = await _collect(ThreadedSynthesizer(engine))
    assert [c.tolist() for c in chunks] == [engine.chunk(i).tolist() for i in range(4)]
    assert all(name.startswith("offline-tts") for name in engine.threads)
    assert engine.closed.is_set()


async def test_consumer_has_chunk_one_while_chunk_two_is_made() -> None:
    engine = FakeEngine(3, gate_at=1)
    stream = ThreadedSynthesizer(engine).synthesize("hello", OPTIONS)
    first = await anext(stream)
    await _wait(engine.started[1])  # chunk 2 is being made, and is stuck at the gate
    assert first.tolist() == engine.chunk(0).tolist()
    assert engine.produced == 1
    engine.gate.set()
    rest = [chunk async for chunk in stream]
    assert [c[0] for c in rest] == [2, 3]


async def test_a_whole_clip_is_split_into_100ms_pieces() -> None:
    engine = ClipEngine(0.25)
    pieces = await _collect(ThreadedSynthesizer(engine))
    assert [p.shape[0] for p in pieces] == [800, 800, 400]
    assert np.array_equal(np.concatenate(pieces), engine.pcm)
    whole = await _collect(ThreadedSynthesizer(engine, piece_seconds=None))
    assert len(whole) == 1
    with pytest.raises(ValueError, match="piece_seconds"):
        ThreadedSynthesizer(engine, piece_seconds=0)


async def test_espeak_through_the_adapter_matches_direct_synthesis() -> None:
    engine = EspeakTTS("en-us+Storm")  # flutter-free: bit-for-bit reproducible
    synth = ThreadedSynthesizer(engine)
    assert (synth.name, synth.sample_rate) == ("espeak-ng", 22050)
    pieces = await _collect(synth, SENTENCE)
    assert len(pieces) > 10
    assert all(p.dtype == np.int16 and p.ndim == 1 and p.shape[0] <= 2205 for p in pieces)
    assert np.array_equal(np.concatenate(pieces), engine.synthesize(SENTENCE).pcm)


async def test_blank_text_starts_no_work() -> None:
    engine = FakeEngine(1)
    assert await _collect(ThreadedSynthesizer(engine), " \n\t") == []
    assert not engine.started[0].is_set()


async def test_closing_early_stops_production_after_the_current_chunk() -> None:
    engine = FakeEngine(10, gate_at=2)
    stream = ThreadedSynthesizer(engine).synthesize("hello", OPTIONS)
    assert [(await anext(stream))[0] for _ in range(2)] == [1, 2]
    await _wait(engine.started[2])  # the read-ahead chunk is in the engine, held at its gate
    await stream.aclose()
    assert not engine.closed.is_set()  # closing returned while the engine was still held: no wait
    engine.gate.set()  # the current chunk finishes, is dropped, and the engine is closed
    await _wait(engine.closed)
    await asyncio.sleep(0.05)
    assert engine.produced == 3
    assert not engine.started[3].is_set()
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_cancelling_the_consumer_stops_production() -> None:
    engine = FakeEngine(5, gate_at=1)
    got: list[PCM] = []

    async def consume() -> None:
        async with contextlib.aclosing(ThreadedSynthesizer(engine).synthesize("hi", OPTIONS)) as stream:
            async for chunk in stream:
                got.append(chunk)

    task = asyncio.ensure_future(consume())
    await _wait(engine.started[1])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    engine.gate.set()
    await _wait(engine.closed)
    assert len(got) == 1
    assert engine.produced == 2
    assert not engine.started[2].is_set()


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (TTSError("no such voice"), False),
        (MissingEngineError("Fake", "embedded"), False),
        (RuntimeError("onnx session died"), True),
        (OSError("disk"), True),
    ],
)
async def test_engine_errors_become_provider_errors(error: Exception, retryable: bool) -> None:
    engine = FakeEngine(3, fail_at=1, error=error)
    got: list[PCM] = []

    async def consume() -> None:
        async for chunk in ThreadedSynthesizer(engine, name="offline").synthesize("hi", OPTIONS):
            got.append(chunk)

    with pytest.raises(ProviderError) as info:
        await consume()
    assert len(got) == 1  # the chunk before the failure was delivered
    assert info.value.provider == "offline"
    assert info.value.retryable is retryable
    assert info.value.__cause__ is error
    with pytest.raises(ProviderError) as clip_info:
        await _collect(ThreadedSynthesizer(ClipEngine(error=error)))
    assert clip_info.value.retryable is retryable


async def test_a_chunk_that_is_not_int16_is_refused() -> None:
    class FloatEngine(FakeEngine):
        def chunk(self, i: int) -> PCM:
            return np.zeros(4, dtype=np.float32)  # the bug under test

    with pytest.raises(ProviderError, match="not 1-D int16") as info:
        await _collect(ThreadedSynthesizer(FloatEngine(2)))
    assert info.value.retryable is False


async def test_the_event_loop_keeps_ticking_while_the_engine_works() -> None:
    engine = FakeEngine(3, gate_at=1)  # the engine blocks in chunk 2 until the gate opens
    collecting = asyncio.ensure_future(_collect(ThreadedSynthesizer(engine)))
    await _wait(engine.started[1])
    ticks = 0
    for _ in range(5):  # on the loop, the engine would hold it at the gate: no tick could run
        await asyncio.sleep(0.001)
        ticks += 1
    assert ticks == 5
    assert not engine.gate.is_set()
    assert engine.produced == 1  # the ticks ran while the engine was blocked mid-synthesis
    engine.gate.set()
    assert len(await collecting) == 3


async def test_fake_clock_waits_for_off_loop_synthesis() -> None:
    async def race(synth: ThreadedSynthesizer, clock: FakeClock) -> tuple[bool, float, int]:
        timer = asyncio.ensure_future(clock.sleep(5.0))  # a timeout racing the synthesis
        chunks = await _collect(synth)
        fired = timer.done()
        timer.cancel()
        return fired, clock.now(), len(chunks)

    clock = FakeClock()
    held = ThreadedSynthesizer(FakeEngine(3, delay=0.03), clock=clock)
    assert await clock.run(race(held, clock)) == (False, 0.0, 3)  # virtual time stood still

    unheld_clock = FakeClock()  # without the hold, time jumps while the thread works
    unheld = ThreadedSynthesizer(FakeEngine(3, delay=0.03))
    assert await unheld_clock.run(race(unheld, unheld_clock)) == (True, 5.0, 3)


async def test_fake_clock_consumer_pacing_on_virtual_time_does_not_deadlock() -> None:
    clock = FakeClock()
    engine = FakeEngine(3, delay=0.01)

    async def play() -> float:
        async for _ in ThreadedSynthesizer(engine, clock=clock).synthesize("hi", OPTIONS):
            await clock.sleep(1.0)  # like a playout pacing the audio out
        return clock.now()

    assert await clock.run(play()) == 3.0


async def test_fake_clock_early_close_leaves_nothing_pending() -> None:
    clock = FakeClock()
    engine = FakeEngine(10, delay=0.03)

    async def first_only() -> int:
        async with contextlib.aclosing(
            ThreadedSynthesizer(engine, clock=clock).synthesize("hi", OPTIONS)
        ) as s:
            return int((await anext(s))[0])

    assert await clock.run(first_only()) == 1
    await clock.run(clock.sleep(1.0))  # time moves again: the read-ahead's hold was released
    assert engine.closed.is_set()
    assert engine.produced <= 2
    assert asyncio.all_tasks() == {asyncio.current_task()}


def test_best_offline_tts_falls_back_then_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "piper", None)  # as if piper-tts were not installed
    assert best_offline_tts().name == "espeak-ng"
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    with pytest.raises(MissingEngineError, match=r"Piper or eSpeak NG.*\.\[embedded\]") as info:
        best_offline_tts()
    assert info.value.extra == "embedded"
