"""Deepgram Aura text-to-speech over the v1 speak WebSocket, through the official ``deepgram-sdk``.

Each :meth:`DeepgramTTS.synthesize` opens a socket (``encoding=linear16``, ``sample_rate``),
sends ``Speak`` with the text and ``Flush``, and yields the binary audio as it arrives, until
``Flushed``; then it sends ``Close``. Stopping the iteration early (barge-in) closes the socket.
Errors become ``ProviderError`` via :func:`app.providers.deepgram_stt.map_deepgram_error`; an
``Error`` message from Deepgram is one too. The handshake gets ``CONNECT_TIMEOUT`` s and each
message ``READ_TIMEOUT`` s, on the injected clock. The SDK parses any JSON it has no type for
(an ``Error``, a ``Warning`` without a code) as ``SpeakV1Flushed``, so the ``type`` field decides.

One socket per sentence (a handshake each time). Deepgram allows 20 ``Flush`` a minute per
socket, so one socket per call would need a pacing or a fresh socket near that limit: not done.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Any

import numpy as np
from deepgram.core.api_error import ApiError
from deepgram.speak.v1.types import SpeakV1Text
from websockets.exceptions import ConnectionClosed, WebSocketException

from app.clock import Clock, SystemClock
from app.providers.base import PCM, TTSOptions
from app.providers.deepgram_stt import (
    CONNECT_TIMEOUT,
    PROVIDER,
    READ_TIMEOUT,
    make_client,
    map_deepgram_error,
)

# deepgram_stt also loads the SDK's socket modules (with their import-time warnings filtered).
from app.providers.errors import ProviderError
from app.providers.streaming import within

__all__ = ["DeepgramTTS"]

log = logging.getLogger("app.providers.deepgram")


class DeepgramTTS:
    """``SpeechSynthesizer`` on Deepgram Aura. Audio: mono int16 at ``sample_rate`` Hz
    (8000, 16000, 24000, 32000 or 48000). ``model`` is the Aura voice, e.g. ``aura-2-thalia-en``.
    ``clock`` times the connect and read timeouts (default: a ``SystemClock``)."""

    name = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        sample_rate: int = 16000,
        model: str = "aura-2-thalia-en",
        clock: Clock | None = None,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError("sample_rate must be > 0 Hz")
        self.sample_rate = sample_rate
        self.model = model
        self._client = make_client(api_key, base_url)
        self._clock: Clock = clock if clock is not None else SystemClock()

    async def synthesize(self, text: str, options: TTSOptions) -> AsyncGenerator[PCM, None]:
        """Int16 chunks in order, each as soon as it arrives. ``options.voice`` (a full Aura model
        id) or else ``options.model`` overrides ``model``; ``options.speed`` ≠ 1 is sent as ``speed``.
        Empty text yields nothing. Raises ``ProviderError`` (a refused key or an ``Error``
        message: ``retryable=False``; a timeout: ``retryable=True``)."""
        if not text.strip():
            return
        args: dict[str, object] = {
            "model": options.voice or options.model or self.model,
            "encoding": "linear16",
            "sample_rate": self.sample_rate,
        }
        if options.speed != 1.0:
            args["speed"] = options.speed
        carry, clock = b"", self._clock  # carry: an odd byte left over from the previous message
        try:
            async with contextlib.AsyncExitStack() as stack:
                connect = self._client.speak.v1.connect(**args)
                sock = await within(clock, CONNECT_TIMEOUT, stack.enter_async_context(connect))
                await sock.send_text(SpeakV1Text(text=text))
                await sock.send_flush()
                while True:
                    message = await within(clock, READ_TIMEOUT, sock.recv())
                    if isinstance(message, bytes):
                        data = carry + message
                        even = len(data) & ~1
                        carry = data[even:]
                        if even:
                            yield np.frombuffer(data[:even], dtype="<i2").astype(np.int16)
                    elif _kind(message) == "Flushed":
                        break
                    elif _kind(message) == "Error":
                        code = getattr(message, "err_code", None) or getattr(message, "code", None)
                        raise ProviderError(PROVIDER, f"speak: error message ({code})", retryable=False)
                    elif _kind(message) == "Warning":
                        code = getattr(message, "code", None)
                        log.warning("deepgram tts warning %s: %s", code, getattr(message, "description", ""))
                with contextlib.suppress(ConnectionClosed):  # all audio is in: a closed socket is fine
                    await sock.send_close()
        except ConnectionClosed as exc:
            raise map_deepgram_error(exc, "speech ended before Flushed") from exc
        except (ApiError, OSError, TimeoutError, WebSocketException) as exc:
            raise map_deepgram_error(exc, "speak") from exc
        if carry:
            log.warning("deepgram tts: odd byte count, last byte dropped")


def _kind(message: Any) -> str | None:
    """A JSON message's ``type`` (the SDK's model, or a dict it could not parse)."""
    kind = message.get("type") if isinstance(message, dict) else getattr(message, "type", None)
    return kind if isinstance(kind, str) else None
