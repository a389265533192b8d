"""Vobiz media-stream JSON: parse what Vobiz sends, build what we send.

Inbound parsing is liberal (PROTOCOL.md §3, §10 D4–D8, D25, D26): IDs nested under
``start`` or at the top level, numbers as ints or strings, unknown keys ignored.
``media`` is the hot path (50 frames a second per call): one JSON parse, one base64
decode, one small slotted dataclass; no pydantic, no validation beyond what decoding needs.

Outbound commands are exact: bare MIME ``contentType``, int ``sampleRate``, and the
``streamId`` on every command (D9).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any

import orjson

from app.telephony.errors import ProtocolError as ProtocolError  # re-exported: callers write ev.ProtocolError


@dataclass(frozen=True, slots=True)
class StartEvent:
    call_id: str
    stream_id: str
    encoding: str  # e.g. "audio/x-mulaw"; the rate is separate
    sample_rate: int | None
    account_id: str | None = None
    tracks: tuple[str, ...] = ("inbound",)


@dataclass(frozen=True, slots=True)
class MediaEvent:
    payload: bytes  # raw audio in the format announced by ``start``
    track: str = "inbound"


@dataclass(frozen=True, slots=True)
class PlayedStreamEvent:
    name: str  # the checkpoint name we sent


@dataclass(frozen=True, slots=True)
class ClearedAudioEvent:
    stream_id: str | None = None


@dataclass(frozen=True, slots=True)
class StopEvent:
    """Legacy inbound ``stop`` (old docs): an early hint that the stream is ending."""

    reason: str | None = None


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    digit: str  # one key (0-9, *, #, A-D); several when a frame carries them together


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    event: str


InboundEvent = (
    StartEvent | MediaEvent | PlayedStreamEvent | ClearedAudioEvent | StopEvent | DtmfEvent | UnknownEvent
)


def parse_inbound(message: str | bytes) -> InboundEvent:
    """Parse one text frame from Vobiz. Raises ``ProtocolError`` with the reason."""
    try:
        data = orjson.loads(message)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"frame is not JSON ({exc.msg})") from None
    if type(data) is not dict:
        raise ProtocolError(f"frame is a JSON {type(data).__name__}, not an object")
    event = data.get("event")
    if event == "media":
        return _parse_media(data)
    if type(event) is not str:
        raise ProtocolError("frame has no 'event' string")
    match event:
        case "start":
            return _parse_start(data)
        case "playedStream":
            name = data.get("name")
            if name is None and isinstance(data.get("playedStream"), dict):
                name = data["playedStream"].get("name")
            if not isinstance(name, str):
                raise ProtocolError("playedStream without a 'name'")
            return PlayedStreamEvent(name)
        case "clearedAudio":
            sid = data.get("streamId")
            return ClearedAudioEvent(sid if isinstance(sid, str) else None)
        case "stop":
            reason = data.get("reason")
            if reason is None and isinstance(data.get("stop"), dict):
                reason = data["stop"].get("reason")
            return StopEvent(str(reason) if reason is not None else None)
        case "dtmf":
            return _parse_dtmf(data)
        case _:
            return UnknownEvent(event)


def _parse_media(data: dict[str, Any]) -> MediaEvent:
    media = data.get("media")
    if type(media) is not dict:
        raise ProtocolError("media frame without a 'media' object")
    payload = media.get("payload")
    if type(payload) is not str:
        raise ProtocolError("media frame without a 'payload' string")
    try:
        raw = binascii.a2b_base64(payload, strict_mode=True)
    except binascii.Error as exc:
        raise ProtocolError(f"media payload is not valid base64 ({exc})") from None
    track = media.get("track")
    return MediaEvent(raw, track if type(track) is str else "inbound")


def _str_field(*candidates: object) -> str | None:
    for value in candidates:
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def _parse_start(data: dict[str, Any]) -> StartEvent:
    start = data.get("start")
    inner: dict[str, Any] = start if isinstance(start, dict) else {}
    call_id = _str_field(inner.get("callId"), data.get("callId"), inner.get("call_id"))
    stream_id = _str_field(inner.get("streamId"), data.get("streamId"), inner.get("stream_id"))
    if call_id is None or stream_id is None:
        raise ProtocolError("start frame without callId/streamId (looked nested and at the top level)")
    fmt = inner.get("mediaFormat", data.get("mediaFormat"))
    if fmt is None:
        fmt = {}
    if not isinstance(fmt, dict):
        raise ProtocolError("start.mediaFormat is not an object")
    encoding = fmt.get("encoding")
    if not isinstance(encoding, str) or not encoding:
        encoding = "audio/x-l16"  # the documented default contentType
    rate = fmt.get("sampleRate", fmt.get("sample_rate"))
    sample_rate: int | None
    try:
        sample_rate = int(rate) if rate is not None else None
    except (TypeError, ValueError):
        raise ProtocolError(f"start.mediaFormat.sampleRate is not a number: {rate!r}") from None
    tracks_raw = inner.get("tracks")
    tracks = tuple(t for t in tracks_raw if isinstance(t, str)) if isinstance(tracks_raw, list) else ()
    return StartEvent(
        call_id=call_id,
        stream_id=stream_id,
        encoding=encoding,
        sample_rate=sample_rate,
        account_id=_str_field(inner.get("accountId"), inner.get("auth_id")),
        tracks=tracks or ("inbound",),
    )


_DTMF_KEYS = frozenset("0123456789*#ABCD")


def _parse_dtmf(data: dict[str, Any]) -> DtmfEvent:
    """Liberal (D25): ``{"dtmf": {"digit": "5"}}`` (Plivo's shape), ``digits`` for several keys,
    or either at the top level; a number is taken as its digits. The error never names a key."""
    body = data.get("dtmf")
    inner: dict[str, Any] = body if isinstance(body, dict) else {}
    candidates = (inner.get("digit"), inner.get("digits"), data.get("digit"), data.get("digits"), body)
    keys = next((str(v) for v in candidates if isinstance(v, str | int) and not isinstance(v, bool)), "")
    keys = keys.strip().upper()
    if not keys:
        raise ProtocolError("dtmf frame without a digit")
    if len(keys) > 64 or not _DTMF_KEYS.issuperset(keys):
        raise ProtocolError("dtmf frame with keys other than 0-9, *, #, A-D")
    return DtmfEvent(keys)


# --- outbound -------------------------------------------------------------------------------------


def _q(value: str) -> str:
    return orjson.dumps(value).decode()


def play_audio(stream_id: str, mime: str, sample_rate: int, payload: bytes) -> str:
    """A ``playAudio`` command; ``mime`` is bare (``audio/x-mulaw``), ``payload`` raw audio."""
    b64 = binascii.b2a_base64(payload, newline=False).decode("ascii")
    return (
        f'{{"event":"playAudio","streamId":{_q(stream_id)},"media":{{"contentType":{_q(mime)},'
        f'"sampleRate":{int(sample_rate)},"payload":"{b64}"}}}}'
    )


def checkpoint(stream_id: str, name: str) -> str:
    return orjson.dumps({"event": "checkpoint", "streamId": stream_id, "name": name}).decode()


def clear_audio(stream_id: str) -> str:
    return orjson.dumps({"event": "clearAudio", "streamId": stream_id}).decode()


def stop(stream_id: str) -> str:
    return orjson.dumps({"event": "stop", "streamId": stream_id}).decode()
