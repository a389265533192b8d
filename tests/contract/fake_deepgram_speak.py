"""A protocol-faithful fake of Deepgram's Aura REST text-to-speech, ``POST /v1/speak``, as a raw
ASGI app (served by :class:`tests.contract.fake_deepgram.FakeDeepgram`).

Deepgram takes the voice and audio format as query parameters (``model``, ``encoding``,
``container``, ``sample_rate``, ``speed``) and the text as JSON (``{"text": ...}``), and answers
with the audio as the body, streamed as it is made (chunked). Refused like the real service, with
its JSON error body (``err_code``, ``err_msg``, ``request_id``): a wrong ``Authorization: Token``
(401 ``INVALID_AUTH``); a model that is not an Aura voice id (``aura-<voice>-en``,
``aura-2-<voice>-<language>``), an unknown encoding or container, a sample rate the encoding does
not offer (linear16: 8, 16, 24, 32, 48 kHz; mulaw/alaw: 8, 16 kHz), a body that is not JSON or
has no text (400). The REST default container is ``wav``: the fake then sends a 44-byte WAV
header before the samples, as Deepgram does. Audio is :func:`tone` of the text, sent in
``chunk_bytes`` pieces ``delay`` s apart; encodings other than linear16/mulaw/alaw are valid but
not served by this fake (501).

Faults: ``status`` answers every request with that status and an error body (a 429 carries
``Retry-After: retry_after``); ``drop_after_bytes`` breaks the connection mid-body;
``stall_after_bytes`` stops sending there (the response stays open until the client leaves);
``gate`` holds the last piece (≤ 2 s) until set; ``connect_delay`` s are spent before answering
the first request on each new TCP connection (a stand-in for TCP + TLS handshakes, to measure);
``die_at_request`` N: request N breaks off after ``die_after_bytes`` and every later one gets 503.

``connections``: every TCP connection that sent a request (client ``host:port``, in order);
``requests``: what each request asked and how it ended (``disconnected``: the client left before
the body was complete).
"""

from __future__ import annotations

import asyncio
import json
import struct
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import numpy as np
import numpy.typing as npt
from starlette.types import Receive, Scope, Send

SECONDS_PER_CHAR = 0.02  # length of the fake TTS audio per character of text

_RATES = {"linear16": {8000, 16000, 24000, 32000, 48000}, "mulaw": {8000, 16000}, "alaw": {8000, 16000}}
_OTHER_ENCODINGS = {"mp3", "opus", "flac", "aac"}
_LANGUAGES = ("en", "es", "de", "fr", "nl", "it", "ja")


def tone(text: str, sample_rate: int) -> npt.NDArray[np.int16]:
    """The fake TTS audio for ``text``: a 440 Hz int16 tone, ``SECONDS_PER_CHAR`` s per character."""
    n = round(len(text) * SECONDS_PER_CHAR * sample_rate)
    return (8000 * np.sin(2 * np.pi * 440.0 * np.arange(n) / sample_rate)).astype(np.int16)


@dataclass
class SpeakRequest:
    """One ``POST /v1/speak``: who sent it, what it asked, how it ended."""

    connection: str  # the client's host:port (one per TCP connection)
    authorized: bool
    query: dict[str, str]
    text: str | None = None
    status: int = 0
    bytes_sent: int = 0
    complete: bool = False  # the whole body went out
    disconnected: bool = False  # the client left first
    gate_timed_out: bool = False


@dataclass
class FakeSpeak:
    api_key: str
    chunk_bytes: int = 999  # odd on purpose: clients must carry a byte over
    delay: float = 0.005  # seconds between pieces
    gate: threading.Event | None = None
    status: int | None = None
    retry_after: int = 2
    drop_after_bytes: int | None = None
    stall_after_bytes: int | None = None
    connect_delay: float = 0.0
    # the service dies: request number ``die_at_request`` (0-based) breaks off after
    # ``die_after_bytes`` of its body, and every later request is answered 503
    die_at_request: int | None = None
    die_after_bytes: int = 2000
    connections: list[str] = field(default_factory=list)
    requests: list[SpeakRequest] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        host, port = scope.get("client") or ("?", 0)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = _query(scope)
        rec = SpeakRequest(f"{host}:{port}", headers.get("authorization") == f"Token {self.api_key}", query)
        self.requests.append(rec)
        if rec.connection not in self.connections:
            self.connections.append(rec.connection)
            await asyncio.sleep(self.connect_delay)
        body = await _read_body(receive)
        if scope["method"] != "POST":
            return await _error(send, rec, 405, "METHOD_NOT_ALLOWED", "use POST")
        if not rec.authorized:
            return await _error(send, rec, 401, "INVALID_AUTH", "Invalid credentials.")
        problem = _query_problem(query)
        if problem is not None:
            return await _error(send, rec, 400, "INVALID_QUERY_PARAMETER", problem)
        try:
            payload = json.loads(body)
        except ValueError:
            return await _error(send, rec, 400, "INVALID_JSON", "the body is not JSON")
        text = payload.get("text") if isinstance(payload, dict) else None
        if not isinstance(text, str) or not text.strip():
            return await _error(send, rec, 400, "INVALID_INPUT", "text is required")
        rec.text = text
        number = len(self.requests) - 1
        if self.die_at_request is not None and number > self.die_at_request:
            return await _error(send, rec, 503, "SERVICE_UNAVAILABLE", "the fake has died")
        if self.die_at_request == number:
            self.drop_after_bytes = self.die_after_bytes
        if self.status is not None:
            extra = [(b"retry-after", str(self.retry_after).encode())] if self.status == 429 else []
            return await _error(send, rec, self.status, "TOO_MANY_REQUESTS", "refused by the fake", extra)
        encoding = query.get("encoding", "linear16")
        if encoding in _OTHER_ENCODINGS:
            return await _error(send, rec, 501, "NOT_IMPLEMENTED", f"the fake does not make {encoding}")
        rate = int(query.get("sample_rate", "24000" if encoding == "linear16" else "8000"))
        audio = _encode(tone(text, rate), encoding)
        if query.get("container", "wav") == "wav":
            audio = _wav_header(rate, encoding, len(audio)) + audio
        await self._stream(send, receive, rec, audio)

    async def _stream(self, send: Send, receive: Receive, rec: SpeakRequest, audio: bytes) -> None:
        rec.status = 200
        headers = [(b"content-type", b"audio/l16"), (b"dg-request-id", str(uuid.uuid4()).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        left = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            left.set()

        async with asyncio.TaskGroup() as tg:
            watcher = tg.create_task(watch())
            step = self.chunk_bytes
            for at in range(0, len(audio), step):
                if self.drop_after_bytes is not None and at >= self.drop_after_bytes:
                    raise ConnectionAbortedError("fake drop")  # the server closes the connection mid-body
                if (self.stall_after_bytes is not None and at >= self.stall_after_bytes) or left.is_set():
                    await left.wait()  # stalled (or gone): no more audio until the client leaves
                    rec.disconnected = True
                    return
                if at + step >= len(audio) and self.gate is not None:
                    rec.gate_timed_out = not await asyncio.to_thread(self.gate.wait, 2.0)
                try:
                    await send(
                        {"type": "http.response.body", "body": audio[at : at + step], "more_body": True}
                    )
                except OSError:  # the client left while this piece went out
                    rec.disconnected = True
                    return
                rec.bytes_sent += len(audio[at : at + step])
                await asyncio.sleep(self.delay)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            rec.complete = True
            watcher.cancel()


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


async def _error(
    send: Send,
    rec: SpeakRequest,
    status: int,
    code: str,
    message: str,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    rec.status = status
    body = json.dumps({"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _query(scope: Scope) -> dict[str, str]:
    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))


def _query_problem(query: dict[str, str]) -> str | None:
    """Why Aura REST refuses these parameters (None: it takes them)."""
    model = query.get("model", "aura-asteria-en")
    parts = model.split("-")
    aura1 = len(parts) == 3 and parts[0] == "aura" and parts[2] == "en"
    aura2 = len(parts) == 4 and parts[:2] == ["aura", "2"] and parts[3] in _LANGUAGES
    if not (aura1 or aura2):
        return f"unknown model {model}"
    encoding = query.get("encoding", "linear16")
    if encoding not in _RATES and encoding not in _OTHER_ENCODINGS:
        return f"unknown encoding {encoding}"
    container = query.get("container", "wav" if encoding in _RATES else "none")
    if container not in (("none", "wav") if encoding in _RATES else ("none", "ogg")):
        return f"container {container} is not supported with {encoding}"
    if encoding in _RATES:
        rate = query.get("sample_rate", "24000" if encoding == "linear16" else "8000")
        if not rate.isdigit() or int(rate) not in _RATES[encoding]:
            return f"sample_rate {rate} is not supported with {encoding}"
    if "speed" in query:
        try:
            float(query["speed"])
        except ValueError:
            return "speed must be a number"
    return None


def _encode(pcm: npt.NDArray[np.int16], encoding: str) -> bytes:
    if encoding == "linear16":
        return pcm.astype("<i2").tobytes()
    # G.711 is not the point of these tests: a byte per sample, the high byte of each
    return (pcm.astype(np.int32) >> 8).astype(np.int8).tobytes()


def _wav_header(rate: int, encoding: str, size: int) -> bytes:
    width, fmt = (2, 1) if encoding == "linear16" else (1, 7 if encoding == "mulaw" else 6)
    fmt_chunk = struct.pack("<HHIIHH", fmt, 1, rate, rate * width, width, 8 * width)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + size)
        + b"WAVEfmt "
        + struct.pack("<I", 16)
        + fmt_chunk
        + b"data"
        + struct.pack("<I", size)
    )
