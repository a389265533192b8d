"""The fake Vobiz's own codec against ``audioop`` (what the app uses): the emulator checks the app
with a separate implementation, so the two agreeing means something."""

from __future__ import annotations

import audioop

import numpy as np
import pytest

from app.audio.codec import decode, encode
from app.audio.formats import AudioFormat
from app.simulator.wire_audio import decode_wire, encode_wire

ALL = np.arange(-32768, 32768, dtype=np.int16)


def test_mulaw_decoding_matches_audioop_for_every_code() -> None:
    codes = bytes(range(256))
    reference = np.frombuffer(audioop.ulaw2lin(codes, 2), dtype=np.int16)
    np.testing.assert_array_equal(decode_wire(codes, "mulaw"), reference)


def test_mulaw_encoding_is_never_further_from_the_sample_than_audioops() -> None:
    mine = decode_wire(encode_wire(ALL, "mulaw"), "mulaw").astype(np.int32)
    theirs = np.frombuffer(audioop.ulaw2lin(audioop.lin2ulaw(ALL.tobytes(), 2), 2), np.int16).astype(np.int32)
    assert (np.abs(mine - ALL) <= np.abs(theirs - ALL)).all()
    # and the same code wherever the sample is not close to a boundary between two levels
    assert np.mean(mine == theirs) > 0.98
    assert encode_wire(np.zeros(3, np.int16), "mulaw") == b"\xff\xff\xff"


@pytest.mark.parametrize("byte_order", ["little", "big"])
def test_l16_round_trips_and_agrees_with_the_app(byte_order: str) -> None:
    fmt = AudioFormat("l16", 16000, byte_order)  # type: ignore[arg-type]
    payload = encode_wire(ALL, "l16", fmt.byte_order)
    assert payload == encode(ALL, fmt)
    np.testing.assert_array_equal(decode_wire(payload, "l16", fmt.byte_order), ALL)
    np.testing.assert_array_equal(decode(payload, fmt), ALL)


def test_the_app_decodes_what_the_fake_encodes() -> None:
    tone = (8000 * np.sin(np.arange(1600) * 2 * np.pi * 440 / 8000)).astype(np.int16)
    heard = decode(encode_wire(tone, "mulaw"), AudioFormat("mulaw", 8000))
    assert np.abs(heard.astype(np.int32) - tone).max() <= 256  # within one mu-law step at this level
