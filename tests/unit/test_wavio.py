"""WAV reading/writing: round trips, every integer sample width, mix-down, rate conversion, bad files."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from app.audio.wavio import read_wav, resample_clip, write_wav

Int16 = npt.NDArray[np.int16]


def _write_raw(path: Path, frames: bytes, *, width: int, channels: int, rate: int) -> None:
    """Write a WAV with stdlib ``wave`` directly, independent of ``write_wav``."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)


def _read_raw(path: Path) -> tuple[tuple[int, int, int, int], Int16]:
    """(channels, sample width, rate, frames) and the raw interleaved int16 samples, via stdlib ``wave``."""
    with wave.open(str(path), "rb") as w:
        p = w.getparams()
        data = np.frombuffer(w.readframes(p.nframes), dtype="<i2").astype(np.int16)
    return (p.nchannels, p.sampwidth, p.framerate, p.nframes), data


def _noise(n: int, seed: int) -> Int16:
    x = np.random.default_rng(seed).integers(-32768, 32768, n, dtype=np.int64)
    x[:2] = [-32768, 32767][: min(n, 2)]  # the extremes survive a round trip
    return x.astype(np.int16)


def test_mono_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "mono.wav"
    pcm = _noise(5000, seed=1)
    write_wav(path, [pcm], 16000)
    params, raw = _read_raw(path)
    assert params == (1, 2, 16000, 5000)
    np.testing.assert_array_equal(raw, pcm)
    back = read_wav(path, 16000)
    assert back.dtype == np.int16
    np.testing.assert_array_equal(back, pcm)


def test_stereo_round_trip_interleaves_and_pads_the_shorter_channel(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    left = (_noise(300, seed=2) // 2 * 2).astype(np.int16)  # even values: the mean of L and R is exact
    right = (_noise(180, seed=3) // 2 * 2).astype(np.int16)
    write_wav(str(path), [left, right], 8000)
    params, raw = _read_raw(path)
    assert params == (2, 2, 8000, 300)
    np.testing.assert_array_equal(raw[0::2], left)
    np.testing.assert_array_equal(raw[1::2][:180], right)
    np.testing.assert_array_equal(raw[1::2][180:], np.zeros(120, dtype=np.int16))
    padded = np.concatenate([right, np.zeros(120, dtype=np.int16)])
    expected = (left.astype(np.int32) + padded.astype(np.int32)) // 2
    np.testing.assert_array_equal(read_wav(path, 8000), expected.astype(np.int16))


def test_three_channels_and_big_endian_input(tmp_path: Path) -> None:
    path = tmp_path / "three.wav"
    chans = [np.array([1, 2, 3], dtype=np.int16), np.array([-4], dtype=">i2"), np.zeros(0, dtype=np.int16)]
    write_wav(path, chans, 24000)
    params, raw = _read_raw(path)
    assert (params[0], params[3]) == (3, 3)
    assert raw.tolist() == [1, -4, 0, 2, 0, 0, 3, 0, 0]


def test_eight_bit_unsigned(tmp_path: Path) -> None:
    path = tmp_path / "u8.wav"
    _write_raw(path, bytes([0, 64, 128, 192, 255]), width=1, channels=1, rate=8000)
    assert read_wav(path, 8000).tolist() == [-32768, -16384, 0, 16384, 32512]


def test_twenty_four_bit_keeps_the_top_sixteen_bits_rounded(tmp_path: Path) -> None:
    path = tmp_path / "s24.wav"
    values = [0, 0x123400, -0x123400, 0x7FFFFF, -0x800000, 0x1233FF, -0x40]
    frames = b"".join(v.to_bytes(3, "little", signed=True) for v in values)
    _write_raw(path, frames, width=3, channels=1, rate=16000)
    assert read_wav(path, 16000).tolist() == [0, 0x1234, -0x1234, 32767, -32768, 0x1234, 0]


def test_thirty_two_bit(tmp_path: Path) -> None:
    path = tmp_path / "s32.wav"
    values = [0, 0x12340000, -0x12340000, 2**31 - 1, -(2**31), 0x1233FFFF]
    frames = b"".join(v.to_bytes(4, "little", signed=True) for v in values)
    _write_raw(path, frames, width=4, channels=1, rate=16000)
    assert read_wav(path, 16000).tolist() == [0, 0x1234, -0x1234, 32767, -32768, 0x1234]


def test_stereo_files_are_mixed_down(tmp_path: Path) -> None:
    path = tmp_path / "stereo16.wav"
    left = [1000, -2000, 32767, -32768, 500]
    right = [3000, -4000, 32767, -32768, -500]
    frames = np.array([v for pair in zip(left, right, strict=True) for v in pair], dtype="<i2").tobytes()
    _write_raw(path, frames + b"\x01", width=2, channels=2, rate=16000)  # plus a partial frame
    assert read_wav(path, 16000).tolist() == [2000, -3000, 32767, -32768, 0]


def test_stereo_twenty_four_bit(tmp_path: Path) -> None:
    path = tmp_path / "stereo24.wav"
    values = [0x010000, 0x030000, -0x100000, -0x200000]  # frames (L, R)
    frames = b"".join(v.to_bytes(3, "little", signed=True) for v in values)
    _write_raw(path, frames, width=3, channels=2, rate=16000)
    assert read_wav(path, 16000).tolist() == [0x200, -0x1800]


def test_44100_to_16000_keeps_a_1khz_tone_in_place(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    t = np.arange(44100) / 44100
    tone = np.rint(10000 * np.sin(2 * np.pi * 1000 * t)).astype("<i2")
    _write_raw(path, tone.tobytes(), width=2, channels=1, rate=44100)
    out = read_wav(path, 16000)
    assert out.dtype == np.int16
    assert out.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    assert int(np.argmax(spectrum)) == 1000  # 1 Hz bins
    # Least-squares fit away from the edges: gain ~1 and phase ~0, i.e. the
    # resampler's ~1.4 ms delay was removed (to within half an output sample).
    n = np.arange(200, 15800)
    basis = np.stack([np.sin(2 * np.pi * 1000 * n / 16000), np.cos(2 * np.pi * 1000 * n / 16000)], axis=1)
    (a, b), *_ = np.linalg.lstsq(basis, out[200:15800].astype(np.float64), rcond=None)
    assert math.hypot(a, b) == pytest.approx(10000, rel=0.01)
    assert abs(math.atan2(b, a)) < 2 * np.pi * 1000 * 0.5 / 16000


@pytest.mark.parametrize(
    ("in_rate", "out_rate"), [(22050, 16000), (16000, 8000), (8000, 24000), (16000, 16000)]
)
def test_resample_clip_length_is_exact(in_rate: int, out_rate: int) -> None:
    for n in (0, 1, 441, 12345):
        pcm = _noise(n, seed=n) // 4
        out = resample_clip(pcm.astype(np.int16), in_rate, out_rate)
        assert out.dtype == np.int16
        assert out.shape == (n * out_rate // in_rate,)


def test_equal_rates_return_an_independent_copy() -> None:
    pcm = np.arange(10, dtype=np.int16)
    out = resample_clip(pcm, 16000, 16000)
    out[0] = 99
    assert pcm[0] == 0


BAD_FILES: dict[str, bytes] = {
    "empty": b"",
    "garbage": b"this is not a wav file at all, just some text",
    "riff-not-wave": b"RIFF\x04\x00\x00\x00AVI ",
    "truncated-fmt": b"RIFF\x10\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00",
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_files_raise_value_error_naming_the_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.wav"
    path.write_bytes(BAD_FILES[kind])
    with pytest.raises(ValueError, match="is not a readable WAV file") as info:
        read_wav(path, 16000)
    assert str(path) in str(info.value)
    assert "BufferedReader" not in str(info.value)  # libsndfile's reason, not Python's repr


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_float_wav_as_audacity_writes_it_is_read(tmp_path: Path, subtype: str) -> None:
    path = tmp_path / "float.wav"
    t = np.arange(44100) / 44100
    soundfile.write(path, 0.5 * np.sin(2 * np.pi * 440 * t), 44100, subtype=subtype)
    pcm = read_wav(path, 16000)
    assert pcm.dtype == np.int16
    assert len(pcm) == 16000
    assert 16000 < int(np.abs(pcm[1000:15000]).max()) <= 16400  # half of full scale


def test_extensible_and_mulaw_headers_are_read(tmp_path: Path) -> None:
    tone = (8000 * np.sin(2 * np.pi * 300 * np.arange(8000) / 8000)).astype(np.int16)
    for name, kwargs in {
        "ext": {"subtype": "PCM_16", "format": "WAVEX"},
        "ulaw": {"subtype": "ULAW"},
    }.items():
        path = tmp_path / f"{name}.wav"
        soundfile.write(path, tone, 8000, **kwargs)
        pcm = read_wav(path, 8000)
        assert len(pcm) == 8000
        assert int(np.abs(pcm.astype(np.int32) - tone).max()) < 400, name  # μ-law is lossy


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_wav(tmp_path / "nope.wav", 16000)


def test_write_wav_rejects_bad_arguments(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    pcm = np.zeros(4, dtype=np.int16)
    with pytest.raises(TypeError, match=r"\[pcm\]"):
        write_wav(path, pcm, 16000)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one channel"):
        write_wav(path, [], 16000)
    with pytest.raises(TypeError, match="int16"):
        write_wav(path, [pcm.astype(np.float32)], 16000)
    with pytest.raises(ValueError, match="1-D"):
        write_wav(path, [pcm.reshape(2, 2)], 16000)
    with pytest.raises(ValueError, match="sample_rate"):
        write_wav(path, [pcm], 0)
    assert not path.exists()
