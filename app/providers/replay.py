"""Buffer-and-replay for live recognisers that reconnect mid-call (Deepgram, Sarvam), and the
supervisor they share (``ReconnectingStream``).

A stream keeps the audio it sent since the end of the last final result; when its socket drops,
the new socket first gets that audio again, so an utterance in progress is still recognised. The
new socket's times start where the replay starts (``ReplayBuffer.snapshot``'s first value): a
recogniser adds it to every time the new socket reports, keeping stream times monotonic.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

import numpy as np
from websockets.exceptions import ConnectionClosed

from app.clock import Clock
from app.providers.base import PCM
from app.providers.errors import ProviderError
from app.providers.streaming import QueuedEvents, within

__all__ = ["MAX_REPLAY_SECONDS", "ReconnectingStream", "ReplayBuffer", "SocketFailure", "backoff"]

MAX_REPLAY_SECONDS = 30.0  # the most audio kept for a replay
AUDIO_QUEUE_CHUNKS = 500  # queued ``send`` calls: 10 s of 20 ms frames


def backoff(failures: int) -> float:
    """Seconds before the reconnect after ``failures`` drops in a row: 0.1, 0.2, 0.4 … ≤ 2."""
    return min(0.1 * 2.0 ** (failures - 1), 2.0)


class ReplayBuffer:
    """The int16 audio bytes sent since sample ``start`` of the stream (at most
    ``MAX_REPLAY_SECONDS``). Appending is a bytearray extend: cheap enough for every frame."""

    def __init__(self, sample_rate: int) -> None:
        self._rate, self._max = sample_rate, 2 * int(MAX_REPLAY_SECONDS * sample_rate)
        self._audio = bytearray()
        self.start = 0  # sample index (since the stream opened) of the first byte kept

    def append(self, data: bytes) -> None:
        self._audio += data
        if len(self._audio) > self._max:
            self._drop((len(self._audio) - self._max) // 2)

    def trim_to(self, seconds: float) -> None:
        """Forget audio before ``seconds`` of stream time (never past what was sent)."""
        self._drop(min(round(seconds * self._rate) - self.start, len(self._audio) // 2))

    def _drop(self, samples: int) -> None:
        if samples > 0:
            del self._audio[: 2 * samples]
            self.start += samples

    @property
    def end(self) -> float:
        """Stream seconds of the end of the audio kept (everything sent so far)."""
        return (self.start + len(self._audio) // 2) / self._rate

    def snapshot(self) -> tuple[float, list[bytes]]:
        """(stream seconds where the kept audio starts, the audio in 0.25 s pieces)."""
        audio, step = self._audio, self._rate // 2  # bytes in 0.25 s
        return self.start / self._rate, [bytes(audio[at : at + step]) for at in range(0, len(audio), step)]


class SocketFailure(Exception):
    """One socket failed with ``error`` (a fatal message, a stall): the supervisor decides on a
    retry by ``error.retryable``."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(str(error))
        self.error = error


S = TypeVar("S")  # a provider SDK's socket client


class ReconnectingStream(QueuedEvents, abc.ABC, Generic[S]):
    """One live stream on a provider's socket that is reopened when it drops. ``send`` queues
    audio (the oldest chunk is dropped when full); the supervisor task (``work``) lives in the
    TaskGroup of :func:`~app.providers.streaming.owned` and never raises; each socket's own tasks
    live in a group nested in it (the provider's ``_pump``).

    A provider sets ``provider``, ``_log``, ``connect_timeout``, ``close_timeout`` and
    ``transport_errors`` (what ``_map_error`` maps) and implements the hooks below."""

    provider: str  # the name in errors and log lines
    _log: logging.Logger
    connect_timeout: float  # seconds for a WebSocket handshake
    transport_errors: tuple[type[Exception], ...]

    def __init__(self, rate: int, keepalive: float, clock: Clock) -> None:
        super().__init__()
        self._keepalive, self._clock = keepalive, clock
        self.attempts = 3
        self._audio: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=AUDIO_QUEUE_CHUNKS)
        self._replay = ReplayBuffer(rate)
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._close_taken = False  # the sender took the end-of-audio marker: the close is due
        self._progress = False  # the current socket gave a result: it is healthy
        self._floor = 0.0  # end (stream seconds) of the last final result
        self._last_sent = 0.0  # clock time something last went out on the current socket
        self._dropped = 0

    @abc.abstractmethod
    def _connect(self) -> AbstractAsyncContextManager[S]:
        """The SDK's connect (entered within ``connect_timeout`` s)."""

    @abc.abstractmethod
    async def _pump(self, sock: S, base: float, replay: list[bytes]) -> int | None:
        """Run one socket (``replay`` first; reported times shifted by ``base``) until it closes:
        None when it closed normally after our close message, else the close code."""

    @abc.abstractmethod
    def _map_error(self, exc: BaseException, during: str) -> ProviderError:
        """``ProviderError`` for one of ``transport_errors`` while ``during``."""

    @abc.abstractmethod
    def _closed_error(self, code: int, during: str) -> ProviderError:
        """``ProviderError`` for a socket closed with ``code`` (not after our close message)."""

    @abc.abstractmethod
    async def _ping(self, sock: S) -> None:
        """Send the provider's keep-alive message."""

    async def wait_ready(self) -> None:
        await self._ready

    async def send(self, pcm: PCM, voiced: bool | None = None) -> None:
        """Queue int16 audio (no I/O); when full, the oldest queued chunk is dropped. Audio after
        ``end_input`` or after the stream failed is ignored. ``voiced`` is not needed: the
        service has its own voice activity detection."""
        if not (self._closing or self._ended):
            self._put(np.asarray(pcm, dtype="<i2").tobytes())

    def _put(self, item: bytes | None) -> None:
        if self._audio.full():
            self._audio.get_nowait()
            self._dropped += 1
            if self._dropped % 50 == 1:
                self._log.warning("%s: audio queue full, %d chunks dropped", self.provider, self._dropped)
        self._audio.put_nowait(item)

    async def _finish_input(self) -> None:
        self._put(None)  # the end-of-audio marker: the sender closes after the queued audio

    async def work(self) -> None:
        """The supervisor: one socket after another, until the close is answered or it gives up.
        The first connect is retried like a reconnect; entering the stream waits for it."""
        clock, failures, attempts, provider = self._clock, 0, self.attempts, self.provider
        while True:
            base, replay = self._replay.snapshot()
            self._progress = False
            during = "reconnect" if self._ready.done() else "connect"
            try:
                async with contextlib.AsyncExitStack() as stack:
                    connect = self._connect()
                    sock = await within(clock, self.connect_timeout, stack.enter_async_context(connect))
                    if not self._ready.done():
                        self._ready.set_result(None)
                    during = "stream"
                    code = await self._pump(sock, base, replay)
                if code is None:
                    return self._end(None)  # the server closed after our close message
                error = self._closed_error(code, "stream")
            except* SocketFailure as group:
                failure = group.exceptions[0]
                error = (
                    failure.error
                    if isinstance(failure, SocketFailure)
                    else ProviderError(provider, "error", retryable=True)
                )
            except* self.transport_errors as group:
                error = self._map_error(group.exceptions[0], during)
            except* Exception as group:  # a bug or an SDK surprise: end the stream, not the caller
                self._log.error("%s: stream failed", provider, exc_info=group.exceptions[0])
                name = type(group.exceptions[0]).__name__
                error = ProviderError(provider, f"internal error: {name}", retryable=False)
            if self._progress:
                failures = 0
            failures += 1
            if not error.retryable or failures > attempts:
                if error.retryable:
                    reason, what = str(error).removeprefix(f"{provider}: "), "reconnects"
                    if not self._ready.done():
                        what = "retries"
                    reason = f"{reason}; gave up after {attempts} {what}"
                    error = ProviderError(provider, reason, retryable=True)
                if not self._ready.done():
                    self._ended = True
                    return self._ready.set_exception(error)
                return self._end(error)
            self._log.warning("%s; reconnecting (%d of %d)", error, failures, attempts)
            await clock.sleep(backoff(failures))

    async def _keep_alive(self, sock: S) -> None:
        """A keep-alive (``_ping``) once ``keepalive`` s of clock time passed with nothing sent,
        and again every ``keepalive`` s while nothing is; none once the end of the audio was taken."""
        clock = self._clock
        with contextlib.suppress(ConnectionClosed):
            while not self._close_taken:
                due = self._last_sent + self._keepalive
                if clock.now() < due:
                    await clock.sleep(due - clock.now())
                    continue
                await self._ping(sock)
                self._last_sent = clock.now()
