"""Streaming polyphase FIR sample-rate conversion with a small, fixed delay.

The ratio ``out_rate / in_rate`` is reduced to ``L / M``. Conceptually the input
is upsampled by ``L`` (zero stuffing), filtered by one linear-phase low-pass FIR
``h`` designed at ``in_rate * L`` Hz, then decimated by ``M``; only the products
that survive decimation are computed. With the documented alignment, output
sample ``n`` is exactly::

    y[n] = sum_j taps[n*M - j*L] * x[j]

i.e. ``scipy.signal.upfirdn(taps, x, L, M)`` truncated to the samples emitted so
far (``taps`` already includes the gain ``L``). After ``N`` input samples in
total, exactly ``floor(N * L / M)`` output samples have been produced, however
the input was chunked. The output lags the input by ``delay_seconds``.

Filter: Kaiser-windowed sinc, stopband starting at the lower of the two Nyquist
frequencies (nothing above the output Nyquist can alias), transition band
``TRANSITION_FRACTION`` of that Nyquist wide, ``STOPBAND_DB`` design
attenuation. The group delay depends only on the transition width in Hz: about
2.8 ms when either side is 8 kHz, less for wider bands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

import numpy as np
import numpy.typing as npt

__all__ = ["STOPBAND_DB", "TRANSITION_FRACTION", "StreamResampler"]

#: Kaiser design attenuation in dB (measured stopband of the taps is >= 60 dB).
STOPBAND_DB = 65.0
#: Transition band width as a fraction of the lower Nyquist frequency (700 Hz at 8 kHz).
TRANSITION_FRACTION = 0.175

_Float = npt.NDArray[np.float64]
_Int16 = npt.NDArray[np.int16]
_T = TypeVar("_T", bound=np.generic)
_SMALL = 8  # largest L handled by the matrix-product strategies
_F8 = np.dtype(np.float64).itemsize


def _frozen(a: npt.NDArray[_T]) -> npt.NDArray[_T]:
    a.setflags(write=False)
    return a


_NO_INDEX: npt.NDArray[np.intp] = _frozen(np.zeros(0, dtype=np.intp))
_NO_COEFFS: _Float = _frozen(np.zeros((0, 0), dtype=np.float64))
_UNIT_TAPS: _Float = _frozen(np.ones(1, dtype=np.float64))


@dataclass(frozen=True, slots=True)
class _Design:
    up: int  # L
    down: int  # M
    taps: _Float  # prototype filter at in_rate * L, gain L included
    phases_rev: _Float  # (L, K): phases_rev[p] = taps[p::L] zero-padded to K, reversed
    phases_rev_t: _Float  # (K, L) contiguous transpose, for the gemm strategy
    delay_seconds: float

    @property
    def taps_per_phase(self) -> int:
        return int(self.phases_rev.shape[1])

    @property
    def history(self) -> int:
        # Input samples kept between calls: one window plus the look-back that an
        # output not yet emitted (floor bookkeeping) can still need.
        return self.taps_per_phase + -(-self.down // self.up)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to compute the outputs that one chunk completes (all indices into history+chunk)."""

    count: int  # outputs this chunk produces
    kind: str  # "gemm", "classes" or "gather"
    first_row: int = 0  # gemm: first window start; rows are consecutive
    n_rows: int = 0  # gemm: number of consecutive windows
    select: npt.NDArray[np.intp] = field(
        default_factory=lambda: _NO_INDEX
    )  # gemm: flat picks from (rows, L); empty = take all
    classes: tuple[tuple[int, int, int, int], ...] = ()  # (slot, first row, n, phase), stride M
    index: npt.NDArray[np.intp] = field(
        default_factory=lambda: _NO_INDEX
    )  # gather: (count, K) sample indices
    coeffs: _Float = field(
        default_factory=lambda: _NO_COEFFS
    )  # gather: (count, K) reversed phase filter per output


@lru_cache(maxsize=32)
def _design(in_rate: int, out_rate: int) -> _Design:
    g = math.gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    nyquist = min(in_rate, out_rate) / 2.0
    width = TRANSITION_FRACTION * nyquist  # Hz
    cutoff = nyquist - width / 2.0  # stopband edge lands exactly on the lower Nyquist
    fs = float(in_rate * up)  # rate the prototype runs at
    # Kaiser's length and beta formulas for the requested attenuation and width.
    n = math.ceil((STOPBAND_DB - 7.95) / (2.285 * 2.0 * math.pi * width / fs)) + 1
    beta = 0.1102 * (STOPBAND_DB - 8.7)
    t = (np.arange(n, dtype=np.float64) - (n - 1) / 2.0) / fs
    taps = np.sinc(2.0 * cutoff * t) * np.kaiser(n, beta)
    taps *= up / taps.sum()  # unity DC gain after zero stuffing
    k = -(-n // up)
    padded = np.zeros(k * up, dtype=np.float64)
    padded[:n] = taps
    phases_rev = np.ascontiguousarray(padded.reshape(k, up).T[:, ::-1])
    phases_rev_t = np.ascontiguousarray(phases_rev.T)
    return _Design(up, down, _frozen(taps), _frozen(phases_rev), _frozen(phases_rev_t), (n - 1) / 2.0 / fs)


@lru_cache(maxsize=32)
def _plan(in_rate: int, out_rate: int, offset: int, count_in: int) -> _Plan:
    """Plan for a chunk of ``count_in`` samples when (samples consumed) mod M == ``offset``.

    The offset and the chunk length fully determine which outputs the chunk
    completes and where their windows start, so a steady 20 ms stream reuses one
    plan. Three strategies, picked by the reduced ratio L/M:

    * ``gemm`` (L >= M, both small): every window of consecutive input times every
      phase in one matrix product, then pick the wanted (window, phase) pairs;
    * ``classes`` (small L): outputs n = s (mod L) share a phase and their windows
      are M samples apart, so each class is one matrix-vector product on a strided view;
    * ``gather`` (large L, e.g. 22.05 kHz): copy each output's window and multiply
      by its own phase filter.
    """
    d = _design(in_rate, out_rate)
    up, down, k = d.up, d.down, d.taps_per_phase
    first = offset * up // down  # outputs already emitted since the last M-period start
    last = (offset + count_in) * up // down
    pos = np.arange(first, last, dtype=np.int64) * down  # upsampled time of each output
    # Window start in the buffer: newest needed input is pos // up (chunk-relative: - offset),
    # the buffer starts d.history samples before the chunk and a window is k samples long.
    rows = pos // up - offset + d.history - k + 1
    phase = pos % up
    count = int(rows.shape[0])
    if count == 0:
        return _Plan(0, "gemm")
    if up <= _SMALL and down <= 3 and up >= down:
        r0 = int(rows[0])
        select = _NO_INDEX if down == 1 else _frozen(((rows - r0) * up + phase).astype(np.intp))
        return _Plan(count, "gemm", first_row=r0, n_rows=int(rows[-1]) - r0 + 1, select=select)
    if up <= _SMALL:
        classes = tuple(
            (s, int(rows[s]), len(range(s, count, up)), int(phase[s])) for s in range(min(up, count))
        )
        return _Plan(count, "classes", classes=classes)
    index = _frozen((rows[:, None] + np.arange(k)).astype(np.intp))
    return _Plan(count, "gather", index=index, coeffs=_frozen(np.ascontiguousarray(d.phases_rev[phase])))


class StreamResampler:
    """Stateful int16 -> int16 resampler from ``in_rate`` Hz to ``out_rate`` Hz.

    Feed chunks of any length (including empty) to :meth:`process`; the
    concatenated output is identical to processing the whole signal at once.
    Equal rates pass samples through untouched with zero delay. Not thread-safe;
    one instance per direction per call.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        for name, rate in (("in_rate", in_rate), ("out_rate", out_rate)):
            if isinstance(rate, bool) or not isinstance(rate, int) or not 1000 <= rate <= 192000:
                raise ValueError(f"{name} must be an int in 1000..192000 Hz, got {rate!r}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._design = _design(in_rate, out_rate) if in_rate != out_rate else None
        self.reset()

    @property
    def ratio(self) -> float:
        """``out_rate / in_rate``."""
        return self.out_rate / self.in_rate

    @property
    def up(self) -> int:
        """Interpolation factor L of the reduced ratio L/M."""
        return self._design.up if self._design else 1

    @property
    def down(self) -> int:
        """Decimation factor M of the reduced ratio L/M."""
        return self._design.down if self._design else 1

    @property
    def delay_seconds(self) -> float:
        """Group delay of the filter in seconds (0.0 when passing through)."""
        return self._design.delay_seconds if self._design else 0.0

    @property
    def taps(self) -> _Float:
        """Read-only prototype filter at ``in_rate * L`` Hz, including the gain ``L``."""
        return self._design.taps if self._design else _UNIT_TAPS

    @property
    def samples_in(self) -> int:
        """Input samples consumed since construction or :meth:`reset`."""
        return self._samples_in

    @property
    def samples_out(self) -> int:
        """Output samples produced since construction or :meth:`reset`; always ``floor(in*L/M)``."""
        return self._samples_out

    def reset(self) -> None:
        """Forget all history: the next sample is treated as the start of a new signal."""
        hist = self._design.history if self._design else 0
        # [history | chunk | spare]: history is kept at the front between calls, the
        # chunk is written after it, so no per-call concatenation is needed.
        self._buf: _Float = np.zeros(hist + 1024, dtype=np.float64)
        self._offset = 0
        self._samples_in = 0
        self._samples_out = 0

    def process(self, x: _Int16) -> _Int16:
        """Resample the next chunk of 1-D int16 samples; returns new int16 samples.

        Output values are rounded to nearest and clipped to the int16 range. Other
        dtypes are rejected with ``TypeError`` (no silent wrap-around of floats or int32).
        """
        if x.dtype.kind != "i" or x.dtype.itemsize != 2:
            raise TypeError(f"expected int16 samples, got dtype {x.dtype}")
        if x.ndim != 1:
            raise ValueError(f"expected a 1-D array of samples, got shape {x.shape}")
        count_in = int(x.shape[0])
        self._samples_in += count_in
        if self._design is None:
            self._samples_out += count_in
            return np.array(x, dtype=np.int16)
        d = self._design
        hist = d.history
        if hist + count_in > self._buf.shape[0]:
            grown = np.zeros(hist + count_in, dtype=np.float64)
            grown[:hist] = self._buf[:hist]
            self._buf = grown
        buf = self._buf
        buf[hist : hist + count_in] = x
        plan = _plan(self.in_rate, self.out_rate, self._offset, count_in)
        self._offset = (self._offset + count_in) % d.down
        if plan.count == 0:
            buf[:hist] = buf[count_in : count_in + hist]
            return np.zeros(0, dtype=np.int16)
        k = d.taps_per_phase
        y: _Float
        if plan.kind == "gemm":
            view = np.ndarray((plan.n_rows, k), np.float64, buf, plan.first_row * _F8, (_F8, _F8))
            y = np.dot(view, d.phases_rev_t).ravel()
            if plan.select.shape[0]:
                y = y.take(plan.select)
        elif plan.kind == "classes":
            y = np.empty(plan.count, dtype=np.float64)
            stride = (d.down * _F8, _F8)
            for slot, row, n, phase in plan.classes:
                view = np.ndarray((n, k), np.float64, buf, row * _F8, stride)
                y[slot :: d.up] = np.dot(view, d.phases_rev[phase])
        else:
            y = np.einsum("ij,ij->i", buf.take(plan.index), plan.coeffs)
        buf[:hist] = buf[count_in : count_in + hist]  # y no longer refers to buf
        self._samples_out += plan.count
        np.rint(y, out=y)
        np.minimum(y, 32767.0, out=y)  # two ufuncs: cheaper than np.clip's Python wrapper
        np.maximum(y, -32768.0, out=y)
        return y.astype(np.int16)
