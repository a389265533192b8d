"""Whisper-style log-mel features of 16 kHz audio, in numpy: the input of the end-of-turn model.

Whisper's recipe: a centred short-time Fourier transform (400-sample periodic Hann window, 160
samples = 10 ms apart, the signal reflected at both ends), power spectrum, 80 triangular mel
filters on the Slaney scale (linear below 1 kHz, logarithmic above) normalised to equal area,
``log10`` (floored at 1e-10), clamped to 8 below the loudest value, then ``(x + 4) / 4``: values
lie in ``[max - 2, max]`` with ``max`` ≤ about 2. :func:`turn_features` adds what Smart Turn
expects on top: the last 8 s only, zero-padded at the start, normalised to zero mean and unit
variance before the transform.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["FRAMES", "MEL_BINS", "RATE", "WINDOW_S", "log_mel", "mel_filters", "turn_features"]

RATE = 16000  # Hz
N_FFT, HOP = 400, 160  # 25 ms window, 10 ms hop
MEL_BINS = 80
WINDOW_S = 8  # seconds of audio the end-of-turn model sees
FRAMES = WINDOW_S * RATE // HOP  # 800
_FLOOR = 1e-10
_VARIANCE_EPS = 1e-7

Floats = npt.NDArray[np.float32]


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale: 3 mels per 200 Hz up to 1 kHz (15 mels), then 27 mels per ×6.4."""
    linear = hz * 3.0 / 200.0
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) * 27.0 / np.log(6.4)
    return np.where(hz < 1000.0, linear, logarithmic)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    linear = mel * 200.0 / 3.0
    logarithmic = 1000.0 * np.exp((mel - 15.0) * np.log(6.4) / 27.0)
    return np.where(mel < 15.0, linear, logarithmic)


def mel_filters(bins: int = MEL_BINS, n_fft: int = N_FFT, rate: int = RATE) -> npt.NDArray[np.float64]:
    """The ``(bins, n_fft // 2 + 1)`` filterbank: triangles evenly spaced in mels from 0 Hz to
    ``rate / 2``, each scaled by ``2 / width in Hz`` (equal area)."""
    top = float(_hz_to_mel(np.array([rate / 2.0]))[0])
    edges = _mel_to_hz(np.linspace(0.0, top, bins + 2))  # left, centre, right of each triangle
    fft_hz = np.arange(n_fft // 2 + 1) * rate / n_fft
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (fft_hz[None, :] - left) / (centre - left)
    falling = (right - fft_hz[None, :]) / (right - centre)
    triangles = np.clip(np.minimum(rising, falling), 0.0, None)
    return triangles * (2.0 / (right - left))


_FILTERS = mel_filters()
_WINDOW = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann, float64


def log_mel(signal: npt.NDArray[np.floating]) -> Floats:
    """Whisper's ``(80, len(signal) // 160)`` log-mel of float audio at 16 kHz (the last STFT
    frame is dropped, as Whisper does). ``signal`` must hold more than 200 samples."""
    x = np.asarray(signal, dtype=np.float64)  # numpy's float64 FFT is ~3× faster than float32
    half = N_FFT // 2
    padded = np.pad(x, (half, half), mode="reflect")
    frames = sliding_window_view(padded, N_FFT)[::HOP][:-1]  # (n, 400), views: no copy
    spectrum = np.fft.rfft(frames * _WINDOW, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    mel: npt.NDArray[np.float64] = np.log10(np.maximum(_FILTERS @ power.T, _FLOOR))
    mel = np.maximum(mel, mel.max() - 8.0)
    out: Floats = ((mel + 4.0) / 4.0).astype(np.float32)
    return out


def turn_features(pcm: npt.NDArray[np.int16]) -> Floats:
    """Smart Turn's input for int16 16 kHz mono audio of any length: ``(80, 800)`` float32.

    Only the last 8 s count; shorter audio is preceded by silence (zeros), so the end of the
    speech always sits at the end of the window. The waveform is scaled to zero mean and unit
    variance first (the model was trained on normalised audio): its loudness does not matter.
    """
    if pcm.ndim != 1:
        raise ValueError(f"expected mono audio (one dimension), got shape {pcm.shape}")
    window = np.zeros(WINDOW_S * RATE, dtype=np.float32)
    tail = pcm[-window.shape[0] :]
    if tail.shape[0]:
        window[-tail.shape[0] :] = tail.astype(np.float32) / 32768.0
    window = (window - window.mean()) / np.sqrt(window.var() + _VARIANCE_EPS)
    return log_mel(window)
