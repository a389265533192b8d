"""AudioFormat: canonical strings, frame sizes, liberal parsing, clear errors."""

from __future__ import annotations

import dataclasses
import re

import pytest

from app.audio.formats import (
    INBOUND_FORMATS,
    L16_8K,
    L16_16K,
    L16_24K,
    MULAW_8K,
    OUTBOUND_FORMATS,
    AudioFormat,
    check_stream_format,
)


@pytest.mark.parametrize(
    ("fmt", "mime", "content_type", "silence", "width", "frame20"),
    [
        (MULAW_8K, "audio/x-mulaw", "audio/x-mulaw;rate=8000", 0xFF, 1, 160),
        (L16_8K, "audio/x-l16", "audio/x-l16;rate=8000", 0x00, 2, 320),
        (L16_16K, "audio/x-l16", "audio/x-l16;rate=16000", 0x00, 2, 640),
        (L16_24K, "audio/x-l16", "audio/x-l16;rate=24000", 0x00, 2, 960),
    ],
)
def test_standard_formats(
    fmt: AudioFormat, mime: str, content_type: str, silence: int, width: int, frame20: int
) -> None:
    assert fmt.mime == mime
    assert fmt.content_type == content_type
    assert fmt.silence_byte == silence
    assert fmt.bytes_per_sample == width
    assert fmt.frame_bytes() == frame20
    assert fmt.frame_bytes(20) == frame20
    assert fmt.frame_bytes(10) == frame20 // 2
    assert fmt.byte_order == "little"


def test_inbound_and_outbound_sets() -> None:
    assert INBOUND_FORMATS == (MULAW_8K, L16_8K, L16_16K)
    assert OUTBOUND_FORMATS == (MULAW_8K, L16_8K, L16_16K, L16_24K)


@pytest.mark.parametrize("fmt", [*OUTBOUND_FORMATS, AudioFormat("l16", 16000, "big")])
def test_content_type_round_trips(fmt: AudioFormat) -> None:
    assert AudioFormat.from_content_type(fmt.content_type, byte_order=fmt.byte_order) == fmt


@pytest.mark.parametrize(
    ("ct", "expected"),
    [
        ("audio/x-mulaw;rate=8000", MULAW_8K),
        ("audio/x-mulaw", MULAW_8K),
        ("AUDIO/X-MULAW; RATE=8000", MULAW_8K),
        ("audio/x-ulaw", MULAW_8K),
        ("audio/PCMU", MULAW_8K),
        ("audio/basic", MULAW_8K),
        ("audio/x-l16", L16_8K),
        ("audio/x-l16;rate=8000", L16_8K),
        ("audio/x-l16;rate=16000", L16_16K),
        ("audio/x-l16; rate=16000", L16_16K),
        ("  audio/x-l16 ;  rate = 16000 ", L16_16K),
        ("audio/L16;rate=24000", L16_24K),
        ("audio/pcm;rate=16000", L16_16K),
        ("audio/x-l16;channels=1;rate=16000", L16_16K),
        ("audio/x-l16;sampleRate=16000", L16_16K),
        ("audio/x-l16;rate=44100", AudioFormat("l16", 44100)),
    ],
)
def test_from_content_type_is_liberal(ct: str, expected: AudioFormat) -> None:
    assert AudioFormat.from_content_type(ct) == expected


def test_from_content_type_keeps_byte_order() -> None:
    fmt = AudioFormat.from_content_type("audio/x-l16;rate=16000", byte_order="big")
    assert fmt == AudioFormat("l16", 16000, "big")
    assert fmt.content_type == "audio/x-l16;rate=16000"


@pytest.mark.parametrize(
    ("ct", "named"),
    [
        ("audio/opus", "audio/opus"),
        ("", "''"),
        ("audio/x-mulaw;rate=16000", "16000"),
        ("audio/x-l16;rate=0", "0"),
        ("audio/x-l16;rate=-16000", "-16000"),
        ("audio/x-l16;rate=96000", "96000"),
        ("audio/x-l16;rate=4000", "4000"),
        ("audio/x-l16;rate=fast", "fast"),
    ],
)
def test_from_content_type_rejects_with_named_value(ct: str, named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        AudioFormat.from_content_type(ct)


@pytest.mark.parametrize(
    ("encoding", "rate", "expected"),
    [
        ("audio/x-l16", 16000, L16_16K),
        ("audio/x-l16", "16000", L16_16K),
        ("audio/x-l16", " 16000 ", L16_16K),
        ("audio/x-l16", 16000.0, L16_16K),
        ("audio/x-l16", "16000.0", L16_16K),
        ("audio/x-l16", None, L16_8K),
        ("audio/x-l16", 8000, L16_8K),
        ("audio/x-l16", 24000, L16_24K),
        ("audio/x-mulaw", 8000, MULAW_8K),
        ("audio/x-mulaw", "8000", MULAW_8K),
        ("audio/x-mulaw", None, MULAW_8K),
        ("PCMU", 8000, MULAW_8K),
        ("ulaw", None, MULAW_8K),
        ("L16", "16000", L16_16K),
        ("audio/x-l16;rate=16000", None, L16_16K),
        ("audio/x-l16;rate=16000", 16000, L16_16K),
    ],
)
def test_from_media_format(encoding: str, rate: int | float | str | None, expected: AudioFormat) -> None:
    assert AudioFormat.from_media_format(encoding, rate) == expected


def test_from_media_format_keeps_byte_order() -> None:
    fmt = AudioFormat.from_media_format("audio/x-l16", 16000, byte_order="big")
    assert fmt.byte_order == "big"


@pytest.mark.parametrize(
    ("encoding", "rate", "named"),
    [
        ("audio/x-mulaw", 16000, "16000"),
        ("audio/x-mulaw", "16000", "16000"),
        ("audio/opus", 16000, "audio/opus"),
        ("audio/x-l16", 0, "0"),
        ("audio/x-l16", -16000, "-16000"),
        ("audio/x-l16", "abc", "abc"),
        ("audio/x-l16", "", "''"),
        ("audio/x-l16", 1_000_000, "1000000"),
        ("audio/x-l16", 16000.5, "16000.5"),
        ("audio/x-l16", True, "True"),
        ("audio/x-l16;rate=8000", 16000, "16000"),
    ],
)
def test_from_media_format_rejects_with_named_value(
    encoding: str, rate: int | float | str | None, named: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        AudioFormat.from_media_format(encoding, rate)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"encoding": "mp3", "sample_rate": 8000}, "mp3"),
        ({"encoding": "mulaw", "sample_rate": 16000}, "16000"),
        ({"encoding": "l16", "sample_rate": 0}, "0"),
        ({"encoding": "l16", "sample_rate": 48001}, "48001"),
        ({"encoding": "l16", "sample_rate": 7999}, "7999"),
        ({"encoding": "l16", "sample_rate": "16000"}, "16000"),
        ({"encoding": "l16", "sample_rate": 16000, "byte_order": "middle"}, "middle"),
    ],
)
def test_constructor_validates(kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        AudioFormat(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 32000, 44100, 48000])
def test_accepted_l16_rates(rate: int) -> None:
    assert AudioFormat("l16", rate).sample_rate == rate


def test_frame_bytes_requires_whole_samples() -> None:
    assert AudioFormat("l16", 22050).frame_bytes(20) == 882
    with pytest.raises(ValueError, match="22050"):
        AudioFormat("l16", 22050).frame_bytes(10)
    with pytest.raises(ValueError, match="0 ms"):
        L16_16K.frame_bytes(0)


def test_frozen_and_hashable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        L16_16K.sample_rate = 8000  # type: ignore[misc]
    assert {AudioFormat("l16", 16000), L16_16K} == {L16_16K}
    assert AudioFormat("l16", 16000, "big") != L16_16K


@pytest.mark.parametrize("fmt", OUTBOUND_FORMATS)
def test_documented_stream_formats_pass(fmt: AudioFormat) -> None:
    assert check_stream_format(fmt) is fmt
    assert check_stream_format(dataclasses.replace(fmt, byte_order="big")).sample_rate == fmt.sample_rate


@pytest.mark.parametrize("rate", [47999, 48000, 44100, 32000, 22050, 11025, 12000])
def test_undocumented_stream_formats_are_refused(rate: int) -> None:
    fmt = AudioFormat("l16", rate)  # a valid AudioFormat, but no stream is documented at this rate
    with pytest.raises(
        ValueError, match=rf"undocumented stream format audio/x-l16;rate={rate} \(documented: "
    ):
        check_stream_format(fmt)
