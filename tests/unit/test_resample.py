"""StreamResampler: chunking invariance, an independent reference, gain, delay, aliasing, drift."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy.signal import upfirdn

from app.audio.resample import StreamResampler

RATES = (8000, 16000, 22050, 24000)
PAIRS = [(a, b) for a in RATES for b in RATES if a != b]
DOWN_PAIRS = [(a, b) for a, b in PAIRS if b < a]
UP_PAIRS = [(a, b) for a, b in PAIRS if b > a]

Int16 = npt.NDArray[np.int16]
Float = npt.NDArray[np.float64]


def _noise(n: int, seed: int = 1, scale: float = 6000.0) -> Int16:
    x = np.random.default_rng(seed).normal(0.0, scale, n)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def _tone(freq: float, rate: int, seconds: float, amplitude: float) -> Int16:
    t = np.arange(round(rate * seconds)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def _chunked(r: StreamResampler, x: Int16, sizes: list[int]) -> Int16:
    parts, i = [], 0
    for size in sizes:
        parts.append(r.process(x[i : i + size]))
        i += size
    assert i >= x.size
    return np.concatenate(parts)


def _fit(y: Float, freq: float, rate: int, start: int) -> tuple[float, float]:
    """Least-squares amplitude and phase of a sinusoid at ``freq`` in ``y[start:]``."""
    t = np.arange(start, y.size) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    (a, b), *_ = np.linalg.lstsq(basis, y[start:], rcond=None)
    return math.hypot(a, b), math.atan2(b, a)


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_chunking_does_not_change_output(a: int, b: int) -> None:
    x = _noise(a // 2, seed=a + b)
    whole = StreamResampler(a, b).process(x)
    frame = a // 50
    twenty_ms = _chunked(StreamResampler(a, b), x, [frame] * (x.size // frame + 1))
    sizes = [int(s) for s in np.random.default_rng(7).integers(0, 700, 200)]
    irregular = _chunked(StreamResampler(a, b), x, [*sizes, 0, 1, 1, 3, x.size])
    np.testing.assert_array_equal(twenty_ms, whole)
    np.testing.assert_array_equal(irregular, whole)


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_matches_upfirdn_with_the_same_taps(a: int, b: int) -> None:
    r = StreamResampler(a, b)
    x = _noise(a // 4, seed=3, scale=3000.0)
    y = np.concatenate([r.process(x[i : i + 160]) for i in range(0, x.size, 160)])
    assert r.up * a == r.down * b
    assert math.gcd(r.up, r.down) == 1
    # Documented alignment: the output is upfirdn's output, same index, truncated to
    # floor(N*L/M) samples (no extra shift; the filter delay is inside the taps).
    assert y.size == x.size * r.up // r.down
    ref = np.asarray(upfirdn(r.taps, x.astype(np.float64), r.up, r.down), dtype=np.float64)[: y.size]
    ref = np.clip(np.rint(ref), -32768, 32767)
    diff = np.abs(y.astype(np.float64) - ref)
    assert diff.max() <= 1.0  # only float summation order may differ ...
    assert np.count_nonzero(diff) <= y.size // 1000  # ... and then almost never flips a rounding


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_filter_design(a: int, b: int) -> None:
    r = StreamResampler(a, b)
    taps = r.taps
    assert not taps.flags.writeable
    np.testing.assert_allclose(taps, taps[::-1], atol=1e-12)  # linear phase
    assert r.delay_seconds == pytest.approx((taps.size - 1) / 2 / (a * r.up))
    assert 0.0 < r.delay_seconds <= 0.003
    # Stopband from the lower Nyquist upwards, measured on a fine frequency grid.
    n_fft = 1 << 20
    response = np.abs(np.fft.rfft(taps, n_fft))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / (a * r.up))
    stop = response[freqs >= min(a, b) / 2].max() / response[0]
    assert 20 * math.log10(stop) <= -60.0
    passband = response[freqs <= 0.8 * min(a, b) / 2] / response[0]
    assert np.all(np.abs(20 * np.log10(passband)) < 0.01)


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_sine_gain_and_phase_delay(a: int, b: int) -> None:
    r = StreamResampler(a, b)
    amplitude = 10000.0
    x = _tone(1000.0, a, 0.2, amplitude)
    y = np.concatenate([r.process(x[i : i + a // 50]) for i in range(0, x.size, a // 50)])
    got, phase = _fit(y.astype(np.float64), 1000.0, b, start=b // 100)  # skip the 10 ms warm-up
    assert abs(20 * math.log10(got / amplitude)) < 0.5
    # Delayed by D: sin(w(t - D)) has phase -wD (mod 2π) relative to the input.
    expected = -2 * np.pi * 1000.0 * r.delay_seconds
    error = (phase - expected + np.pi) % (2 * np.pi) - np.pi
    assert abs(error) < 0.01  # rad, i.e. < 1.6 µs at 1 kHz


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_pulse_delay_by_cross_correlation(a: int, b: int) -> None:
    r = StreamResampler(a, b)
    sigma, t0 = 0.0005, 0.010  # s: Gaussian pulse, well inside every passband
    x = np.rint(12000 * np.exp(-0.5 * ((np.arange(a // 25) / a - t0) / sigma) ** 2)).astype(np.int16)
    y = r.process(x).astype(np.float64)
    t_out = np.arange(y.size) / b
    near = np.abs(t_out - t0 - 0.002) < 0.006  # where the delayed pulse can be
    y, t_out = y[near], t_out[near]
    lags = np.arange(0.0, 0.004, 2e-6)
    templates = np.exp(-0.5 * ((t_out[None, :] - t0 - lags[:, None]) / sigma) ** 2)
    corr = templates @ y
    best = int(np.argmax(corr))
    assert 0 < best < lags.size - 1
    assert abs(lags[best] - r.delay_seconds) <= 4e-6
    # A unambiguous (non-periodic) signal: the delay is the whole group delay, not modulo 1 ms.
    assert abs(y.max() / x.max() - 1.0) < 0.02


@pytest.mark.parametrize(("a", "b"), DOWN_PAIRS)
@pytest.mark.parametrize("where", [0.0, 0.3, 0.7, 0.97])
def test_no_aliasing_when_downsampling(a: int, b: int, where: float) -> None:
    # A tone between the output Nyquist (plus 20 Hz) and the input Nyquist.
    freq = b / 2 + 20.0 + where * (a / 2 - b / 2 - 20.0)
    r = StreamResampler(a, b)
    amplitude = 16000.0
    y = r.process(_tone(freq, a, 0.2, amplitude)).astype(np.float64)
    steady = y[b // 50 :]
    rms_db = 20 * math.log10(max(float(np.sqrt(np.mean(steady**2))), 1e-9) / (amplitude / math.sqrt(2)))
    assert rms_db <= -50.0


@pytest.mark.parametrize(("a", "b"), UP_PAIRS)
def test_no_images_when_upsampling(a: int, b: int) -> None:
    r = StreamResampler(a, b)
    y = r.process(_tone(1000.0, a, 0.5, 16000.0)).astype(np.float64)[b // 50 :]
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size))) ** 2
    freqs = np.fft.rfftfreq(y.size, 1.0 / b)
    images = spectrum[freqs >= a / 2].sum() / spectrum.sum()
    assert 10 * math.log10(images) <= -60.0


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_output_count_never_drifts(a: int, b: int) -> None:
    r = StreamResampler(a, b)
    total_in = total_out = 0
    rng = np.random.default_rng(a * b)
    chunk = np.zeros(1100, dtype=np.int16)
    for size in [*rng.integers(0, 1100, 150).tolist(), *[a // 50] * 100, 997, 1]:
        total_out += r.process(chunk[:size]).size
        total_in += size
        assert total_out == total_in * r.up // r.down
        assert (r.samples_in, r.samples_out) == (total_in, total_out)


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_twenty_ms_frames_give_exact_frame_sizes(a: int, b: int) -> None:
    r = StreamResampler(a, b)
    sizes = {r.process(_noise(a // 50, seed=i)).size for i in range(20)}
    assert sizes == {b // 50}


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_reset_starts_a_new_signal(a: int, b: int) -> None:
    x = _noise(a // 10, seed=5)
    r = StreamResampler(a, b)
    r.process(_noise(a // 7, seed=6))
    r.reset()
    assert (r.samples_in, r.samples_out) == (0, 0)
    np.testing.assert_array_equal(r.process(x), StreamResampler(a, b).process(x))


@pytest.mark.parametrize("rate", RATES)
def test_equal_rates_pass_through(rate: int) -> None:
    r = StreamResampler(rate, rate)
    x = _noise(999, seed=2)
    y = r.process(x)
    np.testing.assert_array_equal(y, x)
    y[0] ^= 1  # a copy, not a view of the caller's buffer
    assert y[0] != x[0]
    assert (r.delay_seconds, r.ratio, r.up, r.down) == (0.0, 1.0, 1, 1)
    assert r.samples_out == 999


def test_properties() -> None:
    r = StreamResampler(22050, 16000)
    assert (r.up, r.down) == (320, 441)
    assert r.ratio == pytest.approx(16000 / 22050)


def test_output_is_clipped_not_wrapped() -> None:
    # A full-scale square wave overshoots (Gibbs); the output must saturate.
    x = np.tile(np.array([32767] * 20 + [-32768] * 20, dtype=np.int16), 50)
    y = StreamResampler(8000, 16000).process(x)
    assert y.dtype == np.int16
    assert y.max() == 32767
    assert y.min() == -32768


def test_rejects_bad_input() -> None:
    r = StreamResampler(8000, 16000)
    with pytest.raises(TypeError, match="int16"):
        r.process(np.zeros(160, dtype=np.float32))
    with pytest.raises(ValueError, match="1-D"):
        r.process(np.zeros((2, 80), dtype=np.int16))
    with pytest.raises(ValueError, match="in_rate"):
        StreamResampler(0, 16000)
    with pytest.raises(ValueError, match="out_rate"):
        StreamResampler(16000, 10**7)
