"""Live speech-to-text on Deepgram's v1 listen WebSocket, through the official ``deepgram-sdk``.

A stream sends linear16 mono audio at ``sample_rate`` Hz and turns Deepgram's ``Results``,
``SpeechStarted`` and ``UtteranceEnd`` messages into ``STTEvent`` s, in the order received.
Times are seconds of caller audio since the stream opened (samples handed to ``send`` / rate).

A dropped socket is reopened and the audio sent since the end of the last final result (at most
``MAX_REPLAY_SECONDS``, see :mod:`app.providers.replay`) is replayed first, so an utterance in
progress is still recognised; the new socket's times are shifted by where the replay starts,
and a transcript never starts before the end of the previous final one. Replayed speech may
repeat an interim or ``SpeechStarted``.

Timeouts sized for a phone call, on the injected clock: a connect (the WebSocket handshake) gets
``CONNECT_TIMEOUT`` s; a socket that was sent ``READ_TIMEOUT`` s of audio and answered nothing
for ``READ_TIMEOUT`` s has stalled and is reopened like a dropped one. The first connect retries
like a reconnect. Retried: refused or lost connections, timeouts, HTTP 429/5xx; not retried: a
refused request (HTTP 4xx) or close code 1008 (Deepgram could not decode the audio). A socket
resets the failure count only once it produced a result.

``make_client`` and ``map_deepgram_error`` are shared with :mod:`app.providers.deepgram_tts`.
Neither the key nor transcripts are logged or put into errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.environment import DeepgramClientEnvironment
from deepgram.listen.v1.types import (
    ListenV1Error,
    ListenV1Results,
    ListenV1SpeechStarted,
    ListenV1UtteranceEnd,
)
from websockets.exceptions import ConnectionClosed, WebSocketException

from app.clock import Clock, SystemClock
from app.providers.base import (
    SpeechStarted,
    STTCapabilities,
    STTOptions,
    Transcript,
    UtteranceEnd,
)
from app.providers.errors import ProviderError
from app.providers.replay import ReconnectingStream, SocketFailure, backoff
from app.providers.streaming import legacy_websockets_imports, owned

with legacy_websockets_imports():
    import deepgram.listen.v1.client
    import deepgram.speak.v1.client  # noqa: F401  (used by app.providers.deepgram_tts)
    from deepgram.listen.v1.socket_client import AsyncV1SocketClient

__all__ = [
    "CONNECT_TIMEOUT",
    "PROVIDER",
    "READ_TIMEOUT",
    "DeepgramSTT",
    "backoff",
    "make_client",
    "map_deepgram_error",
]

PROVIDER = "deepgram"
log = logging.getLogger("app.providers.deepgram")

CONNECT_TIMEOUT = 3.0  # seconds for a WebSocket handshake (STT and TTS)
READ_TIMEOUT = 8.0  # seconds without an answer (to audio sent, or to a Flush) before giving up
_CLOSE_TIMEOUT = 5.0  # seconds ``end_input`` waits for the final results
_NOT_RETRYABLE_STATUS = frozenset({400, 401, 402, 403, 404, 422})


def make_client(
    api_key: str, base_url: str | None, http_client: httpx.AsyncClient | None = None
) -> AsyncDeepgramClient:
    """An SDK client for ``base_url`` (``http[s]://host[:port]``; ``None``: Deepgram's cloud).
    The SDK opens WebSockets at ``environment.production`` and REST at ``environment.base``;
    REST requests go through ``http_client`` when given (its pool and timeouts), else the SDK's."""
    extra: dict[str, Any] = {} if http_client is None else {"httpx_client": http_client}
    if base_url is None:
        return AsyncDeepgramClient(api_key=api_key, **extra)
    http = base_url.rstrip("/").replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    ws = http.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    env = DeepgramClientEnvironment(base=http, production=ws, agent=ws, agent_rest=http)
    return AsyncDeepgramClient(api_key=api_key, environment=env, **extra)


def map_deepgram_error(exc: BaseException, during: str) -> ProviderError:
    """``ProviderError`` for an SDK/transport failure while ``during`` (no key, no request text).

    Not retryable: HTTP 400/401/402/403/404/422 (the request was refused), close code 1008.
    Retryable: other statuses (429, 5xx, with ``Retry-After`` as ``retry_after``), refused or
    lost connections, timeouts. The error body's ``err_code`` is named; its ``err_msg`` is not.
    """
    if isinstance(exc, ApiError):
        status = exc.status_code or 0
        kind = "authentication failed" if status in (401, 403) else "request refused"
        retryable = status not in _NOT_RETRYABLE_STATUS
        body = exc.body if isinstance(exc.body, dict) else {}
        code = body.get("err_code")
        if isinstance(code, str) and code.replace("_", "").replace("-", "").isalnum() and len(code) <= 40:
            kind = f"{kind}, {code}"  # a code like INVALID_QUERY_PARAMETER; never the free-text message
        wait = _retry_after(exc.headers or {}) if retryable else None
        return ProviderError(
            PROVIDER, f"{during}: HTTP {status} ({kind})", retryable=retryable, retry_after=wait
        )
    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd is not None else 1006
        return closed_error(code, during)
    return ProviderError(PROVIDER, f"{during}: {type(exc).__name__}", retryable=True)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (an HTTP date: None, too far off for a call)."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        seconds = float(value) if value is not None else -1.0
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def closed_error(code: int, during: str) -> ProviderError:
    """The socket closed with ``code``: 1008 (the data was refused) is not worth a retry."""
    if code == 1008:
        return ProviderError(PROVIDER, f"{during}: connection closed (1008, data refused)", retryable=False)
    return ProviderError(PROVIDER, f"{during}: connection closed ({code})", retryable=True)


class DeepgramSTT:
    """``SpeechToText`` on Deepgram live streaming. ``sample_rate``: Hz of the int16 mono audio;
    ``keepalive_seconds``: time without audio sent before a ``KeepAlive``; ``reconnect_attempts``:
    reopenings tried after a failed connect or a drop (0.1 s, 0.2 s, 0.4 s … at most 2 s apart)
    before entering the stream or ``events()`` raises ``ProviderError(retryable=True)``. ``clock``
    times the keep-alives, the back-off and the timeouts (default: a ``SystemClock``)."""

    name = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        sample_rate: int = 16000,
        keepalive_seconds: float = 5.0,
        reconnect_attempts: int = 3,
        clock: Clock | None = None,
    ) -> None:
        if sample_rate <= 0 or keepalive_seconds <= 0 or reconnect_attempts < 0:
            raise ValueError("sample_rate and keepalive_seconds must be > 0, reconnect_attempts >= 0")
        self.sample_rate = sample_rate
        self.capabilities = STTCapabilities(interim_words=True, sample_rates=(sample_rate,))
        self._client = make_client(api_key, base_url)
        self._keepalive, self._attempts = keepalive_seconds, reconnect_attempts
        self._clock: Clock = clock if clock is not None else SystemClock()

    def connect_args(self, options: STTOptions) -> dict[str, Any]:
        """The v1 listen query parameters for ``options`` (model default ``nova-3``)."""
        model = options.model or "nova-3"
        args: dict[str, Any] = {
            "model": model,
            "language": options.language,
            "encoding": "linear16",
            "sample_rate": self.sample_rate,
            "channels": 1,
            "interim_results": options.interim_results,
            "endpointing": options.endpointing_ms if options.endpointing_ms > 0 else False,
            "vad_events": True,
            "smart_format": True,
            "punctuate": True,
        }
        if options.interim_results and options.utterance_end_ms > 0:  # needs interim results
            args["utterance_end_ms"] = options.utterance_end_ms
        if options.keywords:  # Nova-3 takes ``keyterm``; older models ``keywords``
            args["keyterm" if model.startswith("nova-3") else "keywords"] = list(options.keywords)
        return args

    def stream(self, options: STTOptions) -> AbstractAsyncContextManager[_DeepgramStream]:
        """A live stream for an ``async with`` block. Entering connects and raises
        ``ProviderError`` (``retryable=False`` on a refused key); leaving ends the input (the
        last results arrive, ≤ 5 s) and stops every task of the stream."""
        args = self.connect_args(options)
        stream = _DeepgramStream(self._client, args, self.sample_rate, self._keepalive, self._clock)
        stream.attempts = self._attempts
        return owned(stream, "deepgram-stt")


class _DeepgramStream(ReconnectingStream[AsyncV1SocketClient]):
    """One live stream: the queue, replay and supervisor are :class:`ReconnectingStream`'s;
    here are Deepgram's socket (sender, keep-alive, stall watch), its messages and its close
    (``Finalize``, then ``CloseStream``)."""

    provider, _log, connect_timeout, close_timeout = PROVIDER, log, CONNECT_TIMEOUT, _CLOSE_TIMEOUT
    transport_errors = (ApiError, OSError, TimeoutError, WebSocketException)

    def __init__(
        self, client: AsyncDeepgramClient, args: dict[str, Any], rate: int, keepalive: float, clock: Clock
    ):
        super().__init__(rate, keepalive, clock)
        self._client, self._args = client, args
        self._close_sent = False  # CloseStream went out on the current socket
        self._stall_bytes = 2 * round(READ_TIMEOUT * rate)  # READ_TIMEOUT s of audio
        self._unanswered = 0  # audio bytes sent on the current socket since its last message
        self._answered_at = 0.0  # clock time of the current socket's last message (or its opening)

    def _connect(self) -> AbstractAsyncContextManager[AsyncV1SocketClient]:
        connect: AbstractAsyncContextManager[AsyncV1SocketClient] = self._client.listen.v1.connect(
            **self._args
        )
        return connect

    def _map_error(self, exc: BaseException, during: str) -> ProviderError:
        return map_deepgram_error(exc, during)

    def _closed_error(self, code: int, during: str) -> ProviderError:
        return closed_error(code, during)

    async def _ping(self, sock: AsyncV1SocketClient) -> None:
        await sock.send_keep_alive()

    async def _pump(self, sock: AsyncV1SocketClient, base: float, replay: list[bytes]) -> int | None:
        """Run one socket until it closes: None when it closed normally after our CloseStream,
        else the close code. Raises ``SocketFailure`` (in a group) when it stops answering."""
        self._close_sent = False
        self._last_sent = self._answered_at = self._clock.now()
        self._unanswered = 0
        async with asyncio.TaskGroup() as tg:
            sender = tg.create_task(self._send_loop(sock, replay), name="deepgram-stt-send")
            keeper = tg.create_task(self._keep_alive(sock), name="deepgram-stt-keepalive")
            watch = tg.create_task(self._watch(), name="deepgram-stt-watch")
            code = await self._read(sock, base)
            for task in (sender, keeper, watch):
                task.cancel()
        return None if self._close_sent and code == 1000 else code

    async def _read(self, sock: AsyncV1SocketClient, base: float) -> int:
        """Messages until the socket closes; its close code."""
        try:
            while True:
                message = await sock.recv()
                self._unanswered, self._answered_at = 0, self._clock.now()
                self._on_message(message, base)
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else 1006

    async def _watch(self) -> None:
        """Raise ``SocketFailure`` once ``READ_TIMEOUT`` s of audio went out and nothing came back
        for ``READ_TIMEOUT`` s of clock time (the TaskGroup then stops the socket's other work)."""
        clock = self._clock
        while True:
            due = self._answered_at + READ_TIMEOUT
            if clock.now() >= due and self._unanswered >= self._stall_bytes:
                stalled = ProviderError(PROVIDER, f"no results for {READ_TIMEOUT:g} s", retryable=True)
                raise SocketFailure(stalled)
            await clock.sleep(max(due - clock.now(), 1.0))

    async def _send_loop(self, sock: AsyncV1SocketClient, replay: list[bytes]) -> None:
        """Replay, then queued audio in order."""
        clock = self._clock
        with contextlib.suppress(ConnectionClosed):
            for data in replay:
                await sock.send_media(data)
                self._last_sent = clock.now()
                self._unanswered += len(data)
            while not self._close_taken:
                item = await self._audio.get()
                if item is None:
                    self._close_taken = True
                else:
                    self._replay.append(item)  # kept before sending: a failed send is replayed
                    await sock.send_media(item)
                    self._last_sent = clock.now()
                    self._unanswered += len(item)
            # Finalize first: everything heard becomes a final result (``from_finalize``), read
            # before CloseStream's close, so the caller's last words are never lost at a hang-up
            await sock.send_finalize()
            self._close_sent = True
            await sock.send_close_stream()

    def _on_message(self, msg: object, base: float) -> None:
        if isinstance(msg, ListenV1Results):
            self._progress = True  # a socket that produced a result is healthy
            self._on_results(msg, base)
        elif isinstance(msg, ListenV1SpeechStarted):
            self._events.put_nowait(SpeechStarted(timestamp=round(base + msg.timestamp, 6)))
        elif isinstance(msg, ListenV1UtteranceEnd):
            self._events.put_nowait(UtteranceEnd(last_word_end=round(base + msg.last_word_end, 6)))
        elif isinstance(msg, ListenV1Error):
            log.warning("deepgram: error message %s: %s", msg.variant, msg.description)
        # Metadata (after CloseStream) and unknown messages are ignored

    def _on_results(self, msg: ListenV1Results, base: float) -> None:
        """A transcript spans its first word's start to its last word's end (else its window)."""
        floor, window_end = self._floor, base + msg.start + msg.duration
        if msg.is_final:  # audio up to the window's end will not be revised: no need to replay it
            self._replay.trim_to(window_end)
            self._floor = max(floor, window_end)
        alt = msg.channel.alternatives[0] if msg.channel.alternatives else None
        if alt is None or not alt.transcript.strip():
            return  # Deepgram sends empty results during silence
        words = alt.words
        start = round(max(base + (words[0].start if words else msg.start), floor), 6)
        end = round(max(base + (words[-1].end if words else msg.start + msg.duration), start), 6)
        final, speech_final = bool(msg.is_final), bool(msg.speech_final)
        self._events.put_nowait(Transcript(alt.transcript, final, speech_final, alt.confidence, start, end))
