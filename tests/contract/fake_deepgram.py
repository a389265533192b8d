"""A small, protocol-faithful fake of Deepgram's live STT WebSocket (``/v1/listen``) and Aura REST
text-to-speech (``/v1/speak``), for contract tests of the real ``deepgram-sdk`` client.

Recognition is scripted: ``FakeDeepgram.utterances`` are "heard" in order. Audio is judged in
10 ms frames: a frame is loud when its mean |sample| reaches ``threshold``. Loud frames start
speech (``SpeechStarted`` with ``vad_events=true``); after 200 ms of speech an interim ``Results``
carries the first half of the words (and again every ``interim_every_s`` of speech, if set,
one word more each time);
``endpointing`` ms of quiet end it with a final ``Results``
(``speech_final=true``) holding the whole text; ``utterance_end_ms`` of quiet after the last word
sends ``UtteranceEnd``. Long silence gets empty final results, like the real service. All times
are seconds of audio received on that socket. ``Finalize``/``CloseStream`` flush a pending
utterance (``from_finalize=true``); ``CloseStream`` then sends ``Metadata`` and closes (1000).

Failure injection: ``drop_after_bytes[i]`` closes the i-th listen socket (with ``drop_code``,
1011 unless set) once it has received that many audio bytes; ``listen_status[i]`` refuses the
i-th listen upgrade with that HTTP status; ``drop_after_speech_s[i]`` closes the i-th listen socket
once it heard that many seconds of loud audio, after calling ``on_drop`` (e.g. to stop the server
listening: a dead service); ``stall_after_bytes[i]`` makes the i-th listen socket
answer nothing more once it has received that many bytes (it still reads). ``idle_close_seconds``
(real seconds) closes a listen socket that got no audio or message that long with 1011 and
``NET-0001``, as Deepgram does after about 10 s. ``split_final_seconds``: a long utterance comes
as several ``is_final`` results (half the words left each time speech lasted that long since the
last one) before the ``speech_final`` one. A wrong
``Authorization: Token`` header is refused with HTTP 401, parameters Deepgram would reject
(unknown model, a model without that language) with HTTP 400.

``/v1/speak`` (REST streaming text-to-speech) is :class:`FakeSpeak` in ``fake_deepgram_speak.py``:
``FakeDeepgram.speak`` holds its settings and what it saw.

``now``: when set (a test's clock, e.g. a ``FakeClock`` it steps by hand), each listen socket
notes when it opened (``opened_at``) and when each ``KeepAlive`` arrived (``keepalive_at``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.contract.fake_deepgram_speak import SECONDS_PER_CHAR, FakeSpeak, SpeakRequest, tone

_MODEL_INFO = {"name": "general-nova-3", "version": "2025-01-01.0", "arch": "nova-3"}
_MODEL_UUID = "00000000-0000-4000-8000-000000000003"
__all__ = ["SECONDS_PER_CHAR", "FakeDeepgram", "FakeSpeak", "ListenSocket", "SpeakRequest", "tone"]
Message = dict[str, Any]


@dataclass
class ListenSocket:
    """What one ``/v1/listen`` connection saw, and sent (``sent``)."""

    authorized: bool
    query: list[tuple[str, str]]
    bytes_received: int = 0
    keepalives: int = 0
    finalizes: int = 0
    close_stream: bool = False
    dropped: bool = False
    sent: list[Message] = field(default_factory=list)
    opened_at: float | None = None  # ``FakeDeepgram.now`` when the socket was accepted
    keepalive_at: list[float] = field(default_factory=list)

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)


@dataclass
class FakeDeepgram:
    api_key: str = "test-key"
    utterances: list[str] = field(default_factory=list)
    threshold: int = 1000
    drop_after_bytes: list[int | None] = field(default_factory=list)
    drop_code: int = 1011
    listen_status: list[int | None] = field(default_factory=list)
    stall_after_bytes: list[int | None] = field(default_factory=list)
    idle_close_seconds: float | None = None
    split_final_seconds: float | None = None
    interim_every_s: float | None = None  # interims again every this long of speech (None: once)
    # the i-th listen socket closes (``drop_code``) once it heard this many seconds of loud audio,
    # calling ``on_drop`` first (on the server's loop: e.g. to stop the server listening)
    drop_after_speech_s: list[float | None] = field(default_factory=list)
    on_drop: Callable[[], None] | None = None
    listens: list[ListenSocket] = field(default_factory=list)
    speak: FakeSpeak = field(init=False)
    now: Callable[[], float] | None = None

    def __post_init__(self) -> None:
        self.speak = FakeSpeak(self.api_key)

    def reset(self) -> None:
        """Back to a fresh fake with the same key, for a server shared between tests."""
        self.__dict__.update(FakeDeepgram(api_key=self.api_key).__dict__)

    def app(self) -> ASGIApp:
        """The fake as one ASGI app: ``POST /v1/speak`` goes to ``self.speak`` (whichever it is
        when the request comes: ``reset`` replaces it), the rest to a Starlette app."""
        listen = Starlette(routes=[WebSocketRoute("/v1/listen", self._listen)])

        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"] == "/v1/speak":
                return await self.speak(scope, receive, send)
            await listen(scope, receive, send)

        return serve

    def _authorized(self, ws: WebSocket) -> bool:
        return ws.headers.get("authorization") == f"Token {self.api_key}"

    async def _refuse(self, ws: WebSocket, status: int, message: str) -> None:
        body = {"err_code": "INVALID_AUTH" if status == 401 else "Bad Request", "err_msg": message}
        await ws.send_denial_response(JSONResponse(body, status_code=status))

    async def _listen(self, ws: WebSocket) -> None:
        rec = ListenSocket(self._authorized(ws), ws.query_params.multi_items())
        index = len(self.listens)
        self.listens.append(rec)
        status = self.listen_status[index] if index < len(self.listen_status) else None
        if status is not None:
            return await self._refuse(ws, status, "refused")
        problem = "Invalid credentials." if not rec.authorized else _check_listen_query(rec)
        if problem:
            return await self._refuse(ws, 401 if not rec.authorized else 400, problem)
        await ws.accept()
        rec.opened_at = self.now() if self.now is not None else None
        drop = self.drop_after_bytes[index] if index < len(self.drop_after_bytes) else None
        stall = self.stall_after_bytes[index] if index < len(self.stall_after_bytes) else None
        speech = self.drop_after_speech_s[index] if index < len(self.drop_after_speech_s) else None
        recogniser = _Recogniser(rec, self)

        async def emit(messages: list[Message]) -> None:
            for message in messages:
                rec.sent.append(message)
                await ws.send_text(json.dumps(message))

        try:
            while (msg := await self._receive(ws))["type"] != "websocket.disconnect":
                if msg["type"] == "idle":
                    return await ws.close(1011, "NET-0001: no audio received within the timeout window")
                if msg.get("bytes") is not None:
                    rec.bytes_received += len(msg["bytes"])
                    if drop is not None and rec.bytes_received >= drop:
                        rec.dropped = True
                        return await ws.close(self.drop_code, "fake drop")
                    if stall is None or rec.bytes_received < stall:  # stalled: reads, hears nothing
                        await emit(recogniser.feed(msg["bytes"]))
                    if speech is not None and recogniser.loud_seconds >= speech:
                        rec.dropped = True
                        if self.on_drop is not None:
                            self.on_drop()
                        return await ws.close(self.drop_code, "fake drop")
                    continue
                kind = json.loads(msg["text"]).get("type")
                if kind == "KeepAlive":
                    rec.keepalives += 1
                    if self.now is not None:
                        rec.keepalive_at.append(self.now())
                elif kind == "Finalize":
                    rec.finalizes += 1
                    await emit(recogniser.flush())
                elif kind == "CloseStream":
                    rec.close_stream = True
                    await emit([*recogniser.flush(), recogniser.metadata()])
                    return await ws.close(1000)
        except WebSocketDisconnect:
            return

    async def _receive(self, ws: WebSocket) -> Message:
        """The next ASGI message, or ``{"type": "idle"}`` after ``idle_close_seconds`` without one."""
        try:
            return dict(await asyncio.wait_for(ws.receive(), self.idle_close_seconds))
        except TimeoutError:
            return {"type": "idle"}


# Deepgram's streaming models and the languages each takes (the Models & Languages overview,
# 2026): Nova-3 by primary language subtag (``multi``: code-switching); English variants only
# for the Nova-2 use-case models and Nova-3 Medical.
_ENGLISH = frozenset({"en", "en-US", "en-AU", "en-GB", "en-IN", "en-NZ"})
_NOVA2_CODES = "multi en es fr pt de nl sv da it tr no id bg cs fi hi hu ja ko pl ru uk vi ca et el lv lt"
_NOVA2 = frozenset(f"{_NOVA2_CODES} ms ro sk zh th".split(" "))
_NOVA3 = _NOVA2 | frozenset(["be", "bn", "bs", "hr", "kn", "mk", "mr", "sr", "sl", "ta", "tl", "te"])
_ENGLISH_ONLY = frozenset(
    {
        "nova-3-medical",
        "nova-2-phonecall",
        "nova-2-meeting",
        "nova-2-finance",
        "nova-2-conversationalai",
        "nova-2-voicemail",
        "nova-2-video",
        "nova-2-medical",
        "nova-2-drivethru",
        "nova-2-automotive",
        "nova-2-atc",
    }
)


def _model_problem(model: str, language: str) -> str | None:
    """Why Deepgram refuses ``model`` with ``language`` (None: it takes them)."""
    primary = language.split("-")[0]
    if model in ("nova-3", "nova-3-general"):
        return None if primary in _NOVA3 else f"nova-3 does not support language {language}"
    if model in ("nova-2", "nova-2-general"):
        return None if primary in _NOVA2 else f"nova-2 does not support language {language}"
    if model in _ENGLISH_ONLY:
        return None if language in _ENGLISH else f"{model} is English only"
    return f"unknown model {model}"


def _check_listen_query(rec: ListenSocket) -> str | None:
    """The HTTP 400 reasons Deepgram gives for the parameters this project sends."""
    query = dict(rec.query)
    problem = _model_problem(query.get("model", "nova-3"), query.get("language", "en"))
    if problem:
        return problem
    if query.get("encoding", "linear16") not in ("linear16", "mulaw", "alaw", "opus", "flac"):
        return "unknown encoding"
    if "encoding" in query and not query.get("sample_rate", "").isdigit():
        return "sample_rate is required with encoding"
    for name in ("interim_results", "vad_events", "smart_format", "punctuate"):
        if query.get(name, "false") not in ("true", "false"):
            return f"{name} must be true or false"
    if not (query.get("endpointing", "10").isdigit() or query.get("endpointing") == "false"):
        return "endpointing must be an integer or false"
    if "utterance_end_ms" in query and int(query["utterance_end_ms"]) < 1000:
        return "utterance_end_ms must be at least 1000"
    nova3 = query.get("model", "").startswith("nova-3")
    if rec.param("keyterm") is not None and not nova3:
        return "keyterm is only supported by Nova-3"
    if rec.param("keywords") is not None and nova3:
        return "Keywords are not supported for Nova-3, use keyterm"
    return None


def _first_half(text: str) -> str:
    """What an interim result hears of ``text``: the first half of its words (at least one)."""
    words = text.split()
    return " ".join(words[: max(1, len(words) // 2)])


class _Recogniser:
    """Energy-based scripted recognition for one listen socket (see the module docstring).
    Positions are in samples received on this socket."""

    def __init__(self, rec: ListenSocket, fake: FakeDeepgram) -> None:
        query = dict(rec.query)
        self._fake, self._rate = fake, int(query.get("sample_rate", "16000"))
        self._frame = self._rate // 100
        endpointing = query.get("endpointing", "10")  # Deepgram's default: 10 ms
        self._endpoint = None if endpointing == "false" else int(endpointing) * self._rate // 1000
        self._interim = query.get("interim_results") == "true"
        self._vad = query.get("vad_events") == "true"
        ue_ms = query.get("utterance_end_ms") if self._interim else None  # needs interim results
        self._utterance_end = None if ue_ms is None else int(ue_ms) * self._rate // 1000
        self._request_id = str(uuid.uuid4())
        self._buf = b""
        self._pos = 0  # samples judged so far
        self._final_end = 0  # where the last final result's window ended
        self._speech_start: int | None = None
        self._last_loud = 0
        self._interim_sent = False
        self._interim_due: int | None = None  # speech (samples) after which the next interim is due
        self._interims = 0  # interims of the utterance in progress
        self._word_end_pending: int | None = None  # last word end awaiting UtteranceEnd
        self._loud_frames = 0

    @property
    def loud_seconds(self) -> float:
        """Seconds of loud audio heard on this socket."""
        return self._loud_frames * self._frame / self._rate

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        out: list[Message] = []
        step = 2 * self._frame
        while len(self._buf) >= step:
            frame, self._buf = np.frombuffer(self._buf[:step], dtype="<i2"), self._buf[step:]
            self._pos += self._frame
            loud = float(np.abs(frame.astype(np.int32)).mean()) >= self._fake.threshold
            out.extend(self._loud() if loud else self._quiet())
        return out

    def flush(self) -> list[Message]:
        """``Finalize``: everything heard so far becomes final."""
        if self._speech_start is not None:
            return self._finish(speech_final=False, from_finalize=True)
        if self._pos > self._final_end:
            return [self._results("", is_final=True, from_finalize=True)]
        return []

    def metadata(self) -> Message:
        ids = {"transaction_key": "deprecated", "request_id": self._request_id, "sha256": "0" * 64}
        return {
            "type": "Metadata",
            **ids,
            "created": "2025-01-01T00:00:00.000Z",
            "duration": self._sec(self._pos),
            "channels": 1,
            "models": [_MODEL_UUID],
            "model_info": {_MODEL_UUID: _MODEL_INFO},
        }

    def _sec(self, samples: float) -> float:
        return round(samples / self._rate, 3)

    def _loud(self) -> list[Message]:
        self._loud_frames += 1
        out = []
        if self._speech_start is None:
            start = self._speech_start = self._pos - self._frame
            self._interim_sent, self._word_end_pending, self._interims = False, None, 0
            self._interim_due = self._rate // 5  # the first interim after 200 ms of speech
            if self._vad:
                out.append({"type": "SpeechStarted", "channel": [0], "timestamp": self._sec(start)})
        self._last_loud = self._pos
        due = self._interim_due
        if self._interim and due is not None and self._pos - self._speech_start >= due:
            self._interim_sent = True
            every = self._fake.interim_every_s
            self._interim_due = None if every is None else due + round(every * self._rate)
            text = self._fake.utterances[0] if self._fake.utterances else ""
            self._interims += 1  # each later interim hears one word more (a word per ~300 ms)
            heard = _first_half(text).split()
            heard = text.split()[: len(heard) + self._interims - 1]
            out.append(self._results(" ".join(heard), is_final=False))
        split = self._fake.split_final_seconds
        if split is not None and self._pos - self._speech_start >= round(split * self._rate):
            words = (self._fake.utterances[0] if self._fake.utterances else "").split()
            if len(words) > 1:  # a long utterance: its first half is final, the rest follows
                self._fake.utterances[0] = " ".join(words[len(words) // 2 :])
                out.append(self._results(" ".join(words[: len(words) // 2]), is_final=True))
                self._speech_start, self._interim_sent = self._pos, False
                self._interim_due = self._rate // 5
        return out

    def _quiet(self) -> list[Message]:
        if self._speech_start is not None:
            if self._endpoint is not None and self._pos - self._last_loud >= self._endpoint:
                return self._finish(speech_final=True)
        elif self._word_end_pending is not None:
            if self._utterance_end is None or self._pos - self._word_end_pending >= self._utterance_end:
                self._word_end_pending = None
                if self._utterance_end is not None:
                    last_word_end = self._sec(self._last_loud)
                    return [{"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": last_word_end}]
        elif self._pos - self._final_end >= 3 * self._rate:  # long silence: an empty final
            return [self._results("", is_final=True)]
        return []

    def _finish(self, *, speech_final: bool, from_finalize: bool = False) -> list[Message]:
        text = self._fake.utterances.pop(0) if self._fake.utterances else ""
        out = []
        if self._interim and not self._interim_sent:
            out.append(self._results(_first_half(text), is_final=False))
        out.append(self._results(text, is_final=True, speech_final=speech_final, from_finalize=from_finalize))
        self._word_end_pending, self._speech_start = self._last_loud, None
        return out

    def _results(
        self, text: str, *, is_final: bool, speech_final: bool = False, from_finalize: bool = False
    ) -> Message:
        """A ``Results`` message for the window since the last final; words spread evenly over the speech."""
        start, tokens, words, first = self._final_end, text.split(), [], self._speech_start
        if tokens and first is not None:
            span = (self._last_loud - first) / len(tokens)
            for i, token in enumerate(tokens):
                w0, w1 = self._sec(first + i * span), self._sec(first + (i + 1) * span)
                word = {"word": token.lower().strip(".,?!"), "start": w0, "end": w1, "confidence": 0.98}
                words.append({**word, "punctuated_word": token})
        if is_final:
            self._final_end = self._pos
        model = {"model_info": _MODEL_INFO, "model_uuid": _MODEL_UUID}
        alternative = {"transcript": text, "confidence": 0.98 if text else 0.0, "words": words}
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": self._sec(self._pos - start),
            "start": self._sec(start),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [alternative]},
            "metadata": {"request_id": self._request_id, **model},
        }
