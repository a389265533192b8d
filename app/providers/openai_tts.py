"""Streaming text-to-speech through the official ``openai`` SDK (``POST /audio/speech``).

Requests ``response_format="pcm"``: raw 24000 Hz, 16-bit little-endian, mono samples with no
header, streamed as they are generated. This module does not resample; the caller converts
24 kHz to the telephony rate. Errors map as in :func:`app.providers.openai_llm.map_openai_error`.

There is no default model: every model OpenAI serves on ``/audio/speech`` (``tts-1``,
``tts-1-hd``, ``gpt-4o-mini-tts``) shuts down on 2027-01-06, and the named replacement
(``gpt-realtime-2.1-mini``) is a Realtime API model that this endpoint does not serve. Name the
model (``OPENAI_TTS_MODEL``): one of those until then, or a compatible server's at ``base_url``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import httpx
import httpx2
import numpy as np
import openai

from app.providers.base import PCM, TTSOptions
from app.providers.errors import ProviderError
from app.providers.openai_llm import (
    CONNECT_TIMEOUT_S,
    PROVIDER,
    READ_TIMEOUT_S,
    make_client,
    map_openai_error,
)

__all__ = ["OPENAI_PCM_RATE", "OpenAITTS", "PCMAssembler"]

#: Sample rate (Hz) of OpenAI's ``pcm`` response format; fixed by the API.
OPENAI_PCM_RATE = 24000
_PCM_DTYPE = np.dtype("<i2")  # the wire format: int16, little-endian
_STREAM_ERRORS = (openai.OpenAIError, httpx.TransportError, httpx2.TransportError)


class PCMAssembler:
    """Turns arbitrary byte chunks of little-endian int16 audio into native int16 arrays.

    An odd trailing byte is kept and prefixed to the next chunk, so sample boundaries survive
    any chunking. ``leftover`` says how many bytes (0 or 1) are waiting.
    """

    def __init__(self) -> None:
        self._carry = b""

    @property
    def leftover(self) -> int:
        return len(self._carry)

    def push(self, data: bytes) -> PCM | None:
        """The whole samples completed by ``data`` (in order), or None when there are none."""
        data = self._carry + data
        whole = len(data) - len(data) % 2
        self._carry = data[whole:]
        if whole == 0:
            return None
        return np.frombuffer(data[:whole], dtype=_PCM_DTYPE).astype(np.int16)


class OpenAITTS:
    """``SpeechSynthesizer`` for OpenAI TTS (or a compatible server via ``base_url``).

    ``model`` (required, see the module) and ``voice`` apply when ``TTSOptions`` leaves them
    empty; ``base_url`` is the voice's own (``OPENAI_TTS_BASE_URL``), never the language
    model's: pointing the LLM at a local server must not move the voice. ``TTSOptions.speed``
    is sent only when it is not 1.0 (``gpt-4o-mini-tts`` ignores it; ``tts-1`` honours
    0.25-4.0). ``sample_rate`` must be 24000: the ``pcm`` format has no other rate. A supplied
    ``http_client`` stays the caller's to close; otherwise call :meth:`aclose`.
    """

    name = "openai"

    def __init__(
        self,
        api_key: str,
        *,
        model: str,
        base_url: str | None = None,
        voice: str = "alloy",
        sample_rate: int = OPENAI_PCM_RATE,
        http_client: httpx.AsyncClient | httpx2.AsyncClient | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        read_timeout: float = READ_TIMEOUT_S,
    ) -> None:
        if not model.strip():
            raise ValueError("model is required (OPENAI_TTS_MODEL): OpenAI's speech models have no default")
        if sample_rate != OPENAI_PCM_RATE:
            raise ValueError(
                f"sample_rate must be {OPENAI_PCM_RATE}: OpenAI's pcm format is fixed at that rate "
                f"(got {sample_rate!r}); resample the chunks downstream"
            )
        self.model = model
        self.voice = voice
        self.sample_rate = sample_rate
        self._owns_client = http_client is None
        self._client = make_client(
            api_key, base_url, http_client, connect_timeout=connect_timeout, read_timeout=read_timeout
        )

    @property
    def base_url(self) -> str:
        """The API root speech requests go to, e.g. ``https://api.openai.com/v1/``."""
        return str(self._client.base_url)

    async def aclose(self) -> None:
        """Close the connection pool (unless it belongs to a supplied ``http_client``)."""
        if self._owns_client:
            await self._client.close()

    async def synthesize(self, text: str, options: TTSOptions) -> AsyncGenerator[PCM, None]:
        """Stream speech for ``text`` as int16 chunks at 24000 Hz, in playback order, each
        yielded as soon as its bytes arrive. Blank ``text`` yields nothing (no request).

        Raises ``ProviderError`` before or during the stream; an odd byte count at the end
        (a truncated sample) is an error too. Close the iterator early on barge-in.
        """
        if not text.strip():
            return
        assembler = PCMAssembler()
        try:
            async with self._client.audio.speech.with_streaming_response.create(
                model=options.model or self.model,
                voice=options.voice or self.voice,
                input=text,
                response_format="pcm",
                speed=options.speed if options.speed != 1.0 else openai.omit,
            ) as response:
                async for data in response.iter_bytes():
                    pcm = assembler.push(data)
                    if pcm is not None:
                        yield pcm
        except _STREAM_ERRORS as exc:
            raise map_openai_error(exc) from exc
        if assembler.leftover:
            raise ProviderError(PROVIDER, "speech stream ended mid-sample (odd byte count)", retryable=True)
