"""Deepgram Aura text-to-speech over REST streaming (``POST /v1/speak``), through the official
``deepgram-sdk``, on a kept-alive connection pool shared by every call of the process.

Each :meth:`DeepgramTTS.synthesize` is one request (``model``, ``encoding=linear16``,
``container=none``: raw samples, no WAV header; ``sample_rate``; the text as JSON) whose
response body is the audio, streamed as Deepgram makes it: each piece is yielded as it arrives.
The TCP and TLS handshakes are paid once per pooled connection, not once per sentence; an idle
connection is kept ``KEEPALIVE_SECONDS`` (the time a caller takes to talk between two replies).

Why REST and not one speak WebSocket per call: a socket would need a call-scoped session (the
``SpeechSynthesizer`` protocol is per sentence), it counts against Deepgram's concurrency limit
for the whole call where a request counts only while it runs (Aura: 15 at once on Pay as You Go
and Growth), and it allows only 20 ``Flush`` a minute. A request is also simpler to bound: its
answer is an HTTP status and a JSON error body, or audio that ends when the body ends.

Timeouts, on the injected clock: the response (connect, the request, Deepgram starting to
answer) within ``CONNECT_TIMEOUT`` s; each next piece of audio within ``READ_TIMEOUT`` s. The
pool has the same two as real-time limits. Errors become ``ProviderError`` via
:func:`app.providers.deepgram_stt.map_deepgram_error` (4xx: not retryable; 429/5xx, lost
connections, timeouts: retryable). A body cut short (the connection dropped before its end)
raises; nothing is silently shortened. Closing the iterator early (barge-in) closes the response
at once: its connection, mid-body, is closed rather than returned to the pool.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator

import httpx
import numpy as np
from deepgram.core.api_error import ApiError

from app.clock import Clock, SystemClock
from app.providers.base import PCM, TTSOptions
from app.providers.deepgram_stt import (
    CONNECT_TIMEOUT,
    PROVIDER,
    READ_TIMEOUT,
    make_client,
    map_deepgram_error,
)
from app.providers.streaming import within

__all__ = ["KEEPALIVE_SECONDS", "DeepgramTTS"]

log = logging.getLogger("app.providers.deepgram")

KEEPALIVE_SECONDS = 30.0  # an idle pooled connection is kept this long (a service closing it sooner is seen)
_POOL_LIMITS = httpx.Limits(
    max_connections=64, max_keepalive_connections=16, keepalive_expiry=KEEPALIVE_SECONDS
)
_TIMEOUTS = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT, pool=CONNECT_TIMEOUT)


class DeepgramTTS:
    """``SpeechSynthesizer`` on Deepgram Aura. Audio: mono int16 at ``sample_rate`` Hz
    (8000, 16000, 24000, 32000 or 48000). ``model`` is the Aura voice, e.g. ``aura-2-thalia-en``.
    ``clock`` times the timeouts (default: a ``SystemClock``). ``http_client``: a pool to share
    (it stays the caller's to close); otherwise the engine makes its own, closed by :meth:`aclose`."""

    name = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        sample_rate: int = 16000,
        model: str = "aura-2-thalia-en",
        clock: Clock | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError("sample_rate must be > 0 Hz")
        self.sample_rate = sample_rate
        self.model = model
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=_TIMEOUTS, limits=_POOL_LIMITS)
        # the SDK imports its speak modules on first use: here, at start-up, not in a call's first sentence
        self._speak = make_client(api_key, base_url, self._http).speak.v1.audio.with_raw_response
        self._clock: Clock = clock if clock is not None else SystemClock()

    async def aclose(self) -> None:
        """Close the connection pool (unless it belongs to a supplied ``http_client``)."""
        if self._owns_http:
            await self._http.aclose()

    async def synthesize(self, text: str, options: TTSOptions) -> AsyncGenerator[PCM, None]:
        """Int16 chunks in order, each as soon as it arrives. ``options.voice`` (a full Aura model
        id) or else ``options.model`` overrides ``model``; ``options.speed`` ≠ 1 is sent as ``speed``.
        Empty text yields nothing (no request). Raises ``ProviderError``: a refused request
        (HTTP 4xx) is not retryable; 429, 5xx, a lost connection or a timeout is."""
        if not text.strip():
            return
        speed = {"speed": options.speed} if options.speed != 1.0 else {}
        request = self._speak.generate(
            text=text,
            model=options.voice or options.model or self.model,
            encoding="linear16",
            container="none",
            sample_rate=self.sample_rate,
            **speed,
        )
        carry, clock = b"", self._clock  # carry: an odd byte left over from the previous piece
        try:
            async with contextlib.AsyncExitStack() as stack:
                response = await within(clock, CONNECT_TIMEOUT, stack.enter_async_context(request))
                pieces: AsyncIterator[bytes] = response.data
                closing = getattr(pieces, "aclose", None)
                if closing is not None:
                    stack.push_async_callback(closing)  # before the response closes (LIFO)
                while True:
                    try:
                        data = carry + await within(clock, READ_TIMEOUT, anext(pieces))
                    except StopAsyncIteration:
                        break
                    even = len(data) & ~1
                    carry = data[even:]
                    if even:
                        yield np.frombuffer(data[:even], dtype="<i2").astype(np.int16)
        except (ApiError, httpx.HTTPError, OSError, TimeoutError) as exc:
            raise map_deepgram_error(exc, "speak") from exc
        if carry:
            log.warning("deepgram tts: odd byte count, last byte dropped")
