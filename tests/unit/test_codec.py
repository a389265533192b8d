"""Codec: mu-law against an independent G.711 reference, L16 in both byte orders."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from app.audio.codec import decode, detect_l16_byte_order, encode
from app.audio.formats import L16_8K, L16_16K, L16_24K, MULAW_8K, AudioFormat

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


# -- reference G.711 mu-law, written from the algorithm description -----------------------

_BIAS = 0x84
_CLIP = 32635


def ref_ulaw_encode(sample: int) -> int:
    """Sign/magnitude, clip, add bias, find the segment (exponent), take 4 mantissa bits, invert."""
    sign = 0x80 if sample < 0 else 0x00
    magnitude = min(-sample if sample < 0 else sample, _CLIP) + _BIAS
    exponent = 7
    while exponent > 0 and not magnitude & (0x80 << exponent):
        exponent -= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ref_ulaw_decode(code: int) -> int:
    code = ~code & 0xFF
    exponent = (code >> 4) & 0x07
    magnitude = ((((code & 0x0F) << 3) + _BIAS) << exponent) - _BIAS
    return -magnitude if code & 0x80 else magnitude


def _codes(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    return np.frombuffer(encode(samples, MULAW_8K), dtype=np.uint8)


# -- mu-law ---------------------------------------------------------------------------------


def test_reference_sanity() -> None:
    # Known G.711 points: silence, full scale, the segment edges.
    assert ref_ulaw_encode(0) == 0xFF
    assert ref_ulaw_encode(-1) == 0x7F
    assert ref_ulaw_encode(32767) == 0x80
    assert ref_ulaw_encode(-32768) == 0x00
    assert ref_ulaw_decode(0xFF) == 0
    assert ref_ulaw_decode(0x80) == 32124
    assert ref_ulaw_decode(0x00) == -32124


def test_mulaw_encode_matches_reference_for_every_int16() -> None:
    # G.711 mu-law quantises a 14-bit signal; the 16-bit input is reduced to 14 bits
    # by dropping the two low bits of the two's-complement value (arithmetic shift).
    expected = np.array([ref_ulaw_encode(int(x) & ~3) for x in ALL_INT16], dtype=np.uint8)
    got = _codes(ALL_INT16)
    assert got.shape == (65536,)
    np.testing.assert_array_equal(got, expected)


def test_mulaw_raw_16bit_reference_differs_only_by_truncation() -> None:
    # Applying the spec to the full 16-bit magnitude instead rounds some negative values
    # the other way: only negative inputs, only at decision boundaries, one step at most.
    raw = np.array([ref_ulaw_encode(int(x)) for x in ALL_INT16], dtype=np.int16)
    got = _codes(ALL_INT16).astype(np.int16)
    differs = np.nonzero(raw != got)[0]
    assert differs.size < 512
    assert np.all(ALL_INT16[differs] < 0)
    assert np.all(np.abs(raw[differs] - got[differs]) == 1)
    nonneg = ALL_INT16 >= 0
    np.testing.assert_array_equal(raw[nonneg], got[nonneg])


def test_mulaw_decode_matches_reference_for_every_code() -> None:
    expected = np.array([ref_ulaw_decode(c) for c in range(256)], dtype=np.int16)
    np.testing.assert_array_equal(decode(bytes(range(256)), MULAW_8K), expected)


def test_mulaw_decode_encode_is_stable() -> None:
    levels = decode(bytes(range(256)), MULAW_8K)
    codes = _codes(levels)
    # Every code survives a round trip except 0x7F ("negative zero"), which decodes to 0.
    assert [c for c in range(256) if codes[c] != c] == [0x7F]
    assert codes[0x7F] == 0xFF
    np.testing.assert_array_equal(decode(encode(levels, MULAW_8K), MULAW_8K), levels)


def test_mulaw_silence() -> None:
    assert encode(np.zeros(160, dtype=np.int16), MULAW_8K) == b"\xff" * 160
    np.testing.assert_array_equal(decode(b"\xff" * 160, MULAW_8K), np.zeros(160, dtype=np.int16))


def test_mulaw_accepts_byteswapped_input() -> None:
    x = np.array([0, 1000, -1000, 32767, -32768], dtype=np.int16)
    assert encode(x.astype(">i2"), MULAW_8K) == encode(x, MULAW_8K)


# -- L16 --------------------------------------------------------------------------------------

BIG_16K = AudioFormat("l16", 16000, "big")


@pytest.mark.parametrize(
    ("payload", "little", "big"),
    [
        (b"\x01\x00", [1], [256]),
        (b"\x00\x01", [256], [1]),
        (b"\xff\x7f", [32767], [-129]),
        (b"\x00\x80", [-32768], [128]),
        (b"\xff\xff\x00\x00", [-1, 0], [-1, 0]),
        (b"", [], []),
    ],
)
def test_l16_decode_both_byte_orders(payload: bytes, little: list[int], big: list[int]) -> None:
    np.testing.assert_array_equal(decode(payload, L16_16K), np.array(little, dtype=np.int16))
    np.testing.assert_array_equal(decode(payload, BIG_16K), np.array(big, dtype=np.int16))


@pytest.mark.parametrize("fmt", [L16_8K, L16_16K, L16_24K, BIG_16K, AudioFormat("l16", 8000, "big")])
def test_l16_round_trip_every_value(fmt: AudioFormat) -> None:
    payload = encode(ALL_INT16, fmt)
    assert len(payload) == 2 * ALL_INT16.size
    assert payload == ALL_INT16.astype("<i2" if fmt.byte_order == "little" else ">i2").tobytes()
    np.testing.assert_array_equal(decode(payload, fmt), ALL_INT16)


def test_l16_encode_byteswapped_input() -> None:
    x = np.array([1, -2, 300], dtype=">i2")
    assert encode(x, L16_16K) == b"\x01\x00\xfe\xff\x2c\x01"
    assert encode(x, BIG_16K) == b"\x00\x01\xff\xfe\x01\x2c"


@pytest.mark.parametrize("fmt", [L16_8K, L16_16K, BIG_16K])
@pytest.mark.parametrize("size", [1, 3, 641])
def test_l16_odd_byte_count(fmt: AudioFormat, size: int) -> None:
    with pytest.raises(ValueError, match=f"even number of bytes, got {size}"):
        decode(b"\x00" * size, fmt)


@pytest.mark.parametrize("fmt", [MULAW_8K, L16_16K, BIG_16K])
def test_decode_returns_writable_native_int16(fmt: AudioFormat) -> None:
    payload = bytes(fmt.frame_bytes())
    out = decode(payload, fmt)
    assert out.dtype == np.dtype(np.int16)
    assert out.dtype.isnative
    assert out.flags.writeable
    assert out.shape == (fmt.frame_bytes() // fmt.bytes_per_sample,)
    out[0] = 123  # the caller owns it
    assert decode(payload, fmt)[0] != 123


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint16, np.int8])
@pytest.mark.parametrize("fmt", [MULAW_8K, L16_16K])
def test_encode_rejects_other_dtypes(dtype: type[np.generic], fmt: AudioFormat) -> None:
    with pytest.raises(TypeError, match="int16"):
        encode(np.zeros(4, dtype=dtype), fmt)


# -- byte order detection ---------------------------------------------------------------------


def _speechlike(amplitude: float, seed: int) -> npt.NDArray[np.int16]:
    rng = np.random.default_rng(seed)
    t = np.arange(320) / 16000
    x = amplitude * np.sin(2 * np.pi * 220 * t) + rng.normal(0, amplitude / 10 + 1, t.size)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("amplitude", [30.0, 300.0, 3000.0, 12000.0])
@pytest.mark.parametrize("order", ["little", "big"])
def test_detect_l16_byte_order(amplitude: float, order: str) -> None:
    fmt = AudioFormat("l16", 16000, "little" if order == "little" else "big")
    payload = encode(_speechlike(amplitude, seed=int(amplitude)), fmt)
    assert detect_l16_byte_order(payload) == order


def test_detect_l16_byte_order_edge_cases() -> None:
    assert detect_l16_byte_order(b"") == "little"
    assert detect_l16_byte_order(bytes(640)) == "little"  # digital silence: a tie
    with pytest.raises(ValueError, match="even number of bytes"):
        detect_l16_byte_order(b"\x00\x01\x02")
