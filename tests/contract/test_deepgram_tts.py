"""DeepgramTTS through the real deepgram-sdk against the fake Aura REST speak endpoint
(``fake_deepgram_speak.py``).

The fake answers with :func:`tone` (20 ms of 440 Hz per character) in 999-byte pieces, so every
other piece splits a sample: the client must carry the odd byte over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest

from app.clock import FakeClock
from app.providers.base import PCM, TTSOptions
from app.providers.deepgram_tts import DeepgramTTS
from app.providers.errors import ProviderError
from tests.contract.fake_deepgram import FakeDeepgram, FakeSpeak, tone
from tests.servers import serve_in_thread

KEY = "test-key"
TEXT = "Your table for four is booked for half past seven."
SENTENCES = ["Hello there.", "Your table is booked.", "See you at seven.", "Anything else?"]


@dataclass
class Served:
    fake: FakeDeepgram
    url: str

    @property
    def speak(self) -> FakeSpeak:
        return self.fake.speak


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    fake = FakeDeepgram(api_key=KEY)
    with serve_in_thread(fake.app()) as url:
        yield Served(fake, url)


@pytest.fixture
def served(server: Served) -> Served:
    """The module's fake Deepgram, reset: no faults, nothing recorded."""
    server.fake.reset()
    return server


@contextlib.asynccontextmanager
async def engine(url: str, **kwargs: object) -> AsyncIterator[DeepgramTTS]:
    tts = DeepgramTTS(KEY, base_url=url, **kwargs)  # type: ignore[arg-type]
    try:
        yield tts
    finally:
        await tts.aclose()


async def chunks(tts: DeepgramTTS, text: str, options: TTSOptions | None = None) -> list[PCM]:
    return [chunk async for chunk in tts.synthesize(text, options or TTSOptions())]


@pytest.mark.parametrize("rate", [16000, 8000])
async def test_audio_is_exactly_what_the_fake_sent_at_the_requested_rate(served: Served, rate: int) -> None:
    async with engine(served.url, sample_rate=rate) as tts:
        assert (tts.name, tts.sample_rate) == ("deepgram", rate)
        got = await chunks(tts, TEXT)

    expected = tone(TEXT, rate)
    assert len(expected) == round(len(TEXT) * 0.02 * rate)  # 1.02 s
    assert len(got) > 1
    assert all(c.dtype == np.int16 and c.ndim == 1 for c in got)
    assert np.array_equal(np.concatenate(got), expected)  # bit-exact, no WAV header, no byte lost
    (request,) = served.speak.requests
    assert (request.authorized, request.text, request.status, request.complete) == (True, TEXT, 200, True)
    assert request.query == {
        "model": "aura-2-thalia-en",
        "encoding": "linear16",
        "container": "none",
        "sample_rate": str(rate),
    }


async def test_the_sentences_of_a_call_share_one_connection(served: Served) -> None:
    async with engine(served.url) as tts:
        for sentence in SENTENCES:
            assert np.array_equal(np.concatenate(await chunks(tts, sentence)), tone(sentence, 16000))
    assert [r.text for r in served.speak.requests] == SENTENCES
    assert len(served.speak.connections) == 1  # one TCP (and TLS) handshake, not one per sentence


async def test_first_chunk_arrives_before_the_last_is_produced(served: Served) -> None:
    gate = threading.Event()
    served.speak.gate = gate  # the fake holds the last piece until the gate opens
    total = 0
    async with engine(served.url) as tts:
        async for chunk in tts.synthesize(TEXT, TTSOptions()):
            if total == 0:
                gate.set()
            total += len(chunk)
    assert not served.speak.requests[0].gate_timed_out
    assert total == len(tone(TEXT, 16000))


async def test_voice_and_speed_options(served: Served) -> None:
    async with engine(served.url, model="aura-2-andromeda-en") as tts:
        await chunks(tts, "Hi.", TTSOptions(voice="aura-2-apollo-en", speed=1.25))
        await chunks(tts, "Hi.", TTSOptions(model="aura-asteria-en"))
        await chunks(tts, "Hi.")
    first, second, third = (r.query for r in served.speak.requests)
    assert (first["model"], first["speed"]) == ("aura-2-apollo-en", "1.25")
    assert (second["model"], "speed" in second) == ("aura-asteria-en", False)
    assert third["model"] == "aura-2-andromeda-en"


async def test_empty_text_makes_no_request(served: Served) -> None:
    async with engine(served.url) as tts:
        assert await chunks(tts, "  ") == []
    assert served.speak.requests == []


async def test_barge_in_mid_sentence_releases_the_connection_and_the_next_sentence_works(
    served: Served,
) -> None:
    async with engine(served.url) as tts:
        await chunks(tts, "Hello.")
        stream = tts.synthesize(TEXT * 5, TTSOptions())
        async for _ in stream:
            break  # barge-in: the responder closes the stream mid-sentence
        await stream.aclose()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        await until(lambda: served.speak.requests[1].disconnected)  # the response was closed at once
        assert not served.speak.requests[1].complete
        for sentence in SENTENCES:
            assert np.array_equal(np.concatenate(await chunks(tts, sentence)), tone(sentence, 16000))
    # the cut response's connection is closed, not reused half-read; one new one serves the rest
    assert len(served.speak.connections) == 2
    assert [r.connection for r in served.speak.requests[2:]] == [served.speak.connections[1]] * 4


async def test_bad_key_is_not_retryable_and_hidden(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tts = DeepgramTTS("wrong-secret-key", base_url=served.url)
    with pytest.raises(ProviderError) as info:
        await chunks(tts, TEXT)
    await tts.aclose()
    assert (info.value.retryable, str(info.value)) == (
        False,
        "deepgram: speak: HTTP 401 (authentication failed, INVALID_AUTH)",
    )
    assert "wrong-secret-key" not in str(info.value) + caplog.text


async def test_rate_limit_is_retryable_after_the_time_deepgram_asks(served: Served) -> None:
    served.speak.status, served.speak.retry_after = 429, 2
    async with engine(served.url) as tts:
        with pytest.raises(ProviderError) as info:
            await chunks(tts, TEXT)
        served.speak.status = None
        assert len(await chunks(tts, "ok")) > 0  # the connection survived the error answer
    assert (info.value.retryable, info.value.retry_after) == (True, 2.0)
    assert str(info.value) == "deepgram: speak: HTTP 429 (request refused, TOO_MANY_REQUESTS)"
    assert len(served.speak.connections) == 1


async def test_server_error_is_retryable(served: Served) -> None:
    served.speak.status = 503
    async with engine(served.url) as tts:
        with pytest.raises(ProviderError) as info:
            await chunks(tts, TEXT)
    assert (info.value.retryable, info.value.retry_after) == (True, None)
    assert "503" in str(info.value)


@pytest.mark.parametrize(
    ("model", "rate"),
    [("nova-3", 16000), ("thalia", 16000), ("aura-2-thalia-en", 22050), ("aura-2-thalia-en", 44100)],
)
async def test_a_rate_or_voice_aura_refuses_is_not_retryable(served: Served, model: str, rate: int) -> None:
    async with engine(served.url, model=model, sample_rate=rate) as tts:
        with pytest.raises(ProviderError) as info:
            await chunks(tts, TEXT)
    assert (info.value.retryable, str(info.value)) == (
        False,
        "deepgram: speak: HTTP 400 (request refused, INVALID_QUERY_PARAMETER)",
    )


async def test_a_connection_lost_mid_body_is_retryable_after_the_audio_so_far(served: Served) -> None:
    served.speak.drop_after_bytes = 5000
    got: list[PCM] = []

    async def listen(tts: DeepgramTTS) -> None:
        async for chunk in tts.synthesize(TEXT, TTSOptions()):
            got.append(chunk)

    async with engine(served.url) as tts:
        with pytest.raises(ProviderError) as info:
            await listen(tts)
    assert info.value.retryable is True
    assert sum(len(c) for c in got) == 5994 // 2  # six 999-byte pieces, then an error: not cut silently


async def test_unreachable_server_is_retryable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with engine(f"http://127.0.0.1:{port}") as tts:
        with pytest.raises(ProviderError) as info:
            await chunks(tts, TEXT)
    assert info.value.retryable is True


async def test_a_stalled_sentence_times_out_after_8_s_on_the_clock_and_lets_go(served: Served) -> None:
    served.speak.stall_after_bytes = 3000
    clock = FakeClock()
    got: list[PCM] = []

    async def listen(tts: DeepgramTTS) -> None:
        async for chunk in tts.synthesize(TEXT, TTSOptions()):
            got.append(chunk)

    async with engine(served.url, clock=clock) as tts:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(listen(tts))
                await until(lambda: sum(len(c) for c in got) == 3996 // 2)  # four 999-byte pieces
                await until(lambda: [round(t - clock.now(), 6) for t in clock.deadlines()] == [8.0])
                await clock.advance(7.9)
                assert served.speak.requests[0].disconnected is False  # not a moment early
                await clock.advance(0.1)
        except* ProviderError as group:
            [error] = group.exceptions
            assert isinstance(error, ProviderError)
            assert (str(error), error.retryable) == ("deepgram: speak: TimeoutError", True)
        else:
            pytest.fail("no timeout")
        await until(lambda: served.speak.requests[0].disconnected)  # the stalled response was let go
        served.speak.stall_after_bytes = None
        assert len(await chunks(tts, "ok")) > 0


async def test_the_answer_times_out_after_3_s_on_the_clock() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts the TCP connection and the request, never answers
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clock = FakeClock()
    try:
        async with engine(f"http://127.0.0.1:{port}", clock=clock) as tts, asyncio.TaskGroup() as tg:
            speaking = tg.create_task(chunks(tts, TEXT))
            await until(lambda: clock.deadlines() == [3.0])
            await clock.advance(3.0)
            await asyncio.wait({speaking})
    except* ProviderError as group:
        [error] = group.exceptions
        assert isinstance(error, ProviderError)
        assert (str(error), error.retryable) == ("deepgram: speak: TimeoutError", True)
    else:
        pytest.fail("no timeout")
    finally:
        server.close()


async def test_a_supplied_pool_is_used_and_left_open(served: Served) -> None:
    async with httpx.AsyncClient() as http:
        tts = DeepgramTTS(KEY, base_url=served.url, http_client=http)
        await chunks(tts, "Hi.")
        await tts.aclose()
        assert not http.is_closed
        assert len(await chunks(tts, "Hi again.")) > 0
    assert len(served.speak.connections) == 1


async def test_the_fake_refuses_what_deepgram_refuses_and_defaults_to_a_wav_container(served: Served) -> None:
    url, auth = f"{served.url}/v1/speak", {"Authorization": f"Token {KEY}"}
    async with httpx.AsyncClient(headers=auth) as http:
        refused = [
            await http.post(url, params={"model": "aura-2-thalia-en"}, json={}),  # no text
            await http.post(url, params={"model": "aura-2-thalia-en"}, content=b"Hi."),  # not JSON
            await http.post(url, params={"encoding": "pcm"}, json={"text": "Hi."}),
            await http.post(url, params={"encoding": "mulaw", "sample_rate": "24000"}, json={"text": "Hi."}),
            await http.post(url, params={"container": "ogg"}, json={"text": "Hi."}),
            await http.post(url, json={"text": "Hi."}, headers={"Authorization": "Token nope"}),
        ]
        wav = await http.post(url, params={"sample_rate": "16000"}, json={"text": "Hi."})
    assert [r.status_code for r in refused] == [400, 400, 400, 400, 400, 401]
    assert all(set(r.json()) == {"err_code", "err_msg", "request_id"} for r in refused)
    assert wav.content[:4] == b"RIFF"
    assert wav.content[44:] == tone("Hi.", 16000).tobytes()


async def until(condition: Callable[[], bool]) -> None:
    """Wait (up to 2 s) for a state reached in another task or thread."""
    deadline = asyncio.get_running_loop().time() + 2.0
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)
