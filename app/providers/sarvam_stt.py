"""Live speech-to-text on Sarvam's realtime WebSocket (``/speech-to-text-realtime/ws``, the
``saaras:v3-realtime`` model), through the official ``sarvamai`` SDK.

A stream sends linear16 mono audio at ``sample_rate`` Hz (8000 or 16000) as base64 in
``audio_input`` messages and turns Sarvam's messages into ``STTEvent`` s, in the order received:
``vad.speech_start`` → ``SpeechStarted``, ``transcript.partial`` → an interim ``Transcript``,
``transcript.final`` (one per utterance, ended by Sarvam's voice activity detection) → a final
``Transcript`` with ``speech_final``. Times are seconds of caller audio since the stream opened;
partials carry none (Sarvam sends none), finals carry ``start_s``/``end_s`` (asked for with
``return_timestamps=true``). ``end_input`` sends ``end``: Sarvam finalises the utterance in
progress, sends ``session.end`` and closes (1000).

A dropped socket is reopened and the audio sent since the end of the last final result is
replayed first (:mod:`app.providers.replay`, shared with Deepgram), so an utterance in progress
is still recognised; the new socket's times are shifted by where the replay starts, and a
transcript never starts before the end of the previous final one. Retried: refused or lost
connections, timeouts, HTTP 429/5xx, a fatal ``error`` frame with a 408/429/5xx status, close
codes 1008 (inactivity) and 1011; not retried: HTTP 400/401/403/404/422 at the handshake, a
fatal ``error`` frame with such a status, close code 4000 (an application rejection).

The key goes in the ``api-subscription-key`` header. It is never logged nor put into an error:
the SDK's ``ApiError`` carries the request headers (key included) in its ``str``, so only its
status is read (:mod:`app.providers.sarvam_common`), and the websockets client's DEBUG
handshake lines are redacted there. Transcripts are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from contextlib import AbstractAsyncContextManager
from typing import Any

from sarvamai import AsyncSarvamAI
from sarvamai.core.api_error import ApiError
from sarvamai.types.realtime_audio_input import RealtimeAudioInput
from sarvamai.types.realtime_end import RealtimeEnd
from sarvamai.types.realtime_error import RealtimeError
from sarvamai.types.realtime_ping import RealtimePing
from sarvamai.types.realtime_session_end import RealtimeSessionEnd
from sarvamai.types.realtime_transcript_final import RealtimeTranscriptFinal
from sarvamai.types.realtime_transcript_partial import RealtimeTranscriptPartial
from sarvamai.types.realtime_vad_speech_start import RealtimeVadSpeechStart
from websockets.exceptions import ConnectionClosed, WebSocketException

from app.clock import Clock, SystemClock
from app.providers.base import SpeechStarted, STTCapabilities, STTOptions, Transcript
from app.providers.errors import ProviderError
from app.providers.replay import ReconnectingStream, SocketFailure
from app.providers.sarvam_common import (
    CONNECT_TIMEOUT,
    DEFAULT_MODEL,
    NOT_RETRYABLE_STATUS,
    PROVIDER,
    STT_LANGUAGES,
    closed_error,
    make_client,
    map_sarvam_error,
    sarvam_language,
)
from app.providers.streaming import legacy_websockets_imports, owned

with legacy_websockets_imports():
    import sarvamai.core.websocket_compat
    import sarvamai.speech_to_text_realtime_streaming.client  # noqa: F401
    from sarvamai.speech_to_text_realtime_streaming.socket_client import (
        AsyncSpeechToTextRealtimeStreamingSocketClient,
    )

__all__ = ["SarvamSTT", "sarvam_language"]

log = logging.getLogger("app.providers.sarvam")

_COALESCE = 5  # queued frames sent as one ``audio_input`` (≤ 100 ms): fewer, larger messages
_CLOSE_TIMEOUT = 5.0  # seconds ``end_input`` waits for the final results


class SarvamSTT:
    """``SpeechToText`` on Sarvam's realtime streaming. ``sample_rate``: Hz of the int16 mono
    audio (8000 or 16000); ``keepalive_seconds``: time without audio sent before a ``ping``;
    ``reconnect_attempts``: reopenings tried after a failed connect or a drop (0.1 s, 0.2 s …
    at most 2 s apart) before entering the stream or ``events()`` raises ``ProviderError``.
    ``stream_type``: ``fast`` (partials sooner) or ``balanced``. ``clock`` times the keep-alives,
    the back-off and the connect timeout (default: a ``SystemClock``)."""

    name = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        sample_rate: int = 16000,
        keepalive_seconds: float = 5.0,
        reconnect_attempts: int = 3,
        stream_type: str = "fast",
        clock: Clock | None = None,
    ) -> None:
        if sample_rate not in (8000, 16000):
            raise ValueError("sample_rate must be 8000 or 16000 Hz (what Sarvam's realtime endpoint takes)")
        if keepalive_seconds <= 0 or reconnect_attempts < 0:
            raise ValueError("keepalive_seconds must be > 0, reconnect_attempts >= 0")
        self.sample_rate = sample_rate
        self.capabilities = STTCapabilities(
            interim_words=True, languages=STT_LANGUAGES, sample_rates=(sample_rate,)
        )
        self._client = make_client(api_key, base_url)
        self._keepalive, self._attempts, self._stream_type = (
            keepalive_seconds,
            reconnect_attempts,
            stream_type,
        )
        self._clock: Clock = clock if clock is not None else SystemClock()

    def connect_args(self, options: STTOptions) -> dict[str, Any]:
        """The realtime socket's query parameters for ``options``. ``options.model`` is used when
        it names a Saaras model (a persona's ``stt_model`` defaults to a Deepgram one)."""
        model = options.model if options.model.startswith("saaras") else DEFAULT_MODEL
        args: dict[str, Any] = {
            "language_code": sarvam_language(options.language),
            "model": model,
            "stream_type": self._stream_type if options.interim_results else "simulated",
            "endpointing": "vad",
            "encoding": "linear16",
            "sample_rate": str(self.sample_rate),
            "return_timestamps": "true",
        }
        if options.endpointing_ms > 0:
            args["silence_duration_ms"] = str(options.endpointing_ms)
        if options.keywords and model == "saaras:v4":  # keyterms: saaras:v4 only
            args["keyterms"] = json.dumps(list(options.keywords)[:50], ensure_ascii=False)
        return args

    def stream(self, options: STTOptions) -> AbstractAsyncContextManager[_SarvamStream]:
        """A live stream for an ``async with`` block. Entering connects and raises
        ``ProviderError`` (``retryable=False`` on a refused key); leaving ends the input (the
        last results arrive, ≤ 5 s) and stops every task of the stream."""
        stream = _SarvamStream(
            self._client, self.connect_args(options), self.sample_rate, self._keepalive, self._clock
        )
        stream.attempts = self._attempts
        return owned(stream, "sarvam-stt")


class _SarvamStream(ReconnectingStream[AsyncSpeechToTextRealtimeStreamingSocketClient]):
    """One live stream: the queue, replay and supervisor are :class:`ReconnectingStream`'s;
    here are Sarvam's socket (sender, keep-alive ``ping``), its messages and its close (``end``)."""

    provider, _log, connect_timeout, close_timeout = PROVIDER, log, CONNECT_TIMEOUT, _CLOSE_TIMEOUT
    transport_errors = (ApiError, OSError, TimeoutError, WebSocketException)

    def __init__(
        self, client: AsyncSarvamAI, args: dict[str, Any], rate: int, keepalive: float, clock: Clock
    ):
        super().__init__(rate, keepalive, clock)
        self._client, self._args = client, args
        self._end_sent = False  # ``end`` went out on the current socket

    def _connect(self) -> AbstractAsyncContextManager[AsyncSpeechToTextRealtimeStreamingSocketClient]:
        socket = self._client.speech_to_text_realtime_streaming
        connect: AbstractAsyncContextManager[AsyncSpeechToTextRealtimeStreamingSocketClient] = socket.connect(
            **self._args
        )
        return connect

    def _map_error(self, exc: BaseException, during: str) -> ProviderError:
        return map_sarvam_error(exc, during)

    def _closed_error(self, code: int, during: str) -> ProviderError:
        return closed_error(code, during)

    async def _ping(self, sock: AsyncSpeechToTextRealtimeStreamingSocketClient) -> None:
        await sock.send_realtime_ping(RealtimePing())

    async def _pump(
        self, sock: AsyncSpeechToTextRealtimeStreamingSocketClient, base: float, replay: list[bytes]
    ) -> int | None:
        """Run one socket until it closes: None when it closed normally after our ``end``, else
        the close code. Raises ``SocketFailure`` (in a group) on a fatal ``error`` frame."""
        self._end_sent = False
        self._last_sent = self._clock.now()
        async with asyncio.TaskGroup() as tg:
            sender = tg.create_task(self._send_loop(sock, replay), name="sarvam-stt-send")
            keeper = tg.create_task(self._keep_alive(sock), name="sarvam-stt-keepalive")
            code = await self._read(sock, base)
            sender.cancel()
            keeper.cancel()
        return None if self._end_sent and code == 1000 else code

    async def _read(self, sock: AsyncSpeechToTextRealtimeStreamingSocketClient, base: float) -> int:
        """Messages until the socket closes; its close code."""
        try:
            while True:
                self._on_message(await sock.recv(), base)
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else 1006

    async def _send_loop(
        self, sock: AsyncSpeechToTextRealtimeStreamingSocketClient, replay: list[bytes]
    ) -> None:
        """Replay, then queued audio in order (up to ``_COALESCE`` queued frames a message)."""
        clock = self._clock
        with contextlib.suppress(ConnectionClosed):
            for data in replay:
                await sock.send_realtime_audio_input(_audio_message(data))
                self._last_sent = clock.now()
            while not self._close_taken:
                item = await self._audio.get()
                parts: list[bytes] = []
                while item is not None:
                    self._replay.append(item)  # kept before sending: a failed send is replayed
                    parts.append(item)
                    if len(parts) >= _COALESCE or self._audio.empty():
                        break
                    item = self._audio.get_nowait()
                if item is None:
                    self._close_taken = True
                if parts:
                    await sock.send_realtime_audio_input(_audio_message(b"".join(parts)))
                    self._last_sent = clock.now()
            self._end_sent = True
            await sock.send_realtime_end(RealtimeEnd())

    def _on_message(self, msg: object, base: float) -> None:
        if isinstance(msg, RealtimeTranscriptPartial):
            if msg.text.strip():
                self._events.put_nowait(Transcript(msg.text, is_final=False))
        elif isinstance(msg, RealtimeTranscriptFinal):
            self._progress = True  # a socket that produced a result is healthy
            self._on_final(msg, base)
        elif isinstance(msg, RealtimeVadSpeechStart):
            self._events.put_nowait(SpeechStarted())
        elif isinstance(msg, RealtimeError):
            self._on_error(msg)
        elif isinstance(msg, RealtimeSessionEnd):
            self._progress = True
        # session.begin, vad.speech_end, pong, config.updated and unknown messages are ignored

    def _on_final(self, msg: RealtimeTranscriptFinal, base: float) -> None:
        """A final spans ``start_s``..``end_s`` (shifted by ``base``); the audio before its end
        will not be revised, so it is no longer kept for a replay."""
        floor = self._floor
        end: float | None = None
        if msg.end_s is not None:
            end = base + msg.end_s
            self._replay.trim_to(end)
            self._floor = max(floor, end)
        if not msg.text.strip():
            return
        start = round(max(base + msg.start_s, floor), 6) if msg.start_s is not None else None
        if end is not None:
            end = round(max(end, start if start is not None else end), 6)
        self._events.put_nowait(Transcript(msg.text, True, True, None, start, end))

    def _on_error(self, msg: RealtimeError) -> None:
        """A fatal error ends this socket (retried by its status); a non-fatal one is logged
        (its code only: the message may quote the request)."""
        code = msg.code if msg.code.replace("_", "").isalnum() and len(msg.code) <= 40 else "?"
        if not msg.is_fatal:
            log.warning("sarvam: error message %s (not fatal)", code)
            return
        status = msg.status_code or 0
        retryable = status not in NOT_RETRYABLE_STATUS
        kind = "authentication failed" if status in (401, 403) else code
        raise SocketFailure(ProviderError(PROVIDER, f"stream: error {status} ({kind})", retryable=retryable))


def _audio_message(data: bytes) -> RealtimeAudioInput:
    return RealtimeAudioInput(audio=base64.b64encode(data).decode("ascii"))
