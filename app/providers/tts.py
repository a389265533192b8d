"""Text-to-speech interface shared by every TTS engine.

An engine turns a piece of text into one :class:`SpeechAudio`: mono int16 PCM at
the engine's declared ``sample_rate`` (Hz). Synthesis is blocking CPU work, so
async callers run :meth:`TextToSpeech.synthesize` in a worker thread
(``await asyncio.to_thread(tts.synthesize, text)``). Engines document their own
thread-safety; the ones in this package may be called from any thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from app.providers.errors import MissingEngineError, TTSError

__all__ = ["MissingEngineError", "SpeechAudio", "TTSError", "TextToSpeech"]


@dataclass(frozen=True, slots=True)
class SpeechAudio:
    """Synthesised mono speech: ``pcm`` is 1-D native int16 at ``sample_rate`` Hz.

    Construction validates both fields. The instance is immutable but the array is
    not copied: treat ``pcm`` as read-only once it is wrapped.
    """

    pcm: npt.NDArray[np.int16]
    sample_rate: int

    def __post_init__(self) -> None:
        rate = self.sample_rate
        if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
            raise ValueError(f"sample_rate must be a positive int in Hz, got {rate!r}")
        if not isinstance(self.pcm, np.ndarray) or self.pcm.dtype != np.dtype(np.int16):
            raise TypeError(f"pcm must be a native int16 numpy array, got {getattr(self.pcm, 'dtype', None)}")
        if self.pcm.ndim != 1:
            raise ValueError(f"pcm must be 1-D (mono), got shape {self.pcm.shape}")

    @property
    def duration(self) -> float:
        """Length of the audio in seconds."""
        return int(self.pcm.shape[0]) / self.sample_rate


@runtime_checkable
class TextToSpeech(Protocol):
    """What the pipeline needs from a TTS engine.

    ``name`` identifies the engine in logs; ``sample_rate`` (Hz) is the rate of
    every :class:`SpeechAudio` that :meth:`synthesize` returns.
    """

    @property
    def name(self) -> str: ...

    @property
    def sample_rate(self) -> int: ...

    def synthesize(self, text: str) -> SpeechAudio:
        """Synthesise ``text`` (blocking; run it in a thread from async code).

        Empty or whitespace-only text gives empty audio. Raises :class:`TTSError`
        when the engine fails and :class:`MissingEngineError` when it is not installed.
        """
        ...
