"""Opt-in live checks: a few cheap real requests to the vendors whose keys are set.

``pytest -m live --no-cov`` runs them (the coverage floor is for the whole suite); a check whose
keys are missing, and every check in a run without ``-m live``, is deselected, and the run says
how many. Each check prints its latency in the summary ("live: …"). They cost fractions of a
cent: 2 s of audio, one sentence per voice, a 5-token completion, one REST list.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncGenerator

import numpy as np
import pytest

from app.providers.base import (
    Finished,
    LLMOptions,
    Message,
    STTOptions,
    TextDelta,
    ToolCallRequest,
    ToolSpec,
    Transcript,
    TTSOptions,
)
from app.providers.deepgram_stt import DeepgramSTT
from app.providers.deepgram_tts import DeepgramTTS
from app.providers.espeak import EspeakTTS
from app.providers.openai_llm import OpenAILLM
from app.providers.openai_tts import OpenAITTS
from app.telephony.rest import VobizClient, VobizNotFoundError
from tests.conftest import LIVE_TIMINGS

RATE = 16000
SENTENCE = "Hello, this is a short check of the voice."


def _key(name: str) -> str:
    return os.environ[name]  # present: the test would have been deselected otherwise


def _took(check: str, started: float) -> None:
    LIVE_TIMINGS.append((check, (time.perf_counter() - started) * 1000))


@pytest.mark.live(keys=("DEEPGRAM_API_KEY",))
async def test_deepgram_transcribes_two_seconds() -> None:
    speech = EspeakTTS("en-us", sample_rate=RATE).synthesize("Please book a table for four.").pcm[: 2 * RATE]
    audio = np.concatenate([speech, np.zeros(RATE, dtype=np.int16)])
    stt = DeepgramSTT(_key("DEEPGRAM_API_KEY"), sample_rate=RATE)
    started = time.perf_counter()
    heard: list[str] = []
    async with stt.stream(STTOptions()) as stream:
        for at in range(0, audio.shape[0], RATE // 50):
            await stream.send(audio[at : at + RATE // 50])

        async def first_words() -> None:
            async for event in stream.events():
                if isinstance(event, Transcript) and event.text.strip():
                    heard.append(event.text)
                    return

        await asyncio.wait_for(first_words(), 15)
    _took("deepgram speech-to-text", started)
    assert any(word in heard[0].lower() for word in ("book", "table", "four")), heard


async def _speak(chunks: AsyncGenerator[np.ndarray, None]) -> int:
    samples = 0
    async for chunk in chunks:
        samples += chunk.shape[0]
    return samples


@pytest.mark.parametrize(
    "voice",
    [
        pytest.param("deepgram", marks=pytest.mark.live(keys=("DEEPGRAM_API_KEY",))),
        pytest.param("openai", marks=pytest.mark.live(keys=("OPENAI_API_KEY",))),
    ],
)
async def test_each_configured_voice_speaks_a_sentence(voice: str) -> None:
    voices = {"deepgram": DeepgramTTS, "openai": OpenAITTS}
    tts = voices[voice](_key(f"{voice.upper()}_API_KEY"))
    started = time.perf_counter()
    samples = await _speak(tts.synthesize(SENTENCE, TTSOptions()))
    _took(f"{voice} text-to-speech", started)
    assert samples / tts.sample_rate > 1.0  # a sentence, not a click


@pytest.mark.live(keys=("OPENAI_API_KEY",))
async def test_llm_completes_five_tokens_with_a_tool() -> None:
    llm = OpenAILLM(_key("OPENAI_API_KEY"), base_url=os.environ.get("OPENAI_BASE_URL") or None)
    tool = ToolSpec("end_call", "End the call when the caller says goodbye.")
    messages = [Message("system", "You are a phone agent."), Message("user", "Say hi.")]
    started = time.perf_counter()
    events = [e async for e in llm.stream(messages, [tool], LLMOptions(max_tokens=5))]
    _took("openai language model", started)
    assert isinstance(events[-1], Finished)
    assert any(isinstance(e, TextDelta | ToolCallRequest) for e in events)


@pytest.mark.live(keys=("VOBIZ_AUTH_ID", "VOBIZ_AUTH_TOKEN"))
async def test_vobiz_rest_list_answers() -> None:
    base = os.environ.get("VOBIZ_API_BASE_URL") or "https://api.vobiz.ai/api/v1"
    started = time.perf_counter()
    async with VobizClient(_key("VOBIZ_AUTH_ID"), _key("VOBIZ_AUTH_TOKEN"), base, max_retries=0) as client:
        try:  # a call that does not exist: authenticated, so an empty page or "not found"
            page = await client.list_streams("00000000-0000-0000-0000-000000000000")
            assert page.total == 0
        except VobizNotFoundError:
            pass
    _took("vobiz REST list", started)
