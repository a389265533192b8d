"""A small, protocol-faithful fake of the OpenAI HTTP API, for contract tests of the real SDK.

Serve ``FakeOpenAI().app`` with ``tests.servers.serve_in_thread``; the SDK's ``base_url`` is
then ``URL + "/v1"``. Routes match any prefix (``/{prefix}/chat/completions``), so a
compatible server mounted elsewhere (``/llama/v1``) can be imitated too.

* ``POST .../chat/completions``: ``stream=true`` answers ``text/event-stream`` exactly as
  OpenAI does (``data: {chat.completion.chunk}`` events, a role-only first chunk, content or
  ``tool_calls`` deltas with ``index``, a ``finish_reason`` chunk, an optional usage chunk,
  ``data: [DONE]``); without ``stream`` it answers one ``chat.completion`` object.
* ``POST .../audio/speech``: raw 24 kHz little-endian int16 mono (``response_format="pcm"``
  only), a deterministic tone of ``SAMPLES_PER_CHAR`` samples per input character, sent in
  odd-sized pieces (``SPEECH_CHUNK_BYTES``).

Both check ``Authorization: Bearer <api_key>`` (401 in OpenAI's error shape otherwise) and
record every request. Replies are scripted per endpoint; a reply may pause after some body
chunks until the test calls :meth:`FakeOpenAI.release` (no sleeps, no timing).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

API_KEY = "sk-test-fake-key-0123456789"
SPEECH_RATE = 24000  # Hz, as OpenAI's pcm format
SAMPLES_PER_CHAR = 240  # 10 ms of tone per input character
TONE_HZ = 440.0
SPEECH_CHUNK_BYTES = (4801, 1, 3, 2047, 7777)  # odd piece sizes, cycled
GATE_TIMEOUT = 5.0  # seconds a paused reply waits for release() before giving up

# ── scripted replies ─────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class TextReply:
    """Content in these pieces. ``pause_after``: body events sent (the role-only chunk counts)
    before waiting for ``release()``."""

    chunks: Sequence[str]
    finish_reason: str = "stop"
    pause_after: int | None = None


@dataclass(frozen=True)
class FakeToolCall:
    id: str
    name: str
    fragments: Sequence[str]  # the arguments JSON, in pieces


@dataclass(frozen=True)
class ToolCallsReply:
    """Each call: a head chunk (id, type, name, empty arguments), then one chunk per fragment."""

    calls: Sequence[FakeToolCall]
    finish_reason: str = "tool_calls"
    pause_after: int | None = None  # body events sent before waiting for release()
    with_index: bool = True  # False: leave out ``index``, as some compatible servers do


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error answered before any body, in OpenAI's ``{"error": {...}}`` shape."""

    status: int
    type: str = "server_error"
    code: str | None = None
    param: str | None = None
    message: str = "The fake server was scripted to fail."


@dataclass(frozen=True)
class BrokenReply:
    """A 200 whose body stops midway: the connection drops without the final chunk."""

    chunks: Sequence[str] = ("Hel", "lo")  # chat: content pieces sent first
    speech_bytes: int = 4801  # speech: PCM bytes sent first


@dataclass(frozen=True)
class InStreamError:
    """A 200 stream that sends ``chunks`` then ``data: {"error": {...}}`` (as OpenAI can)."""

    chunks: Sequence[str] = ("Hel",)
    type: str = "server_error"


@dataclass(frozen=True)
class SpeechReply:
    pause_after: int | None = None  # PCM pieces sent before waiting for release()


_Streamed = TextReply | ToolCallsReply | BrokenReply | InStreamError
ChatReply = _Streamed | ErrorReply
SpeechScript = SpeechReply | ErrorReply | BrokenReply


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body


def speech_for(text: str) -> npt.NDArray[np.int16]:
    """The PCM the fake speaks for ``text``: a 440 Hz tone, ``len(text) * 240`` samples at 24 kHz."""
    t = np.arange(len(text) * SAMPLES_PER_CHAR) / SPEECH_RATE
    return np.round(8000 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)


def _split(data: bytes) -> Iterator[bytes]:
    offset = 0
    for size in itertools.cycle(SPEECH_CHUNK_BYTES):
        if offset >= len(data):
            return
        yield data[offset : offset + size]
        offset += size


def _error(
    status: int, message: str, type_: str, code: str | None = None, param: str | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


class _DroppedMidBody(Response):
    """Starts a chunked 200, sends ``parts``, then returns unfinished: uvicorn drops the connection."""

    def __init__(self, parts: Sequence[bytes], media_type: str) -> None:
        self.status_code = 200
        self.background = None
        self.parts = parts
        self.raw_headers = [(b"content-type", media_type.encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        for part in self.parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})


class FakeOpenAI:
    """The fake's state and its FastAPI ``app``. One instance may serve many tests: call
    :meth:`reset` between them (a server per test costs more than the tests themselves)."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.app = FastAPI()
        self.app.post("/{prefix:path}/chat/completions")(self._chat_completions)
        self.app.post("/{prefix:path}/audio/speech")(self._speech_endpoint)
        self._loop: asyncio.AbstractEventLoop | None = None  # the server's, seen on a request
        self.reset(api_key)

    def reset(self, api_key: str = API_KEY) -> None:
        """Forget requests, scripts and counters; accept ``api_key`` from now on."""
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.completed_streams = 0  # streamed bodies sent to their last byte
        self.gate_timeouts = 0  # paused replies that were never released
        self._chat: deque[ChatReply] = deque()
        self._speech: deque[SpeechScript] = deque()
        self._gate = asyncio.Event()  # binds to the server's loop on its first wait

    def script_chat(self, *replies: ChatReply) -> None:
        self._chat.extend(replies)

    def script_speech(self, *replies: SpeechScript) -> None:
        self._speech.extend(replies)

    def release(self) -> None:
        """Let a paused reply continue; callable from any thread (the server has its own)."""
        if self._loop is None:
            raise RuntimeError("no request has reached the fake yet")
        self._loop.call_soon_threadsafe(self._gate.set)

    @property
    def last_body(self) -> Any:
        return self.requests[-1].body

    # ── endpoints ─────────────────────────────────────────────────────────────────────────

    async def _accept(self, request: Request) -> tuple[Any, Response | None]:
        """Record the request; return its JSON body and, if the key is wrong, the 401."""
        self._loop = asyncio.get_running_loop()
        body = json.loads(await request.body())
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(RecordedRequest(request.method, request.url.path, headers, body))
        given = headers.get("authorization", "").removeprefix("Bearer ")
        if given == self.api_key:
            return body, None
        masked = f"{given[:3]}{'*' * max(len(given) - 5, 0)}{given[-2:]}"
        message = f"Incorrect API key provided: {masked}. You can find your API key in your account."
        return body, _error(401, message, "invalid_request_error", "invalid_api_key")

    async def _chat_completions(self, request: Request) -> Response:
        body, denied = await self._accept(request)
        if denied is not None:
            return denied
        if not self._chat:
            return _error(500, "fake: no chat reply scripted", "server_error")
        reply = self._chat.popleft()
        model = body.get("model", "")
        if isinstance(reply, ErrorReply):
            return _error(reply.status, reply.message, reply.type, reply.code, reply.param)
        if not body.get("stream"):
            return JSONResponse(_completion(reply, model))
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = [_sse(c) for c in _chunks(reply, model, usage)]
        if isinstance(reply, BrokenReply):
            return _DroppedMidBody(events, "text/event-stream")
        if isinstance(reply, InStreamError):
            error = {"message": "The server had an error while processing your request.", "type": reply.type}
            events.append(_sse({"error": error}))
        else:
            events.append(b"data: [DONE]\n\n")
        pause = reply.pause_after if isinstance(reply, TextReply | ToolCallsReply) else None
        return StreamingResponse(self._send(events, pause), media_type="text/event-stream")

    async def _speech_endpoint(self, request: Request) -> Response:
        body, denied = await self._accept(request)
        if denied is not None:
            return denied
        reply = self._speech.popleft() if self._speech else SpeechReply()
        if isinstance(reply, ErrorReply):
            return _error(reply.status, reply.message, reply.type, reply.code, reply.param)
        if body.get("response_format") != "pcm" or not body.get("input") or not body.get("voice"):
            return _error(400, "fake: needs input, voice and pcm", "invalid_request_error", None, "input")
        pcm = speech_for(body["input"]).astype("<i2").tobytes()
        if isinstance(reply, BrokenReply):
            return _DroppedMidBody(list(_split(pcm[: reply.speech_bytes])), "audio/pcm")
        return StreamingResponse(self._send(list(_split(pcm)), reply.pause_after), media_type="audio/pcm")

    async def _send(self, parts: Sequence[bytes], pause_after: int | None) -> AsyncIterator[bytes]:
        for number, part in enumerate(parts):
            if number == pause_after:
                try:
                    await asyncio.wait_for(self._gate.wait(), GATE_TIMEOUT)
                except TimeoutError:
                    self.gate_timeouts += 1
                self._gate.clear()
            yield part
        self.completed_streams += 1


# ── wire format ──────────────────────────────────────────────────────────────────────────────


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _chunks(reply: _Streamed, model: str, usage: bool) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a streamed reply, without ``[DONE]``."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        out = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [choice],
        }
        return out | {"usage": None} if usage else out

    if isinstance(reply, ToolCallsReply):
        out = [chunk({"role": "assistant", "content": None, "refusal": None})]
        for index, call in enumerate(reply.calls):
            at = {"index": index} if reply.with_index else {}
            head = at | {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
            out.append(chunk({"tool_calls": [head]}))
            for piece in call.fragments:
                out.append(chunk({"tool_calls": [at | {"function": {"arguments": piece}}]}))
        finish = reply.finish_reason
    else:
        out = [chunk({"role": "assistant", "content": "", "refusal": None})]
        out += [chunk({"content": piece}) for piece in reply.chunks]
        if not isinstance(reply, TextReply):
            return out  # broken or failing streams never finish
        finish = reply.finish_reason
    out.append(chunk({}, finish))
    if usage:
        tokens = {"prompt_tokens": 12, "completion_tokens": len(out), "total_tokens": 12 + len(out)}
        out.append(chunk({}) | {"choices": [], "usage": tokens})
    return out


def _completion(reply: _Streamed, model: str) -> dict[str, Any]:
    """A non-streamed ``chat.completion`` for a text or tool-calls reply."""
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    if isinstance(reply, ToolCallsReply):
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": "".join(c.fragments)}}
            for c in reply.calls
        ]
        finish = reply.finish_reason
    else:
        message["content"] = "".join(reply.chunks)
        finish = reply.finish_reason if isinstance(reply, TextReply) else "stop"
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [choice],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }
