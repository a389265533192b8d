"""A small, protocol-faithful fake of the OpenAI HTTP API, for contract tests of the real SDK.

Serve ``FakeOpenAI().app`` with ``tests.servers.serve_in_thread``; the SDK's ``base_url`` is
then ``URL + "/v1"``. Routes match any prefix (``/{prefix}/chat/completions``), so a
compatible server mounted elsewhere (``/llama/v1``) can be imitated too.

* ``POST .../chat/completions``: ``stream=true`` answers ``text/event-stream`` exactly as
  OpenAI does (``data: {chat.completion.chunk}`` events, a role-only first chunk, content or
  ``tool_calls`` deltas with ``index``, a ``finish_reason`` chunk, ``data: [DONE]``); without
  ``stream`` it answers one ``chat.completion`` object. With ``stream_options.include_usage``,
  as OpenAI does, every chunk carries ``"usage": null`` and a last chunk before ``[DONE]`` has
  empty ``choices`` and the ``usage`` object (:func:`prompt_tokens`, :func:`completion_tokens`); a
  stream that breaks or fails midway sends none. Each usage sent in full is kept in
  ``FakeOpenAI.usage_sent``.
* ``POST .../audio/speech``: raw 24 kHz little-endian int16 mono (``response_format="pcm"``
  only), a deterministic tone of ``SAMPLES_PER_CHAR`` samples per input character, sent in
  odd-sized pieces (``SPEECH_CHUNK_BYTES``).

Under ``/v1`` (OpenAI itself) the fake refuses, with a 400 in OpenAI's shape, what OpenAI refuses
per its docs: a model it does not serve (:data:`CHAT_MODELS`, :data:`SPEECH_MODELS`), ``max_tokens``
or a non-default ``temperature`` on a reasoning model, ``reasoning_effort`` on a chat model,
function tools with a reasoning model unless ``reasoning_effort`` is ``"none"``, an unknown voice
or ``response_format``, ``speed`` outside 0.25-4. Other prefixes imitate compatible servers and
accept any model. An :class:`ErrorReply` can carry ``Retry-After``; a reply that pauses and is
never released is a stalled stream.

Both check ``Authorization: Bearer <api_key>`` (401 in OpenAI's error shape otherwise) and
record every request. Replies are scripted per endpoint; a reply may pause after some body
chunks until the test calls :meth:`FakeOpenAI.release` (no sleeps, no timing). For benchmarks,
``chat_fallback`` answers chat requests when nothing is scripted (from the request body), and
``chat_first_token_delay`` holds a streamed reply's first chunk that many seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
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

# models OpenAI serves on Chat Completions (2026-12; some with a shutdown date, still served)
REASONING_MODELS = frozenset({"gpt-6-luna", "gpt-6-sol", "gpt-6.1-sol", "gpt-6-astra", "gpt-5.6-luna",
                              "gpt-5.6-sol", "gpt-5.6-terra", "gpt-5.5", "gpt-5.4"})  # fmt: skip
CHAT_MODELS = REASONING_MODELS | {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini"}
SPEECH_MODELS = frozenset({"tts-1", "tts-1-hd", "gpt-4o-mini-tts"})  # all shut down 2027-01-06
SPEECH_VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage",
                           "shimmer", "verse", "marin", "cedar"})  # fmt: skip
SPEECH_FORMATS = frozenset({"mp3", "opus", "aac", "flac", "wav", "pcm"})

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
    retry_after: str | None = None  # the Retry-After header, e.g. "0.5"


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
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    param: str | None = None,
    retry_after: str | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    headers = {"retry-after": retry_after} if retry_after is not None else None
    return JSONResponse(body, status_code=status, headers=headers)


def _scripted(reply: ErrorReply) -> JSONResponse:
    return _error(reply.status, reply.message, reply.type, reply.code, reply.param, reply.retry_after)


def _refused(message: str, param: str, code: str | None = None) -> JSONResponse:
    return _error(400, message, "invalid_request_error", code, param)


def _chat_refusal(body: dict[str, Any]) -> JSONResponse | None:
    """What OpenAI answers a chat request it refuses (None: it accepts it)."""
    model = body.get("model", "")
    if model not in CHAT_MODELS:
        return _error(404, f"The model `{model}` does not exist or you do not have access to it.",
                      "invalid_request_error", "model_not_found", "model")  # fmt: skip
    effort = body.get("reasoning_effort")
    if model not in REASONING_MODELS:
        if effort is not None:
            return _refused(f"reasoning_effort is not supported with the model {model}.", "reasoning_effort")
        return None
    if "max_tokens" in body:
        message = "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead."
        return _refused(message, "max_tokens", "unsupported_parameter")
    if body.get("temperature", 1) != 1:
        message = "Unsupported value: 'temperature': only the default (1) value is supported."
        return _refused(message, "temperature", "unsupported_value")
    if body.get("tools") and effort != "none":
        return _refused(f"Function tools with reasoning_effort are not supported for {model} in "
                        "/v1/chat/completions. To use function tools, use /v1/responses or set "
                        "reasoning_effort to 'none'.", "reasoning_effort")  # fmt: skip
    return None


def _speech_refusal(body: dict[str, Any]) -> JSONResponse | None:
    if body.get("model") not in SPEECH_MODELS:
        return _refused(f"Invalid value for 'model': {body.get('model')!r}.", "model", "invalid_value")
    if body.get("voice") not in SPEECH_VOICES:
        return _refused(f"Invalid value for 'voice': {body.get('voice')!r}.", "voice", "invalid_value")
    if body.get("response_format", "mp3") not in SPEECH_FORMATS:
        return _refused("Invalid value for 'response_format'.", "response_format", "invalid_value")
    if not 0.25 <= body.get("speed", 1.0) <= 4.0:
        return _refused("Invalid 'speed': expected a value between 0.25 and 4.", "speed", "invalid_value")
    return None


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
        # streams still running from before a reset (a previous test's, closed early by its
        # client) count nothing after it
        self._epoch = getattr(self, "_epoch", 0) + 1
        self.requests: list[RecordedRequest] = []
        self.completed_streams = 0  # streamed bodies sent to their last byte
        self.usage_sent: list[dict[str, Any]] = []  # each streamed usage chunk's ``usage``, with ``model``
        self.gate_timeouts = 0  # paused replies that were never released
        self._chat: deque[ChatReply] = deque()
        # answers a chat request when no reply is scripted (from its JSON body); None: HTTP 500
        self.chat_fallback: Callable[[Any], ChatReply] | None = None
        self.chat_first_token_delay = 0.0  # seconds before a streamed reply's first chunk
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
        refusal = _chat_refusal(body) if request.url.path.startswith("/v1/") else None
        if refusal is not None:
            return refusal
        if not self._chat and self.chat_fallback is None:
            return _error(500, "fake: no chat reply scripted", "server_error")
        reply = self._chat.popleft() if self._chat else self._fallback(body)
        model = body.get("model", "")
        if isinstance(reply, ErrorReply):
            return _scripted(reply)
        if not body.get("stream"):
            return JSONResponse(_completion(reply, model))
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = _chunks(reply, model, usage, prompt_tokens(body))
        counted = chunks[-1].get("usage") if chunks else None
        sent = {"model": model, **counted} if counted else None
        events = [_sse(c) for c in chunks]
        if isinstance(reply, BrokenReply):
            return _DroppedMidBody(events, "text/event-stream")
        if isinstance(reply, InStreamError):
            error = {"message": "The server had an error while processing your request.", "type": reply.type}
            events.append(_sse({"error": error}))
        else:
            events.append(b"data: [DONE]\n\n")
        pause = reply.pause_after if isinstance(reply, TextReply | ToolCallsReply) else None
        delay = self.chat_first_token_delay
        return StreamingResponse(self._send(events, pause, delay, sent), media_type="text/event-stream")

    async def _speech_endpoint(self, request: Request) -> Response:
        body, denied = await self._accept(request)
        if denied is not None:
            return denied
        refusal = _speech_refusal(body) if request.url.path.startswith("/v1/") else None
        if refusal is not None:
            return refusal
        reply = self._speech.popleft() if self._speech else SpeechReply()
        if isinstance(reply, ErrorReply):
            return _scripted(reply)
        if body.get("response_format") != "pcm" or not body.get("input") or not body.get("voice"):
            return _error(400, "fake: needs input, voice and pcm", "invalid_request_error", None, "input")
        pcm = speech_for(body["input"]).astype("<i2").tobytes()
        if isinstance(reply, BrokenReply):
            return _DroppedMidBody(list(_split(pcm[: reply.speech_bytes])), "audio/pcm")
        return StreamingResponse(self._send(list(_split(pcm)), reply.pause_after), media_type="audio/pcm")

    def _fallback(self, body: Any) -> ChatReply:
        assert self.chat_fallback is not None
        return self.chat_fallback(body)

    async def _send(
        self,
        parts: Sequence[bytes],
        pause_after: int | None,
        first_delay: float = 0.0,
        usage: dict[str, Any] | None = None,
    ) -> AsyncIterator[bytes]:
        epoch = self._epoch
        if first_delay > 0:
            await asyncio.sleep(first_delay)
        for number, part in enumerate(parts):
            if number == pause_after:
                try:
                    await asyncio.wait_for(self._gate.wait(), GATE_TIMEOUT)
                except TimeoutError:
                    self.gate_timeouts += 1
                self._gate.clear()
            yield part
        if epoch != self._epoch:
            return
        self.completed_streams += 1
        if usage is not None:  # the whole stream went out, its usage chunk with it
            self.usage_sent.append(usage)


# ── wire format ──────────────────────────────────────────────────────────────────────────────


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def prompt_tokens(body: Any) -> int:
    """The fake's token count of a request's messages: a token per 4 characters of their JSON."""
    return max(1, len(json.dumps(body.get("messages", []))) // 4)


def completion_tokens(reply: _Streamed) -> int:
    """The fake's token count of a reply: a token per 4 characters of its content or arguments."""
    if isinstance(reply, ToolCallsReply):
        text = "".join(c.name + "".join(c.fragments) for c in reply.calls)
    else:
        text = "".join(reply.chunks)
    return max(1, len(text) // 4)


def _chunks(reply: _Streamed, model: str, usage: bool, prompt: int = 12) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a streamed reply, without ``[DONE]``; with
    ``usage``, ``prompt`` input tokens are reported in the last."""

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
        made = completion_tokens(reply)
        tokens = {
            "prompt_tokens": prompt,
            "completion_tokens": made,
            "total_tokens": prompt + made,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        }  # fmt: skip
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
