"""Every inbound format the app can ask for, through the real app (echo agent) and the fake
Vobiz on the virtual clock: STREAM_CONTENT_TYPE sets ``<Stream contentType>``, Vobiz echoes it
in ``start.mediaFormat`` and sends frames of that size; the app's playAudio follows it (or
PLAYBACK_SAMPLE_RATE) in label and in size (PROTOCOL.md §3.2, §4.1, §5)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest

from app.audio.formats import AudioFormat
from app.config import Settings
from app.simulator.caller import HangUp, Silence, Step
from app.simulator.platform import PlatformConfig
from tests.e2e.test_emulator import AUTH_TOKEN, rms, simulate, speech

# (STREAM_CONTENT_TYPE, PLAYBACK_SAMPLE_RATE, start.mediaFormat, inbound bytes / 20 ms,
#  playAudio (contentType, sampleRate), outbound bytes / 20 ms)
CASES = [
    ("audio/x-mulaw;rate=8000", 0, ("audio/x-mulaw", 8000), 160, ("audio/x-mulaw", 8000), 160),
    ("audio/x-l16;rate=8000", 0, ("audio/x-l16", 8000), 320, ("audio/x-l16", 8000), 320),
    ("audio/x-l16;rate=16000", 0, ("audio/x-l16", 16000), 640, ("audio/x-l16", 16000), 640),
    ("audio/x-l16;rate=16000", 24000, ("audio/x-l16", 16000), 640, ("audio/x-l16", 24000), 960),
]


@pytest.mark.parametrize(
    ("content_type", "playback", "media_format", "in_bytes", "play_format", "out_bytes"),
    CASES,
    ids=[f"{c[0]}->{c[4][1]}" for c in CASES],
)
async def test_negotiated_format_end_to_end(
    make_settings: Callable[..., Settings],
    content_type: str,
    playback: int,
    media_format: tuple[str, int],
    in_bytes: int,
    play_format: tuple[str, int],
    out_bytes: int,
) -> None:
    # the emulator accepts exactly one playAudio format: the inbound one unless told otherwise
    accepted = AudioFormat("l16", playback, "little") if playback else None
    platform = PlatformConfig(auth_token=AUTH_TOKEN, playback_format=accepted)
    steps: list[Step] = [speech(1.0), Silence(0.5), HangUp()]
    sim = await simulate(
        make_settings,
        steps,
        platform=platform,
        stream_content_type=content_type,
        playback_sample_rate=playback,
    )  # fails on any protocol error, e.g. a playAudio that does not match
    (sock,) = sim.tap.sockets
    sent = [json.loads(f) for f in sock.sent]
    assert sent[0]["event"] == "start"
    encoding, rate = media_format
    assert sent[0]["start"]["mediaFormat"] == {"encoding": encoding, "sampleRate": rate}
    media = [base64.b64decode(m["media"]["payload"]) for m in sent[1:] if m["event"] == "media"]
    assert len(media) == 75  # 1.5 s
    assert {len(p) for p in media} == {in_bytes}

    received = [json.loads(f) for f in sock.received if isinstance(f, str)]
    plays = [m["media"] for m in received if m["event"] == "playAudio"]
    assert len(plays) >= 70  # the echo agent plays back every frame
    assert {(p["contentType"], p["sampleRate"]) for p in plays} == {play_format}
    assert {len(base64.b64decode(p["payload"])) for p in plays} == {out_bytes}
    # the echo is heard: the caller's 1 s tone comes back on the agent track
    assert rms(sim.rec, "agent", 0.2, 0.9) > 3000
    assert rms(sim.rec, "agent", 1.2, 1.5) < 100
    assert "echo-1" in [e.detail["name"] for e in sim.rec.events if e.kind == "played_stream"]
