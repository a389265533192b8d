"""FrameSlicer, InboundDecoder and OutboundEncoder: exact frames, carry, padding, clear."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from app.audio.codec import decode, encode
from app.audio.formats import L16_8K, L16_16K, L16_24K, MULAW_8K, OUTBOUND_FORMATS, AudioFormat
from app.audio.frames import FrameSlicer, InboundDecoder, OutboundEncoder
from app.audio.resample import StreamResampler

Int16 = npt.NDArray[np.int16]
BIG_16K = AudioFormat("l16", 16000, "big")


def _noise(n: int, seed: int = 0) -> Int16:
    x = np.random.default_rng(seed).normal(0.0, 4000.0, n)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


# -- FrameSlicer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pushes", "frames", "pending"),
    [
        ([b""], [], 0),
        ([b"abc"], [], 3),
        ([b"abcd"], [b"abcd"], 0),
        ([b"abcdef"], [b"abcd"], 2),
        ([b"ab", b"cd"], [b"abcd"], 0),
        ([b"a", b"bc", b"de", b"fghij"], [b"abcd", b"efgh"], 2),
        ([b"abcdefghijkl"], [b"abcd", b"efgh", b"ijkl"], 0),
        ([b"abc", b"", b"defghi"], [b"abcd", b"efgh"], 1),
    ],
)
def test_slicer_carries_remainder(pushes: list[bytes], frames: list[bytes], pending: int) -> None:
    slicer = FrameSlicer(4, 0xFF)
    out = [frame for data in pushes for frame in slicer.push(data)]
    assert out == frames
    assert slicer.pending == pending


@pytest.mark.parametrize(("silence", "pad"), [(0xFF, b"\xff"), (0x00, b"\x00")])
def test_slicer_flush_pads_with_silence(silence: int, pad: bytes) -> None:
    slicer = FrameSlicer(6, silence)
    assert slicer.push(b"abcdefgh") == [b"abcdef"]
    assert slicer.flush() == b"gh" + pad * 4
    assert slicer.flush() is None
    assert slicer.pending == 0


def test_slicer_clear_and_validation() -> None:
    slicer = FrameSlicer(160, 0xFF)
    slicer.push(b"x" * 100)
    slicer.clear()
    assert slicer.flush() is None
    assert slicer.push(b"y" * 160) == [b"y" * 160]
    with pytest.raises(ValueError, match="frame_bytes"):
        FrameSlicer(0, 0)
    with pytest.raises(ValueError, match="256"):
        FrameSlicer(160, 256)


# -- InboundDecoder ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [MULAW_8K, L16_8K, L16_16K, BIG_16K])
def test_inbound_decoder_frames(fmt: AudioFormat) -> None:
    pcm = _noise(fmt.sample_rate, seed=fmt.sample_rate)  # 1 s at the wire rate
    payload = encode(pcm, fmt)
    step = fmt.frame_bytes()
    dec = InboundDecoder(fmt)
    chunks = [dec(payload[i : i + step]) for i in range(0, len(payload), step)]
    assert [c.size for c in chunks] == [320] * 50
    assert all(c.dtype == np.int16 for c in chunks)
    reference = StreamResampler(fmt.sample_rate, 16000).process(decode(payload, fmt))
    np.testing.assert_array_equal(np.concatenate(chunks), reference)
    assert dec.delay_seconds == StreamResampler(fmt.sample_rate, 16000).delay_seconds


def test_inbound_l16_16k_is_exact_passthrough() -> None:
    pcm = _noise(640)
    dec = InboundDecoder(L16_16K)
    np.testing.assert_array_equal(dec(encode(pcm, L16_16K)), pcm)
    assert dec.delay_seconds == 0.0


def test_inbound_decoder_reset_and_target_rate() -> None:
    dec = InboundDecoder(MULAW_8K, target_rate=24000)
    payload = encode(_noise(160, seed=3), MULAW_8K)
    first = dec(payload)
    assert first.size == 480
    dec(payload)
    dec.reset()
    np.testing.assert_array_equal(dec(payload), first)


def test_inbound_decoder_rejects_odd_l16() -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        InboundDecoder(L16_16K)(b"\x00" * 639)


# -- OutboundEncoder --------------------------------------------------------------------------

FRAME_SIZES = [(MULAW_8K, 160), (L16_8K, 320), (L16_16K, 640), (L16_24K, 960), (BIG_16K, 640)]


@pytest.mark.parametrize(("fmt", "size"), FRAME_SIZES)
@pytest.mark.parametrize("source_rate", [16000, 22050, 24000])
def test_outbound_exact_frames_and_counts(fmt: AudioFormat, size: int, source_rate: int) -> None:
    enc = OutboundEncoder(source_rate, fmt)
    assert enc.frame_bytes == size
    x = _noise(source_rate + 123, seed=source_rate)  # ~1 s, not a whole number of frames
    sizes = np.random.default_rng(1).integers(1, 900, 200).tolist()
    frames: list[bytes] = []
    i = 0
    for n in sizes:
        frames += enc.push(x[i : i + n])
        i += n
        if i >= x.size:
            break
    frames += enc.push(x[i:])
    produced = x.size * fmt.sample_rate // source_rate  # resampled samples, floor-exact
    samples_per_frame = size // fmt.bytes_per_sample
    assert len(frames) == produced // samples_per_frame
    assert {len(f) for f in frames} == {size}
    tail = enc.flush()
    drain = math.ceil(enc.delay_seconds * source_rate) if source_rate != fmt.sample_rate else 0
    produced_total = (x.size + drain) * fmt.sample_rate // source_rate
    assert len(frames) + len(tail) == math.ceil(produced_total / samples_per_frame)
    assert {len(f) for f in tail} <= {size}


@pytest.mark.parametrize("fmt", [MULAW_8K, L16_16K, L16_24K])
@pytest.mark.parametrize("source_rate", [16000, 22050, 24000])
def test_outbound_frames_arrive_as_soon_as_possible(fmt: AudioFormat, source_rate: int) -> None:
    # However the source is chunked, frame k is returned by the push that completes
    # the source audio it depends on, and the bytes equal a single whole-signal push.
    x = _noise(source_rate // 2, seed=11)
    enc = OutboundEncoder(source_rate, fmt)
    spf = fmt.samples_per_frame()
    frames: list[bytes] = []
    fed = 0
    for n in np.random.default_rng(2).integers(0, 1500, 40).tolist():
        got = enc.push(x[fed : fed + n])
        fed = min(fed + n, x.size)
        available = fed * fmt.sample_rate // source_rate // spf  # floor bookkeeping
        assert len(frames) + len(got) == available
        frames += got
    frames += enc.push(x[fed:]) + enc.flush()
    whole = OutboundEncoder(source_rate, fmt)
    assert frames == whole.push(x) + whole.flush()


@pytest.mark.parametrize("fmt", [L16_16K, BIG_16K, MULAW_8K])
def test_outbound_passthrough_content_and_padding(fmt: AudioFormat) -> None:
    enc = OutboundEncoder(fmt.sample_rate, fmt)
    pcm = _noise(fmt.samples_per_frame() * 2 + 100, seed=9)
    frames = enc.push(pcm)
    assert b"".join(frames) == encode(pcm[: fmt.samples_per_frame() * 2], fmt)
    (last,) = enc.flush()
    data = encode(pcm[-100:], fmt)
    assert last == data + bytes([fmt.silence_byte]) * (fmt.frame_bytes() - len(data))
    assert enc.flush() == []


@pytest.mark.parametrize("fmt", OUTBOUND_FORMATS)
@pytest.mark.parametrize("source_rate", [16000, 24000])
def test_outbound_silence_in_silence_out(fmt: AudioFormat, source_rate: int) -> None:
    enc = OutboundEncoder(source_rate, fmt)
    frames = enc.push(np.zeros(source_rate // 10, dtype=np.int16)) + enc.flush()
    assert len(frames) >= 5
    assert all(f == bytes([fmt.silence_byte]) * fmt.frame_bytes() for f in frames)


def test_outbound_flush_drains_the_filter() -> None:
    # 24 kHz TTS -> 8 kHz mu-law: a 1 kHz tone must fill its last frame up to the end.
    enc = OutboundEncoder(24000, MULAW_8K)
    t = np.arange(24000 // 50 * 3 + 240) / 24000  # 3.5 frames
    tone = np.rint(8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    frames = enc.push(tone) + enc.flush()
    assert len(frames) == 4
    last = decode(frames[-1], MULAW_8K)
    delay = round(enc.delay_seconds * 8000)
    # Without draining, samples 80.. would already be padding; with it the delayed tone
    # continues for the filter delay, then the frame is padded with exact silence.
    assert np.abs(last[80 : 80 + delay - 2]).max() > 6000
    assert np.all(last[80 + delay + 2 :] == 0)


def test_outbound_clear_drops_everything() -> None:
    enc = OutboundEncoder(16000, MULAW_8K)
    x = _noise(16000 // 50 * 2, seed=4)
    fresh = OutboundEncoder(16000, MULAW_8K).push(x)
    enc.push(_noise(500, seed=5))  # leaves a partial frame and filter history
    enc.clear()
    assert enc.flush() == []
    assert enc.push(x) == fresh


def test_outbound_after_flush_starts_afresh() -> None:
    x = _noise(1000, seed=6)
    enc = OutboundEncoder(24000, L16_16K)
    first = enc.push(x) + enc.flush()
    second = enc.push(x) + enc.flush()
    assert first == second


@pytest.mark.parametrize(("frame_ms", "size"), [(10, 80), (20, 160), (40, 320)])
def test_outbound_frame_ms(frame_ms: int, size: int) -> None:
    enc = OutboundEncoder(16000, MULAW_8K, frame_ms=frame_ms)
    assert enc.frame_duration == pytest.approx(frame_ms / 1000)
    frames = enc.push(_noise(16000, seed=7))
    assert {len(f) for f in frames} == {size}
    assert len(frames) == 8000 // (size)
