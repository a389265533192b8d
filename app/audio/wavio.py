"""WAV file input/output and whole-clip resampling.

:func:`read_wav` reads any common WAV (integer or float samples, μ-law/A-law, extensible
headers, any number of channels, any rate the resampler accepts; libsndfile through
``soundfile`` reads it) into mono int16 at the rate you ask for. :func:`write_wav` writes
16-bit PCM with one or more channels (stdlib ``wave``). :func:`resample_clip` resamples a
complete clip with the filter delay removed.

All functions are pure apart from the file access and safe to call from any thread (each call
uses its own resampler).
"""

from __future__ import annotations

import os
import wave
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import soundfile

from app.audio.resample import StreamResampler

__all__ = ["read_wav", "resample_clip", "write_wav"]

_Int16 = npt.NDArray[np.int16]
_Float = npt.NDArray[np.float64]
StrPath = str | os.PathLike[str]

# Divisor that maps a signed sample of each width onto the int16 scale.
_TO_INT16_SCALE = {1: 1.0 / 256.0, 2: 1.0, 3: 256.0, 4: 65536.0}
_BLOCK_SAMPLES = 512  # input samples per resampler call in resample_clip (keeps each step cache-sized)


def resample_clip(pcm: _Int16, in_rate: int, out_rate: int) -> _Int16:
    """Resample a complete 1-D int16 clip from ``in_rate`` Hz to ``out_rate`` Hz.

    Unlike a bare :class:`StreamResampler`, the result is time-aligned with the
    input (the filter's group delay is removed and its tail flushed with zeros):
    output sample ``k`` is at ``k / out_rate`` seconds, like input sample ``j`` at
    ``j / in_rate``. The result has exactly ``floor(len(pcm) * out_rate / in_rate)``
    samples. Equal rates return a copy. Raises ``ValueError``/``TypeError`` like
    :meth:`StreamResampler.process` for bad rates or arrays.
    """
    resampler = StreamResampler(in_rate, out_rate)  # validates the rates
    if in_rate == out_rate:
        return resampler.process(pcm)  # validates the array, returns a copy
    if pcm.ndim != 1:
        raise ValueError(f"expected a 1-D array of samples, got shape {pcm.shape}")
    # Blocks of a whole number of decimation periods all reuse one cached filter plan;
    # one huge chunk would build a plan the size of the clip (about 20x slower for 22.05 kHz).
    block = resampler.down * max(1, _BLOCK_SAMPLES // resampler.down)
    parts = [resampler.process(pcm[i : i + block]) for i in range(0, int(pcm.shape[0]), block)]
    want = int(pcm.shape[0]) * out_rate // in_rate
    lag = round(resampler.delay_seconds * out_rate)  # output samples of group delay
    flush = -(-(lag + 2) * in_rate // out_rate)  # input zeros that push lag + 2 more outputs out
    parts.append(resampler.process(np.zeros(flush, dtype=np.int16)))
    return np.concatenate(parts)[lag : lag + want]


def through_phone_line(pcm: _Int16, rate: int = 16000) -> _Int16:
    """``pcm`` (``rate`` Hz) as heard through an 8 kHz μ-law call, back at ``rate`` Hz: what
    a speech recogniser gets from a caller on the default Vobiz stream format."""
    from app.audio.codec import decode, encode
    from app.audio.formats import MULAW_8K

    wire = encode(resample_clip(pcm, rate, 8000), MULAW_8K)
    return resample_clip(decode(wire, MULAW_8K), 8000, rate)


def read_wav(path: StrPath, target_rate: int) -> _Int16:
    """Read a WAV file as mono int16 at ``target_rate`` Hz.

    libsndfile (``soundfile``) reads it, so any common WAV works: 8-bit unsigned, 16/24/32-bit
    integer, 32/64-bit float (Audacity's default), μ-law/A-law and WAVE_FORMAT_EXTENSIBLE
    headers. Samples are brought to the 16-bit scale , channels are
    averaged, and the result is resampled with :func:`resample_clip` when the file's rate differs.

    Raises ``ValueError`` for a file libsndfile cannot read as audio (naming the path) and for
    rates outside the resampler's 1000..192000 Hz; errors opening the file itself (missing,
    permissions) propagate as ``OSError``.
    """
    with open(path, "rb") as file:  # OSError for a missing or unreadable file, as documented
        try:
            data, rate = soundfile.read(file, dtype="float64", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
            detail = getattr(exc, "error_string", "") or str(exc)
            raise ValueError(f"{os.fspath(path)!r} is not a readable WAV file ({detail})") from exc
    mono = np.asarray(data, dtype=np.float64).mean(axis=1) * 32768.0  # libsndfile's full scale is ±1
    pcm: _Int16 = np.clip(np.rint(mono), -32768.0, 32767.0).astype(np.int16)
    if rate == target_rate:
        return pcm
    return resample_clip(pcm, int(rate), target_rate)


def write_wav(path: StrPath, channels: Sequence[_Int16], sample_rate: int) -> None:
    """Write 16-bit PCM WAV with ``len(channels)`` interleaved channels at ``sample_rate`` Hz.

    Each channel is a 1-D int16 array (either byte order); shorter channels are
    padded with zeros to the longest. Pass a list even for mono: ``[pcm]``.
    Raises ``TypeError`` for a bare array or non-int16 data and ``ValueError`` for
    no channels, non-1-D channels or a non-positive rate. Overwrites ``path``.
    """
    if isinstance(channels, np.ndarray):
        raise TypeError("channels must be a sequence of 1-D arrays, e.g. [pcm] for mono")
    if len(channels) == 0:
        raise ValueError("write_wav needs at least one channel")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int in Hz, got {sample_rate!r}")
    for i, channel in enumerate(channels):
        if not isinstance(channel, np.ndarray) or channel.dtype.kind != "i" or channel.dtype.itemsize != 2:
            raise TypeError(f"channel {i} must be an int16 array, got {getattr(channel, 'dtype', channel)!r}")
        if channel.ndim != 1:
            raise ValueError(f"channel {i} must be 1-D, got shape {channel.shape}")
    length = max(int(channel.shape[0]) for channel in channels)
    frames = np.zeros((length, len(channels)), dtype="<i2")
    for i, channel in enumerate(channels):
        frames[: channel.shape[0], i] = channel
    with wave.open(os.fspath(path), "wb") as wav:
        wav.setnchannels(len(channels))
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(frames.tobytes())
