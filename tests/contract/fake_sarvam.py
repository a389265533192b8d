"""A small, protocol-faithful fake of Sarvam AI's realtime speech-to-text WebSocket
(``GET /speech-to-text-realtime/ws``) and Bulbul REST streaming text-to-speech
(``POST /text-to-speech/stream``), for contract tests of the real ``sarvamai`` SDK.

Written from Sarvam's API reference and the SDK's models (sarvamai 0.1.39):

Realtime STT. The key comes in the ``api-subscription-key`` header. Query parameters:
``language_code`` (required; the endpoint's codes or ``auto``), ``model`` (``saaras:v3-realtime``
or ``saaras:v4``), ``stream_type`` (fast | balanced | simulated), ``endpointing`` (vad | manual),
``encoding`` (linear16 | linear32 | mulaw | alaw; only linear16 is decoded here), ``sample_rate``
(8000 | 16000), ``return_timestamps``, ``silence_duration_ms``, ``keyterms`` (saaras:v4 only). A
good socket first gets ``session.begin`` (``request_id``, the resolved ``config``). The client
sends JSON text frames: ``audio_input`` (``audio``: base64 samples), ``ping`` (→ ``pong``),
``end`` (the utterance in progress is finalised, then ``session.end`` and close 1000),
``config.update`` (→ ``config.updated``). A wrong key: a fatal ``error`` frame (``code``
``invalid_api_key``, ``status_code`` 403) and close 1003. A rejected parameter: a fatal ``error``
(400, ``invalid_request``) and close 4000. A message that is not JSON or has an unknown
``event``: a non-fatal ``error`` frame.

Recognition is scripted: ``utterances`` are "heard" in order. Audio is judged in 10 ms frames
(loud: mean |sample| ≥ ``threshold``). Loud frames start an utterance (``vad.speech_start``);
after 200 ms of speech a ``transcript.partial`` carries the first half of its words (not with
``stream_type=simulated``); ``silence_duration_ms`` (default 500) of quiet ends it with
``vad.speech_end`` then ``transcript.final`` (the whole text, with ``start_s``/``end_s``: seconds
of audio received on that socket, when ``return_timestamps=true``).

Failure injection: ``drop_after_bytes[i]`` closes the i-th socket with 1011 once it has received
that many audio bytes; ``stt_status[i]`` refuses the i-th upgrade with that HTTP status.

Bulbul stream. JSON body: ``text`` (required, ≤ 2500 characters), ``language_code``, ``speaker``
(lower case; one of the model's voices), ``model`` (bulbul:v2 | bulbul:v3), ``pace``,
``speech_sample_rate`` (8000, 16000, 22050, 24000), ``output_audio_codec``. The answer is the
audio, streamed (chunked); ``linear16`` is raw little-endian samples (other codecs: 501 from this
fake). Refusals carry Sarvam's error body (``{"error": {"message", "code", "request_id"}}``): a
wrong key 403 ``invalid_api_key_error``, a bad field 400 ``invalid_request_error``.
``tts_status`` answers every request with that status; ``drop_after_bytes_tts`` breaks a body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.contract.fake_deepgram_speak import SECONDS_PER_CHAR, tone

__all__ = ["SECONDS_PER_CHAR", "FakeSarvam", "SttSocket", "TtsRequest", "tone"]
Message = dict[str, Any]

STT_LANGUAGES = frozenset((
    "auto", "en-IN", "hi-IN", "bn-IN", "kn-IN", "ml-IN", "mr-IN", "or-IN", "pa-IN", "ta-IN", "te-IN",
    "gu-IN", "as-IN", "ur-IN", "ne-IN", "kok-IN", "ks-IN", "sd-IN", "sa-IN", "sat-IN", "mni-IN",
    "brx-IN", "mai-IN", "doi-IN",
))  # fmt: skip
TTS_LANGUAGES = frozenset((
    "bn-IN", "en-IN", "gu-IN", "hi-IN", "kn-IN", "ml-IN", "mr-IN", "od-IN", "pa-IN", "ta-IN", "te-IN",
))  # fmt: skip
# Bulbul v3's voices (the SDK's TextToSpeechSpeaker, first names)
V3_SPEAKERS = frozenset((
    "aditya", "ritu", "priya", "neha", "rahul", "pooja", "rohan", "simran", "kavya", "amit", "dev",
    "ishita", "shreya", "ratan", "varun", "manan", "sumit", "roopa", "kabir", "aayan", "shubh",
    "ashutosh", "advait", "anand", "tanya", "tarun", "sunny", "mani", "gokul", "vijay", "shruti",
    "suhani", "mohit", "kavitha", "rehan", "soham", "rupali",
))  # fmt: skip
V2_SPEAKERS = frozenset(("anushka", "abhilash", "manisha", "vidya", "arya", "karun", "hitesh"))
TTS_RATES = frozenset({8000, 16000, 22050, 24000})


@dataclass
class SttSocket:
    """What one realtime socket saw (``query``, audio bytes, pings, ``end``) and sent (``sent``)."""

    key: str | None
    query: dict[str, str]
    bytes_received: int = 0
    pings: int = 0
    ended: bool = False
    dropped: bool = False
    sent: list[Message] = field(default_factory=list)

    def events(self, name: str) -> list[Message]:
        return [m for m in self.sent if m.get("event") == name]


@dataclass
class TtsRequest:
    """One ``POST /text-to-speech/stream``: what it asked and how it ended."""

    key: str | None
    body: dict[str, Any]
    status: int = 200
    disconnected: bool = False

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))


@dataclass
class FakeSarvam:
    api_key: str = "sarvam-test-key"
    utterances: list[str] = field(default_factory=list)
    threshold: int = 1000
    drop_after_bytes: list[int | None] = field(default_factory=list)
    stt_status: list[int | None] = field(default_factory=list)
    tts_status: int | None = None
    drop_after_bytes_tts: int | None = None
    chunk_bytes: int = 3201  # odd: a sample split across two pieces
    sockets: list[SttSocket] = field(default_factory=list)
    speeches: list[TtsRequest] = field(default_factory=list)

    def reset(self) -> None:
        """Forget the script, the faults and what was seen."""
        self.utterances, self.drop_after_bytes, self.stt_status = [], [], []
        self.tts_status, self.drop_after_bytes_tts = None, None
        self.sockets, self.speeches = [], []

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                WebSocketRoute("/speech-to-text-realtime/ws", self._realtime),
                Route("/text-to-speech/stream", self._speak, methods=["POST"]),
            ]
        )

    # ── realtime speech-to-text ──────────────────────────────────────────────────────────

    async def _realtime(self, ws: WebSocket) -> None:
        rec = SttSocket(ws.headers.get("api-subscription-key"), dict(ws.query_params))
        index = len(self.sockets)
        self.sockets.append(rec)
        status = self.stt_status[index] if index < len(self.stt_status) else None
        if status is not None:
            body = {"error": {"message": "refused", "code": "unavailable", "request_id": _rid()}}
            return await ws.send_denial_response(JSONResponse(body, status_code=status))
        await ws.accept()

        async def emit(*messages: Message) -> None:
            for message in messages:
                rec.sent.append(message)
                await ws.send_text(json.dumps(message))

        try:
            if rec.key != self.api_key:
                await emit(_error("invalid_api_key", "Invalid API subscription key", True, 403))
                return await ws.close(1003, "invalid subscription key")
            problem = _query_problem(rec.query)
            if problem:
                await emit(_error("invalid_request", problem, True, 400))
                return await ws.close(4000, problem[:123])
            await emit({"event": "session.begin", "request_id": _rid(), "config": _config(rec.query)})
            recogniser = _Recogniser(rec.query, self)
            drop = self.drop_after_bytes[index] if index < len(self.drop_after_bytes) else None
            while True:
                raw = await ws.receive_text()
                try:
                    msg = json.loads(raw)
                    event = msg.get("event")
                except (json.JSONDecodeError, AttributeError):
                    await emit(_error("invalid_message", "message is not JSON", False))
                    continue
                if event == "audio_input":
                    try:
                        data = base64.b64decode(msg["audio"], validate=True)
                    except (KeyError, TypeError, binascii.Error):
                        await emit(_error("invalid_audio", "audio is not base64", False))
                        continue
                    rec.bytes_received += len(data)
                    if drop is not None and rec.bytes_received >= drop:
                        rec.dropped = True
                        return await ws.close(1011, "internal error")
                    await emit(*recogniser.feed(data))
                elif event == "ping":
                    rec.pings += 1
                    await emit({"event": "pong"})
                elif event == "end":
                    rec.ended = True
                    await emit(*recogniser.finish())
                    await emit(
                        {
                            "event": "session.end",
                            "request_id": _rid(),
                            "total_utterances": recogniser.index,
                            "audio_duration_s": recogniser.seconds,
                        }
                    )
                    return await ws.close(1000)
                elif event == "config.update":
                    applied = [k for k in msg if k != "event"]
                    await emit({"event": "config.updated", "applied": applied})
                elif event in ("flush", "speech_start", "speech_end"):
                    await emit(_error("invalid_request", f"{event} needs endpointing=manual", False))
                else:
                    await emit(_error("unknown_event", "unknown event", False))
        except WebSocketDisconnect:
            return

    # ── Bulbul streaming text-to-speech ──────────────────────────────────────────────────

    async def _speak(self, request: Request) -> Response:
        key = request.headers.get("api-subscription-key")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = None
        rec = TtsRequest(key, body if isinstance(body, dict) else {})
        self.speeches.append(rec)
        if key != self.api_key:
            return _tts_error(rec, 403, "invalid_api_key_error", "Invalid API key")
        if self.tts_status is not None:
            return _tts_error(rec, self.tts_status, "internal_server_error", "fake failure")
        problem = _speak_problem(body)
        if problem:
            return _tts_error(rec, 400, "invalid_request_error", problem)
        if rec.body.get("output_audio_codec", "mp3") != "linear16":
            return _tts_error(rec, 501, "not_implemented", "only linear16 is served by this fake")
        rate = int(rec.body.get("speech_sample_rate") or 24000)
        audio = tone(rec.text, rate).astype("<i2").tobytes()
        if self.drop_after_bytes_tts is not None:
            audio = audio[: self.drop_after_bytes_tts]
        step, dropped = self.chunk_bytes, self.drop_after_bytes_tts is not None

        async def pieces() -> AsyncIterator[bytes]:
            try:
                for at in range(0, len(audio), step):
                    yield audio[at : at + step]
                    await asyncio.sleep(0)
                if dropped:
                    raise ConnectionResetError("fake drop mid-body")
            except asyncio.CancelledError:
                rec.disconnected = True
                raise

        return StreamingResponse(pieces(), media_type="audio/wav")


def _rid() -> str:
    return uuid.uuid4().hex


def _error(code: str, message: str, fatal: bool, status: int | None = None) -> Message:
    out: Message = {"event": "error", "code": code, "is_fatal": fatal, "message": message}
    if status is not None:
        out["status_code"] = status
    return out


def _tts_error(rec: TtsRequest, status: int, code: str, message: str) -> JSONResponse:
    rec.status = status
    return JSONResponse(
        {"error": {"message": message, "code": code, "request_id": _rid()}}, status_code=status
    )


def _query_problem(query: dict[str, str]) -> str | None:
    """Why Sarvam would refuse this realtime socket (None: it takes it)."""
    if query.get("language_code") not in STT_LANGUAGES:
        return "unsupported language_code"
    if query.get("model", "saaras:v3-realtime") not in ("saaras:v3-realtime", "saaras:v4"):
        return "invalid model"
    if query.get("stream_type", "balanced") not in ("fast", "balanced", "simulated"):
        return "invalid stream_type"
    if query.get("endpointing", "vad") not in ("vad", "manual"):
        return "invalid endpointing"
    if query.get("encoding", "linear16") not in ("linear16", "linear32", "mulaw", "alaw"):
        return "invalid encoding"
    if query.get("encoding", "linear16") != "linear16":
        return "this fake decodes linear16 only"
    if query.get("sample_rate", "16000") not in ("8000", "16000"):
        return "invalid sample_rate"
    if "keyterms" in query and query.get("model") != "saaras:v4":
        return "keyterms needs saaras:v4"
    return None


def _config(query: dict[str, str]) -> Message:
    return {
        "model": query.get("model", "saaras:v3-realtime"),
        "language_code": query["language_code"],
        "encoding": query.get("encoding", "linear16"),
        "sample_rate": int(query.get("sample_rate", "16000")),
        "stream_type": query.get("stream_type", "balanced"),
        "mode": query.get("mode", "transcribe"),
        "turn_detection": query.get("endpointing", "vad"),
        "silence_duration_ms": int(query.get("silence_duration_ms", "500")),
        "return_timestamps": query.get("return_timestamps") == "true",
    }


def _speak_problem(body: object) -> str | None:
    if not isinstance(body, dict):
        return "body must be a JSON object"
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return "text is required"
    if len(text) > 2500:
        return "text is longer than 2500 characters"
    model = body.get("model") or "bulbul:v2"
    if model not in ("bulbul:v2", "bulbul:v3"):
        return "invalid model"
    speaker = body.get("speaker")
    voices = V3_SPEAKERS if model == "bulbul:v3" else V2_SPEAKERS
    if speaker is not None and speaker not in voices:
        return f"speaker not available for {model}"
    if body.get("language_code") not in TTS_LANGUAGES:
        return "invalid language_code"
    rate = body.get("speech_sample_rate")
    if rate is not None and rate not in TTS_RATES:
        return "invalid speech_sample_rate for streaming"
    pace = body.get("pace")
    if pace is not None and not 0.5 <= float(pace) <= 2.0:
        return "pace out of range"
    return None


class _Recogniser:
    """The scripted recogniser of one socket (see the module)."""

    FRAME_S = 0.01

    def __init__(self, query: dict[str, str], fake: FakeSarvam) -> None:
        self.rate = int(query.get("sample_rate", "16000"))
        self.partials = query.get("stream_type", "balanced") != "simulated"
        self.timestamps = query.get("return_timestamps") == "true"
        self.silence_s = int(query.get("silence_duration_ms", "500")) / 1000
        self.fake = fake
        self.frame_bytes = 2 * round(self.rate * self.FRAME_S)
        self.pending = b""
        self.frames = 0  # 10 ms frames judged on this socket
        self.index = 0  # utterance_idx of the next utterance
        self.speech_start: float | None = None
        self.last_loud = 0.0
        self.partial_sent = False

    @property
    def seconds(self) -> float:
        return round(self.frames * self.FRAME_S, 6)

    def feed(self, data: bytes) -> list[Message]:
        out: list[Message] = []
        self.pending += data
        while len(self.pending) >= self.frame_bytes:
            frame = np.frombuffer(self.pending[: self.frame_bytes], dtype="<i2")
            self.pending = self.pending[self.frame_bytes :]
            self.frames += 1
            loud = float(np.abs(frame.astype(np.int32)).mean()) >= self.fake.threshold
            now = self.seconds
            if loud:
                self.last_loud = now
                if self.speech_start is None:
                    self.speech_start = now - self.FRAME_S
                    out.append({"event": "vad.speech_start", "utterance_idx": self.index, "confidence": 0.9})
                elif self.partials and not self.partial_sent and now - self.speech_start >= 0.2:
                    self.partial_sent = True
                    partial = _first_half(self._text())
                    out.append({"event": "transcript.partial", "utterance_idx": self.index, "text": partial})
            elif self.speech_start is not None and now - self.last_loud >= self.silence_s:
                out.extend(self._final())
        return out

    def finish(self) -> list[Message]:
        return self._final() if self.speech_start is not None else []

    def _text(self) -> str:
        return self.fake.utterances[0] if self.fake.utterances else ""

    def _final(self) -> list[Message]:
        text = self.fake.utterances.pop(0) if self.fake.utterances else ""
        start, end = self.speech_start or 0.0, self.last_loud
        out: list[Message] = [{"event": "vad.speech_end", "utterance_idx": self.index, "confidence": 0.9}]
        final: Message = {"event": "transcript.final", "utterance_idx": self.index, "text": text}
        if self.timestamps:
            final["start_s"], final["end_s"] = round(start, 6), round(end, 6)
        out.append(final)
        self.index += 1
        self.speech_start, self.partial_sent = None, False
        return out


def _first_half(text: str) -> str:
    words = text.split()
    return " ".join(words[: max(1, len(words) // 2)])
