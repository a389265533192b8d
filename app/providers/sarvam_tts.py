"""Sarvam Bulbul text-to-speech over REST streaming (``POST /text-to-speech/stream``), through the
official ``sarvamai`` SDK, on a kept-alive connection pool shared by every call of the process.

Each :meth:`SarvamTTS.synthesize` is one request (``model`` ``bulbul:v3``, ``language_code`` and
``speaker`` from the persona, ``output_audio_codec=linear16``: raw little-endian samples, no
header; ``speech_sample_rate``: the call's output rate) whose response body is the audio,
streamed as Sarvam makes it: each piece is yielded as it arrives. One request per sentence, as
the ``SpeechSynthesizer`` protocol is; a pooled connection pays its handshakes once.

Timeouts, on the injected clock: the response within ``CONNECT_TIMEOUT`` s, each next piece
within ``READ_TIMEOUT`` s. Errors become ``ProviderError`` via
:func:`app.providers.sarvam_common.map_sarvam_error` (status only: the SDK's error text carries the
request headers, the subscription key among them): 4xx not retryable; 429/5xx, lost connections
and timeouts retryable. A body cut mid-sample raises. Closing the iterator early (barge-in)
closes the response at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import httpx
from sarvamai.core.api_error import ApiError

from app.clock import Clock, SystemClock
from app.providers.base import PCM, TTSOptions
from app.providers.errors import ProviderError
from app.providers.openai_tts import PCMAssembler
from app.providers.sarvam_common import CONNECT_TIMEOUT, PROVIDER, READ_TIMEOUT, make_client, map_sarvam_error
from app.providers.streaming import within

__all__ = ["SAMPLE_RATES", "TTS_LANGUAGES", "SarvamTTS"]

#: the rates Bulbul streams at (higher ones are REST-only, not streamed)
SAMPLE_RATES = (8000, 16000, 22050, 24000)
#: the languages Bulbul speaks
TTS_LANGUAGES = (
    "bn-IN",
    "en-IN",
    "gu-IN",
    "hi-IN",
    "kn-IN",
    "ml-IN",
    "mr-IN",
    "od-IN",
    "pa-IN",
    "ta-IN",
    "te-IN",
)
DEFAULT_MODEL = "bulbul:v3"
DEFAULT_SPEAKER = "shubh"  # Bulbul v3's default voice
_POOL_LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=30.0)
_TIMEOUTS = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT, pool=CONNECT_TIMEOUT)


def tts_language(tag: str) -> str:
    """Bulbul's code for a persona language: itself when Bulbul speaks it, Odia as ``od-IN``,
    any English as ``en-IN``, a known language's ``xx`` prefix as ``xx-IN``; else ``hi-IN``."""
    if tag in TTS_LANGUAGES:
        return tag
    prefix = tag.lower().split("-")[0]
    prefix = "od" if prefix == "or" else prefix
    return next((code for code in TTS_LANGUAGES if code.startswith(prefix + "-")), "hi-IN")


class SarvamTTS:
    """``SpeechSynthesizer`` on Sarvam Bulbul. Audio: mono int16 at ``sample_rate`` Hz (8000,
    16000, 22050 or 24000: the call's output rate, so nothing is resampled). ``speaker`` and
    ``language`` apply when ``TTSOptions`` leaves them empty. ``http_client``: a pool to share
    (it stays the caller's to close); otherwise the engine makes its own, closed by :meth:`aclose`."""

    name = PROVIDER

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        sample_rate: int = 16000,
        model: str = DEFAULT_MODEL,
        speaker: str = DEFAULT_SPEAKER,
        language: str = "hi-IN",
        clock: Clock | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample_rate must be one of {SAMPLE_RATES} Hz (what Bulbul streams)")
        self.sample_rate = sample_rate
        self.model, self.speaker, self.language = model, speaker, language
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=_TIMEOUTS, limits=_POOL_LIMITS)
        self._tts = make_client(api_key, base_url, self._http).text_to_speech.with_raw_response
        self._clock: Clock = clock if clock is not None else SystemClock()

    async def aclose(self) -> None:
        """Close the connection pool (unless it belongs to a supplied ``http_client``)."""
        if self._owns_http:
            await self._http.aclose()

    async def synthesize(self, text: str, options: TTSOptions) -> AsyncGenerator[PCM, None]:
        """Int16 chunks in order, each as soon as it arrives. ``options.voice`` is the speaker
        (lower case, e.g. ``anushka``), ``options.language`` the language, ``options.model`` the
        Bulbul model; ``options.speed`` ≠ 1 is sent as ``pace``. Empty text yields nothing."""
        if not text.strip():
            return
        pace = {"pace": options.speed} if options.speed != 1.0 else {}
        request = self._tts.convert_stream(
            text=text,
            language_code=tts_language(options.language or self.language),
            speaker=(options.voice or self.speaker).lower(),
            model=options.model or self.model,
            speech_sample_rate=self.sample_rate,
            output_audio_codec="linear16",
            **pace,
        )
        assembler, clock = PCMAssembler(), self._clock
        try:
            async with contextlib.AsyncExitStack() as stack:
                response = await within(clock, CONNECT_TIMEOUT, stack.enter_async_context(request))
                pieces: AsyncIterator[bytes] = response.data
                closing = getattr(pieces, "aclose", None)
                if closing is not None:
                    stack.push_async_callback(closing)  # before the response closes (LIFO)
                while True:
                    try:
                        data = await within(clock, READ_TIMEOUT, anext(pieces))
                    except StopAsyncIteration:
                        break
                    pcm = assembler.push(data)
                    if pcm is not None:
                        yield pcm
        except (ApiError, httpx.HTTPError, OSError, TimeoutError) as exc:
            raise map_sarvam_error(exc, "speak") from None
        if assembler.leftover:
            raise ProviderError(PROVIDER, "speak: stream ended mid-sample (odd byte count)", retryable=True)
