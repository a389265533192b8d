"""SarvamTTS through the real ``sarvamai`` SDK against the fake Sarvam's Bulbul stream."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from app.providers.base import TTSOptions
from app.providers.errors import ProviderError
from app.providers.sarvam_tts import SarvamTTS, tts_language
from tests.contract.fake_sarvam import FakeSarvam, tone
from tests.servers import serve_in_thread

KEY = "sarvam-secret-key-456"


@dataclass
class Served:
    fake: FakeSarvam
    url: str


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    fake = FakeSarvam(api_key=KEY)
    with serve_in_thread(fake.app()) as url:
        yield Served(fake, url)


@pytest.fixture
def served(server: Served) -> Served:
    server.fake.reset()
    return server


async def test_streams_linear16_at_the_call_rate_in_the_persona_language_and_voice(served: Served) -> None:
    tts = SarvamTTS(KEY, base_url=served.url, sample_rate=8000)
    text = "नमस्ते! मैं आपकी क्या मदद कर सकती हूँ?"
    try:
        chunks = [c async for c in tts.synthesize(text, TTSOptions(voice="Priya", language="hi-IN"))]
    finally:
        await tts.aclose()
    assert len(chunks) > 1  # streamed in pieces, an odd-sized piece's last byte carried over
    assert all(c.dtype == np.int16 for c in chunks)
    assert np.array_equal(np.concatenate(chunks), tone(text, 8000))
    [request] = served.fake.speeches
    assert request.key == KEY
    assert request.body == {
        "text": text,
        "language_code": "hi-IN",
        "speaker": "priya",
        "model": "bulbul:v3",
        "speech_sample_rate": 8000,
        "output_audio_codec": "linear16",
    }


async def test_defaults_pace_and_tamil(served: Served) -> None:
    tts = SarvamTTS(KEY, base_url=served.url, language="ta-IN", speaker="vijay")
    text = "வணக்கம்!"
    try:
        assert [c async for c in tts.synthesize("   ", TTSOptions())] == []  # no request
        audio = [c async for c in tts.synthesize(text, TTSOptions(speed=1.2))]
    finally:
        await tts.aclose()
    assert np.array_equal(np.concatenate(audio), tone(text, 16000))
    [request] = served.fake.speeches
    assert (request.body["language_code"], request.body["speaker"], request.body["pace"]) == (
        "ta-IN",
        "vijay",
        1.2,
    )


async def test_auth_failure_is_not_retryable_and_hides_the_key(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tts = SarvamTTS("wrong-sarvam-key-777", base_url=served.url)
    try:
        with pytest.raises(ProviderError) as info:
            _ = [c async for c in tts.synthesize("नमस्ते", TTSOptions())]
    finally:
        await tts.aclose()
    assert (info.value.retryable, info.value.provider) == (False, "sarvam")
    assert "HTTP 403 (authentication failed)" in str(info.value)
    assert info.value.__cause__ is None  # the SDK's error text holds the request headers
    assert "wrong-sarvam-key-777" not in str(info.value) + caplog.text


async def test_a_refused_voice_is_not_retryable_and_a_server_error_is(served: Served) -> None:
    tts = SarvamTTS(KEY, base_url=served.url)
    try:
        with pytest.raises(ProviderError) as refused:
            _ = [c async for c in tts.synthesize("नमस्ते", TTSOptions(voice="anushka"))]  # a v2 voice
        served.fake.tts_status = 503
        with pytest.raises(ProviderError) as failed:
            _ = [c async for c in tts.synthesize("नमस्ते", TTSOptions())]
    finally:
        await tts.aclose()
    assert (refused.value.retryable, "HTTP 400" in str(refused.value)) == (False, True)
    assert (failed.value.retryable, "HTTP 503" in str(failed.value)) == (True, True)


async def test_a_body_cut_short_raises(served: Served) -> None:
    served.fake.drop_after_bytes_tts = 5001  # mid-sample, then the connection breaks
    tts = SarvamTTS(KEY, base_url=served.url)
    try:
        with pytest.raises(ProviderError) as info:
            _ = [c async for c in tts.synthesize("a sentence long enough to be cut", TTSOptions())]
    finally:
        await tts.aclose()
    assert info.value.retryable is True


def test_language_codes_and_rates() -> None:
    assert [tts_language(t) for t in ("ta-IN", "or-IN", "en-US", "te", "fr-FR")] == [
        "ta-IN",
        "od-IN",
        "en-IN",
        "te-IN",
        "hi-IN",
    ]
    with pytest.raises(ValueError, match="sample_rate"):
        SarvamTTS(KEY, sample_rate=44100)
