"""Strict checks on what the app sends: media-socket commands (PROTOCOL.md §4) and the one
answer-XML rule the app's own lenient parser does not enforce (the URL as element text, D22).

Pure: ``check_command`` takes one frame and the stream's state and returns either a
decoded command or the rule it broke. The emulator records every broken rule as a
protocol error, and tests fail on any.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass
from typing import Any

from app.audio.formats import AudioFormat

BARE_MIMES = {"audio/x-l16": "l16", "audio/x-mulaw": "mulaw"}


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    detail: str


@dataclass(frozen=True, slots=True)
class PlayAudio:
    fmt: AudioFormat
    payload: bytes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    name: str


@dataclass(frozen=True, slots=True)
class ClearAudio:
    pass


@dataclass(frozen=True, slots=True)
class Stop:
    pass


Command = PlayAudio | Checkpoint | ClearAudio | Stop


def check_command(
    frame: str | bytes, *, stream_id: str, accepted: AudioFormat, bidirectional: bool
) -> Command | Violation:
    """Decode one app→Vobiz frame, or name the rule it breaks."""
    if isinstance(frame, bytes):
        return Violation("binary-frame", "commands are JSON text frames, got a binary frame")
    try:
        data = json.loads(frame)
    except ValueError:
        return Violation("bad-json", f"not JSON: {frame[:60]!r}")
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        return Violation("no-event", "a command must be a JSON object with an 'event' string")
    event = data["event"]
    if event not in ("playAudio", "checkpoint", "clearAudio", "stop"):
        return Violation("unknown-command", f"unknown event {event[:40]!r}")
    if "streamId" not in data:
        return Violation("missing-stream-id", f"{event} without streamId")
    if data["streamId"] != stream_id:
        return Violation("wrong-stream-id", f"{event} for stream {str(data['streamId'])[:40]!r}")
    if not bidirectional:
        return Violation("not-bidirectional", f'{event} on a stream without bidirectional="true"')
    match event:
        case "playAudio":
            return _check_play(data, accepted)
        case "checkpoint":
            name = data.get("name")
            if not isinstance(name, str) or not name:
                return Violation("checkpoint-no-name", "checkpoint without a 'name'")
            return Checkpoint(name)
        case "clearAudio":
            return ClearAudio()
        case _:
            return Stop()


def _check_play(data: dict[str, Any], accepted: AudioFormat) -> PlayAudio | Violation:
    media = data.get("media")
    if not isinstance(media, dict):
        return Violation("playaudio-no-media", "playAudio without a 'media' object")
    mime = media.get("contentType")
    if mime not in BARE_MIMES:
        return Violation(
            "playaudio-content-type",
            f"contentType must be audio/x-l16 or audio/x-mulaw (bare, no ;rate=), got {mime!r}",
        )
    rate = media.get("sampleRate")
    if not isinstance(rate, int) or isinstance(rate, bool):
        return Violation("playaudio-sample-rate", f"sampleRate must be an int, got {rate!r}")
    if BARE_MIMES[mime] != accepted.encoding or rate != accepted.sample_rate:
        return Violation(
            "playaudio-format-mismatch",
            f"playAudio is {mime} at {rate} Hz; the stream negotiated "
            f"{accepted.mime} at {accepted.sample_rate} Hz",
        )
    payload = media.get("payload")
    if not isinstance(payload, str):
        return Violation("playaudio-bad-base64", "payload must be a base64 string")
    try:
        raw = binascii.a2b_base64(payload, strict_mode=True)
    except binascii.Error:
        return Violation("playaudio-bad-base64", "payload is not valid base64")
    if accepted.encoding == "l16" and len(raw) % 2:
        return Violation("playaudio-odd-length", f"L16 payload of {len(raw)} bytes (odd)")
    return PlayAudio(accepted, raw)
