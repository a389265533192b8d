"""OpenAITTS through the real ``openai`` SDK against the fake OpenAI server (127.0.0.1 only)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing

import httpx2
import numpy as np
import pytest

from app.providers.base import PCM, SpeechSynthesizer, TTSOptions
from app.providers.errors import ProviderError
from app.providers.openai_tts import OPENAI_PCM_RATE, OpenAITTS, PCMAssembler
from tests.contract.fake_openai import (
    API_KEY,
    SAMPLES_PER_CHAR,
    SPEECH_CHUNK_BYTES,
    BrokenReply,
    ErrorReply,
    FakeOpenAI,
    SpeechReply,
    speech_for,
)
from tests.servers import serve_in_thread

MODEL = "gpt-4o-mini-tts"  # served until 2027-01-06; the fake knows it
TEXT = "Your table for four is booked for half past seven."


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve_in_thread(fake.app) as url:
        yield fake, url


@pytest.fixture
def fake(served: tuple[FakeOpenAI, str]) -> FakeOpenAI:
    served[0].reset()
    return served[0]


@pytest.fixture
def server(served: tuple[FakeOpenAI, str], fake: FakeOpenAI) -> str:
    return served[1]


@pytest.fixture
async def tts(server: str) -> AsyncIterator[OpenAITTS]:
    engine = OpenAITTS(API_KEY, model=MODEL, base_url=f"{server}/v1")
    yield engine
    await engine.aclose()


async def speak(tts: OpenAITTS, text: str = TEXT, options: TTSOptions | None = None) -> list[PCM]:
    return [chunk async for chunk in tts.synthesize(text, options or TTSOptions())]


async def drain(tts: OpenAITTS, received: list[PCM]) -> None:
    async for chunk in tts.synthesize(TEXT, TTSOptions()):
        received.append(chunk)


async def failure(tts: OpenAITTS, received: list[PCM] | None = None) -> ProviderError:
    """The ``ProviderError`` synthesising ``TEXT`` ends with; audio before it goes to ``received``."""
    with pytest.raises(ProviderError) as caught:
        await drain(tts, received if received is not None else [])
    return caught.value


def test_satisfies_the_speech_synthesizer_protocol(tts: OpenAITTS) -> None:
    engine: SpeechSynthesizer = tts
    assert (engine.name, engine.sample_rate) == ("openai", OPENAI_PCM_RATE)
    assert OPENAI_PCM_RATE == 24000


def test_only_the_pcm_rate_is_accepted() -> None:
    with pytest.raises(ValueError, match="24000"):
        OpenAITTS(API_KEY, model=MODEL, sample_rate=8000)


async def test_chunks_reassemble_to_exactly_the_served_samples(tts: OpenAITTS, fake: FakeOpenAI) -> None:
    chunks = await speak(tts)
    assert all(c.dtype == np.int16 and c.ndim == 1 and c.size > 0 for c in chunks)
    audio = np.concatenate(chunks)
    assert audio.size == len(TEXT) * SAMPLES_PER_CHAR
    np.testing.assert_array_equal(audio, speech_for(TEXT))
    assert fake.completed_streams == 1
    assert all(size % 2 == 1 for size in SPEECH_CHUNK_BYTES)  # every wire piece splits a sample


async def test_request_uses_defaults_and_pcm(tts: OpenAITTS, fake: FakeOpenAI) -> None:
    await speak(tts)
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/audio/speech")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body == {
        "model": "gpt-4o-mini-tts",
        "voice": "alloy",
        "input": TEXT,
        "response_format": "pcm",
    }


async def test_options_override_model_voice_and_speed(tts: OpenAITTS, fake: FakeOpenAI) -> None:
    await speak(tts, "Hi.", TTSOptions(voice="nova", model="tts-1", speed=1.25))
    assert fake.last_body == {
        "model": "tts-1",
        "voice": "nova",
        "input": "Hi.",
        "response_format": "pcm",
        "speed": 1.25,
    }


async def test_first_chunk_is_yielded_before_the_server_sends_the_rest(
    tts: OpenAITTS, fake: FakeOpenAI
) -> None:
    fake.script_speech(SpeechReply(pause_after=1))  # one odd-sized piece, then wait for release()
    chunks: list[PCM] = []
    async for chunk in tts.synthesize(TEXT, TTSOptions()):
        if not chunks:
            assert fake.completed_streams == 0  # the rest is held back until we release it
            fake.release()
        chunks.append(chunk)
    assert fake.gate_timeouts == 0
    assert chunks[0].size <= SPEECH_CHUNK_BYTES[0] // 2
    np.testing.assert_array_equal(np.concatenate(chunks), speech_for(TEXT))


async def test_closing_early_closes_the_response(server: str, fake: FakeOpenAI) -> None:
    responses: list[httpx2.Response] = []

    async def remember(response: httpx2.Response) -> None:
        responses.append(response)

    client = httpx2.AsyncClient(event_hooks={"response": [remember]})
    tts = OpenAITTS(API_KEY, model=MODEL, base_url=f"{server}/v1", http_client=client)
    fake.script_speech(SpeechReply(pause_after=1))
    try:
        async with aclosing(tts.synthesize(TEXT, TTSOptions())) as chunks:
            async for _ in chunks:
                break  # the caller barged in
        assert responses[0].is_closed
        await tts.aclose()
        assert not client.is_closed  # a supplied client stays the caller's
    finally:
        fake.release()
        await client.aclose()


async def test_blank_text_makes_no_request(tts: OpenAITTS, fake: FakeOpenAI) -> None:
    assert await speak(tts, "  \n") == []
    assert fake.requests == []


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [
        pytest.param(ErrorReply(400, "invalid_request_error", param="input"), False, id="400"),
        pytest.param(ErrorReply(404, "invalid_request_error", "model_not_found"), False, id="404"),
        pytest.param(ErrorReply(429, "requests", "rate_limit_exceeded"), True, id="429"),
        pytest.param(ErrorReply(500), True, id="500"),
    ],
)
async def test_http_errors_map_to_provider_error(
    tts: OpenAITTS, fake: FakeOpenAI, reply: ErrorReply, retryable: bool
) -> None:
    fake.script_speech(reply)
    error = await failure(tts)
    assert (error.provider, error.retryable) == ("openai", retryable)
    assert len(fake.requests) == 1  # no SDK retry


async def test_wrong_key_is_not_retryable(server: str, fake: FakeOpenAI) -> None:
    tts = OpenAITTS("sk-wrong-secret-value-42", model=MODEL, base_url=f"{server}/v1")
    try:
        error = await failure(tts)
    finally:
        await tts.aclose()
    assert not error.retryable
    assert "secret" not in str(error)


async def test_stream_broken_midway_is_retryable_after_the_audio_so_far(
    tts: OpenAITTS, fake: FakeOpenAI
) -> None:
    fake.script_speech(BrokenReply(speech_bytes=4801 + 1 + 3))  # 2402 samples and a half, then drop
    received: list[PCM] = []
    error = await failure(tts, received)
    assert error.retryable
    audio = np.concatenate(received) if received else np.zeros(0, np.int16)
    np.testing.assert_array_equal(audio, speech_for(TEXT)[: audio.size])
    assert audio.size <= 2402


def test_assembler_carries_odd_bytes_and_reads_little_endian() -> None:
    wire = np.array([1, -2, 300, -32768, 32767], dtype="<i2").tobytes()
    assembler = PCMAssembler()
    pieces = [assembler.push(wire[:3]), assembler.push(wire[3:4]), assembler.push(wire[4:9])]
    assert assembler.leftover == 1
    last = assembler.push(wire[9:])
    assert assembler.leftover == 0
    out = [p for p in [*pieces, last] if p is not None]
    assert [p.tolist() for p in out] == [[1], [-2], [300, -32768], [32767]]
    assert all(p.dtype == np.int16 and p.flags.writeable for p in out)
