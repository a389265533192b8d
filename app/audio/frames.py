"""Framing glue between the wire (fixed 20 ms payloads) and the 16 kHz pipeline.

* :class:`FrameSlicer` cuts a byte stream into exact-size frames.
* :class:`InboundDecoder` turns one inbound payload into int16 PCM at the pipeline rate.
* :class:`OutboundEncoder` turns PCM at any source rate into exact ``playAudio`` frames.

All sans-IO and synchronous; one instance per call and direction.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from app.audio.codec import decode, encode
from app.audio.formats import AudioFormat
from app.audio.resample import StreamResampler

__all__ = ["FrameSlicer", "InboundDecoder", "OutboundEncoder"]

_Int16 = npt.NDArray[np.int16]


class FrameSlicer:
    """Cut arbitrary byte chunks into frames of exactly ``frame_bytes`` bytes.

    Bytes that do not fill a frame are kept for the next :meth:`push`.
    ``silence_byte`` (0..255) pads the tail in :meth:`flush`.
    """

    def __init__(self, frame_bytes: int, silence_byte: int) -> None:
        if frame_bytes <= 0:
            raise ValueError(f"frame_bytes must be positive, got {frame_bytes!r}")
        if not 0 <= silence_byte <= 0xFF:
            raise ValueError(f"silence_byte must be in 0..255, got {silence_byte!r}")
        self.frame_bytes = frame_bytes
        self.silence_byte = silence_byte
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for a full frame (always < ``frame_bytes``)."""
        return len(self._buf)

    def push(self, data: bytes) -> list[bytes]:
        """Append ``data`` and return every complete frame now available, in order."""
        buf = self._buf
        buf += data
        size = self.frame_bytes
        whole = len(buf) - len(buf) % size
        if whole == 0:
            return []
        frames = [bytes(buf[i : i + size]) for i in range(0, whole, size)]
        del buf[:whole]
        return frames

    def flush(self) -> bytes | None:
        """Return the held-back tail padded with silence to a full frame, or ``None`` if empty."""
        if not self._buf:
            return None
        frame = bytes(self._buf) + bytes([self.silence_byte]) * (self.frame_bytes - len(self._buf))
        self._buf.clear()
        return frame

    def clear(self) -> None:
        """Drop the held-back tail."""
        self._buf.clear()


class InboundDecoder:
    """Decode inbound wire payloads in ``fmt`` to int16 PCM at ``target_rate`` Hz.

    Stateful (the resampler carries history between payloads); payloads must be
    fed in arrival order. Output lags by :attr:`delay_seconds`.
    """

    def __init__(self, fmt: AudioFormat, target_rate: int = 16000) -> None:
        self.fmt = fmt
        self.target_rate = target_rate
        self._resampler = StreamResampler(fmt.sample_rate, target_rate)

    @property
    def delay_seconds(self) -> float:
        """Resampling group delay in seconds (0.0 when no resampling is needed)."""
        return self._resampler.delay_seconds

    def __call__(self, payload: bytes) -> _Int16:
        """Decode one payload (any whole number of samples) and resample it."""
        return self._resampler.process(decode(payload, self.fmt))

    def line(self, payload: bytes) -> _Int16:
        """One payload decoded at the line's own rate (then :meth:`resample` it, in order)."""
        return decode(payload, self.fmt)

    def resample(self, pcm: _Int16) -> _Int16:
        """Line-rate PCM (from :meth:`line`) at ``target_rate``; ``self(payload)`` in two steps."""
        return self._resampler.process(pcm)

    def reset(self) -> None:
        """Forget resampler history (e.g. when a new stream starts)."""
        self._resampler.reset()


class OutboundEncoder:
    """Convert int16 PCM at ``source_rate`` Hz into ``fmt`` frames of exactly ``frame_ms`` ms.

    :meth:`push` returns only complete frames and keeps the remainder;
    :meth:`flush` ends an utterance; :meth:`clear` discards everything (barge-in).

    When resampling, source audio is fed to the resampler in whole multiples of
    one frame's worth of source samples. An output frame can only complete once
    that much source audio has arrived anyway, so frames come out at exactly the
    same ``push`` as without batching, while arbitrary TTS chunk sizes keep
    hitting the resampler's cached per-chunk-shape plans.
    """

    def __init__(self, source_rate: int, fmt: AudioFormat, frame_ms: int = 20) -> None:
        self.source_rate = source_rate
        self.fmt = fmt
        self.frame_ms = frame_ms
        self._resampler = StreamResampler(source_rate, fmt.sample_rate)
        self._slicer = FrameSlicer(fmt.frame_bytes(frame_ms), fmt.silence_byte)
        # Input samples that push the last real sample's filter response out on flush.
        self._drain = math.ceil(self._resampler.delay_seconds * source_rate)
        block, rem = divmod(source_rate * frame_ms, 1000)
        self._block = block if source_rate != fmt.sample_rate and not rem else 1
        self._pending: _Int16 = np.zeros(0, dtype=np.int16)

    @property
    def frame_bytes(self) -> int:
        """Size in bytes of every frame returned."""
        return self._slicer.frame_bytes

    @property
    def frame_duration(self) -> float:
        """Duration of one frame in seconds (0.02 for 20 ms)."""
        return self.frame_ms / 1000.0

    @property
    def delay_seconds(self) -> float:
        """Resampling group delay in seconds (0.0 when no resampling is needed)."""
        return self._resampler.delay_seconds

    def push(self, pcm: _Int16) -> list[bytes]:
        """Add 1-D int16 samples at ``source_rate``; return the complete frames now available."""
        if self._block > 1:
            if self._pending.shape[0]:
                pcm = np.concatenate((self._pending, pcm))
            usable = pcm.shape[0] - pcm.shape[0] % self._block
            self._pending = pcm[usable:].copy()
            pcm = pcm[:usable]
        return self._encode(self._resampler.process(pcm))

    def flush(self) -> list[bytes]:
        """End the utterance: drain the resampler, pad the last partial frame with silence.

        Returns the remaining frames (possibly none). Afterwards the encoder starts
        afresh, as after :meth:`clear`.
        """
        frames: list[bytes] = []
        if self._resampler.samples_in or self._pending.shape[0]:
            drain = np.zeros(self._drain, dtype=np.int16)
            frames = self._encode(self._resampler.process(np.concatenate((self._pending, drain))))
        last = self._slicer.flush()
        if last is not None:
            frames.append(last)
        self.clear()
        return frames

    def clear(self) -> None:
        """Drop buffered audio and resampler history without emitting anything (barge-in)."""
        self._pending = np.zeros(0, dtype=np.int16)
        self._slicer.clear()
        self._resampler.reset()

    def _encode(self, pcm: _Int16) -> list[bytes]:
        if pcm.shape[0] == 0:
            return []
        return self._slicer.push(encode(pcm, self.fmt))
