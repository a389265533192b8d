"""Offline text-to-speech engines behind the streaming :class:`SpeechSynthesizer` interface.

:class:`ThreadedSynthesizer` adapts a blocking :class:`~app.providers.tts.TextToSpeech`
engine (Piper, eSpeak NG) to the async, streaming interface the pipeline uses. The engine
always runs in a worker thread, never on the event loop. Work is handed to the pool one
chunk at a time, with one chunk of read-ahead: while the consumer has chunk *n*, chunk
*n + 1* is being made, and nothing past that. So a barge-in wastes at most one chunk, and
concurrent calls take turns on a small pool instead of one long synthesis holding a thread.

Engines with ``synthesize_chunks(text) -> Iterator[PCM]`` (Piper: one chunk per sentence)
stream chunk by chunk; others return one clip through ``synthesize``. Either way each chunk
is handed on in pieces of at most ``piece_seconds``.

:func:`best_offline_tts` picks the best engine installed: Piper, else eSpeak NG.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Protocol, runtime_checkable

import numpy as np

from app.clock import Clock, SystemClock
from app.providers.base import PCM, SpeechSynthesizer, TTSOptions
from app.providers.errors import MissingEngineError, ProviderError, TTSError
from app.providers.tts import TextToSpeech

__all__ = [
    "DEFAULT_EXECUTOR",
    "ChunkedTextToSpeech",
    "ThreadedSynthesizer",
    "best_offline_tts",
]

#: The pool every :class:`ThreadedSynthesizer` shares unless given another: half the CPUs
#: (at least one), so synthesis for many calls cannot starve the event loop of cores.
DEFAULT_EXECUTOR: Executor = ThreadPoolExecutor(
    max_workers=max(1, (os.cpu_count() or 1) // 2), thread_name_prefix="offline-tts"
)


@runtime_checkable
class ChunkedTextToSpeech(TextToSpeech, Protocol):
    """A :class:`TextToSpeech` that can also stream: ``synthesize_chunks`` yields 1-D int16
    chunks at ``sample_rate`` Hz, each as soon as it exists; closing the iterator stops it."""

    def synthesize_chunks(self, text: str) -> Iterator[PCM]: ...


def _engine_chunks(engine: TextToSpeech, text: str) -> Iterator[PCM]:
    """The engine's output as chunks; a generator, so nothing runs until the first ``next``."""
    if isinstance(engine, ChunkedTextToSpeech):
        yield from engine.synthesize_chunks(text)
    else:
        yield engine.synthesize(text).pcm


def _step(chunks: Iterator[PCM], cancel: threading.Event) -> PCM | None:
    """Worker side: the next chunk, or None at the end or once the consumer has gone."""
    if cancel.is_set():
        return None
    return next(chunks, None)


class ThreadedSynthesizer:
    """Streaming :class:`SpeechSynthesizer` over a blocking engine run in ``executor``.

    ``name`` defaults to the engine's; ``sample_rate`` (Hz) is the engine's. ``executor``
    defaults to :data:`DEFAULT_EXECUTOR`. Each piece of off-loop work is done inside
    ``clock.hold()`` (default: a ``SystemClock``), so virtual time stands still while the
    engine works. ``piece_seconds`` caps the length of each yielded chunk (None: as the
    engine made it). The engine's voice and speed are fixed when it is built: ``TTSOptions``
    are not applied (a cloud voice name means nothing to an offline engine).

    Safe to share between calls and tasks on one event loop; the engine must be thread-safe
    (the engines in this package are), since concurrent calls may run it in parallel.
    """

    def __init__(
        self,
        engine: TextToSpeech,
        *,
        name: str | None = None,
        executor: Executor | None = None,
        clock: Clock | None = None,
        piece_seconds: float | None = 0.1,
    ) -> None:
        if piece_seconds is not None and not piece_seconds > 0:
            raise ValueError(f"piece_seconds must be positive or None, got {piece_seconds!r}")
        self.engine = engine
        self.name: str = name or engine.name
        self.sample_rate: int = engine.sample_rate
        self._executor = executor if executor is not None else DEFAULT_EXECUTOR
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._piece = None if piece_seconds is None else max(1, round(piece_seconds * self.sample_rate))

    def __repr__(self) -> str:
        return f"ThreadedSynthesizer({self.engine!r}, name={self.name!r})"

    async def synthesize(self, text: str, options: TTSOptions) -> AsyncGenerator[PCM, None]:
        """Stream speech for ``text`` as 1-D int16 chunks at :attr:`sample_rate` Hz, each as
        soon as the engine has it. Blank text yields nothing and starts no work.

        Engine failures become :class:`ProviderError`: ``retryable=False`` for ``TTSError``
        and ``MissingEngineError`` (the same text would fail again), ``True`` otherwise.
        Closing the generator early (or cancelling its consumer) stops at once: the chunk
        being made finishes in its thread and is dropped, and no further one is started.
        """
        if not text.strip():
            return
        loop = asyncio.get_running_loop()
        chunks = _engine_chunks(self.engine, text)
        cancel = threading.Event()
        pending = self._submit(loop, chunks, cancel)
        try:
            while True:
                try:
                    # shielded: cancelling the consumer must not orphan the running thread's hold
                    chunk = await asyncio.shield(pending)
                except ProviderError:
                    raise
                except (TTSError, MissingEngineError) as exc:
                    raise ProviderError(self.name, str(exc), retryable=False) from exc
                except Exception as exc:
                    raise ProviderError(self.name, f"engine failed: {exc!r}", retryable=True) from exc
                if chunk is None:
                    return
                if not isinstance(chunk, np.ndarray) or chunk.dtype != np.int16 or chunk.ndim != 1:
                    raise ProviderError(
                        self.name, "engine produced a chunk that is not 1-D int16", retryable=False
                    )
                pending = self._submit(loop, chunks, cancel)  # read ahead one chunk
                for piece in self._pieces(chunk):
                    yield piece
        finally:
            cancel.set()
            pending.add_done_callback(lambda done: _finish(done, chunks))

    def _submit(
        self, loop: asyncio.AbstractEventLoop, chunks: Iterator[PCM], cancel: threading.Event
    ) -> asyncio.Future[PCM | None]:
        future = loop.run_in_executor(self._executor, _step, chunks, cancel)
        hold = contextlib.ExitStack()  # released when the thread is done, not when the consumer goes
        hold.enter_context(self._clock.hold())
        future.add_done_callback(lambda _: hold.close())
        return future

    def _pieces(self, chunk: PCM) -> Iterator[PCM]:
        size = int(chunk.shape[0])
        step = self._piece or size
        for start in range(0, size, step):
            yield chunk[start : start + step]


def _finish(done: asyncio.Future[PCM | None], chunks: Iterator[PCM]) -> None:
    """On the loop, once the last step has returned: close the engine's iterator (its
    thread is done with it) and mark an unawaited failure as seen."""
    if not done.cancelled():
        done.exception()
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def best_offline_tts(clock: Clock | None = None, *, variation: bool = True) -> SpeechSynthesizer:
    """The best offline synthesizer installed: Piper (neural, ``en_US-joe-medium``), else
    eSpeak NG (robotic but instant). Blocking the first time (Piper loads in about 1 s):
    call it at start-up. Raises :class:`MissingEngineError` naming the ``embedded`` extra
    when neither is installed, and :class:`TTSError` if Piper's voice fails its checksum.
    ``variation``: Piper's random prosody (off: the same text, the same samples).
    """
    from app.providers.espeak import EspeakTTS
    from app.providers.piper_tts import PiperTTS

    try:
        return ThreadedSynthesizer(PiperTTS(variation=variation), clock=clock)
    except MissingEngineError:
        pass
    try:
        return ThreadedSynthesizer(EspeakTTS(), clock=clock)
    except MissingEngineError:
        raise MissingEngineError("offline (Piper or eSpeak NG)", "embedded") from None
