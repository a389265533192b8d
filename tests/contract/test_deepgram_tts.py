"""DeepgramTTS through the real deepgram-sdk against the fake Aura speak socket in ``fake_deepgram.py``.

The fake answers with :func:`tone` (20 ms of 440 Hz per character) in 999-byte messages, so
every other message splits a sample: the client must carry the odd byte over.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from app.clock import FakeClock
from app.providers.base import PCM, TTSOptions
from app.providers.deepgram_tts import DeepgramTTS
from app.providers.errors import ProviderError
from tests.contract.fake_deepgram import FakeDeepgram, tone
from tests.servers import serve_in_thread

KEY = "test-key"
TEXT = "Your table for four is booked for half past seven."


@dataclass
class Served:
    fake: FakeDeepgram
    url: str


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    fake = FakeDeepgram(api_key=KEY)
    with serve_in_thread(fake.app()) as url:
        yield Served(fake, url)


@pytest.fixture
def served(server: Served) -> Served:
    """The module's fake Deepgram, reset: no script, no recorded sockets."""
    server.fake.reset()
    return server


async def chunks(tts: DeepgramTTS, text: str, options: TTSOptions | None = None) -> list[PCM]:
    return [chunk async for chunk in tts.synthesize(text, options or TTSOptions())]


@pytest.mark.parametrize("rate", [16000, 8000])
async def test_audio_is_the_whole_tone_at_the_requested_rate(served: Served, rate: int) -> None:
    tts = DeepgramTTS(KEY, base_url=served.url, sample_rate=rate)
    assert (tts.name, tts.sample_rate) == ("deepgram", rate)
    got = await chunks(tts, TEXT)

    expected = tone(TEXT, rate)
    assert len(expected) == round(len(TEXT) * 0.02 * rate)  # 1.02 s
    assert len(got) > 5
    assert all(c.dtype == np.int16 and c.ndim == 1 for c in got)
    assert np.array_equal(np.concatenate(got), expected)  # bit-exact across the odd-byte splits
    (rec,) = served.fake.speaks
    assert rec.authorized
    assert rec.texts == [TEXT]
    assert rec.query == {"model": "aura-2-thalia-en", "encoding": "linear16", "sample_rate": str(rate)}


async def test_first_chunk_arrives_before_the_last_is_produced(served: Served) -> None:
    gate = threading.Event()
    served.fake.speak_gate = gate  # the fake holds the last message until the gate opens
    tts = DeepgramTTS(KEY, base_url=served.url)
    total = 0
    async for chunk in tts.synthesize(TEXT, TTSOptions()):
        if total == 0:
            gate.set()
        total += len(chunk)
    assert not served.fake.speaks[0].gate_timed_out
    assert total == len(tone(TEXT, 16000))


async def test_voice_and_speed_options(served: Served) -> None:
    tts = DeepgramTTS(KEY, base_url=served.url, model="aura-2-andromeda-en")
    await chunks(tts, "Hi.", TTSOptions(voice="aura-2-apollo-en", speed=1.25))
    await chunks(tts, "Hi.", TTSOptions(model="aura-asteria-en"))
    await chunks(tts, "Hi.")
    first, second, third = served.fake.speaks
    assert (first.query["model"], first.query["speed"]) == ("aura-2-apollo-en", "1.25")
    assert (second.query["model"], "speed" in second.query) == ("aura-asteria-en", False)
    assert third.query["model"] == "aura-2-andromeda-en"


async def test_empty_text_makes_no_request(served: Served) -> None:
    assert await chunks(DeepgramTTS(KEY, base_url=served.url), "  ") == []
    assert served.fake.speaks == []


async def test_stopping_early_closes_the_socket_and_leaves_no_tasks(served: Served) -> None:
    stream = DeepgramTTS(KEY, base_url=served.url).synthesize(TEXT * 5, TTSOptions())
    async for _ in stream:
        break  # barge-in
    await stream.aclose()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    # the same engine keeps working
    assert sum(len(c) for c in await chunks(DeepgramTTS(KEY, base_url=served.url), "ok")) == 640


async def test_bad_key_is_not_retryable_and_hidden(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ProviderError) as info:
        await chunks(DeepgramTTS("wrong-secret-key", base_url=served.url), TEXT)
    assert info.value.retryable is False
    assert "401" in str(info.value)
    assert "wrong-secret-key" not in str(info.value) + caplog.text


async def test_refused_model_is_not_retryable(served: Served) -> None:
    with pytest.raises(ProviderError) as info:
        await chunks(DeepgramTTS(KEY, base_url=served.url, model="nova-3"), TEXT)
    assert info.value.retryable is False
    assert "400" in str(info.value)


async def test_server_error_is_retryable(served: Served) -> None:
    served.fake.speak_status = 503
    with pytest.raises(ProviderError) as info:
        await chunks(DeepgramTTS(KEY, base_url=served.url), TEXT)
    assert info.value.retryable is True
    assert "503" in str(info.value)


async def test_socket_lost_mid_speech_is_retryable_after_the_audio_so_far(served: Served) -> None:
    served.fake.speak_drop_after_bytes = 5000
    got: list[PCM] = []

    async def listen() -> None:
        async for chunk in DeepgramTTS(KEY, base_url=served.url).synthesize(TEXT, TTSOptions()):
            got.append(chunk)

    with pytest.raises(ProviderError) as info:
        await listen()
    assert info.value.retryable is True
    assert "1011" in str(info.value)
    assert sum(len(c) for c in got) == 5994 // 2  # six 999-byte messages arrived first


async def test_unreachable_server_is_retryable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderError) as info:
        await chunks(DeepgramTTS(KEY, base_url=f"http://127.0.0.1:{port}"), TEXT)
    assert info.value.retryable is True


# ── issue 18: what the real service sends besides audio, timeouts on the clock ──


async def test_an_error_message_is_a_provider_error_not_the_end_of_the_sentence(served: Served) -> None:
    served.fake.speak_error = {"type": "Error", "err_code": "SYNTHESIS_FAILED", "err_msg": "failed"}
    with pytest.raises(ProviderError) as info:
        await chunks(DeepgramTTS(KEY, base_url=served.url), TEXT)
    assert info.value.retryable is False
    assert "SYNTHESIS_FAILED" in str(info.value)


async def test_a_warning_without_a_code_does_not_cut_the_sentence(served: Served) -> None:
    served.fake.speak_warning = {"type": "Warning", "description": "Flush limit near"}
    got = await chunks(DeepgramTTS(KEY, base_url=served.url), TEXT)
    assert np.array_equal(np.concatenate(got), tone(TEXT, 16000))  # all of it, up to the real Flushed


async def test_a_stalled_sentence_times_out_after_8_s_on_the_clock(served: Served) -> None:
    served.fake.speak_stall_after_bytes = 3000
    clock = FakeClock()
    got: list[PCM] = []

    async def listen() -> None:
        async for chunk in DeepgramTTS(KEY, base_url=served.url, clock=clock).synthesize(TEXT, TTSOptions()):
            got.append(chunk)

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(listen())
            await until(lambda: sum(len(c) for c in got) == 3996 // 2)  # four 999-byte messages
            await until(lambda: [round(t - clock.now(), 6) for t in clock.deadlines()] == [8.0])
            await clock.advance(8.0)
    except* ProviderError as group:
        [error] = group.exceptions
        assert isinstance(error, ProviderError)
        assert (str(error), error.retryable) == ("deepgram: speak: TimeoutError", True)
    else:
        pytest.fail("no timeout")


async def test_connect_times_out_after_3_s_on_the_clock() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts the TCP connection, never answers the handshake
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clock = FakeClock()
    tts = DeepgramTTS(KEY, base_url=f"http://127.0.0.1:{port}", clock=clock)
    try:
        async with asyncio.TaskGroup() as tg:
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


@pytest.mark.parametrize(
    ("model", "rate"), [("aura-2-thalia-en", 22050), ("aura-2-thalia-en", 44100), ("thalia", 16000)]
)
async def test_a_rate_or_voice_aura_refuses_is_not_retryable(served: Served, model: str, rate: int) -> None:
    with pytest.raises(ProviderError) as info:
        await chunks(DeepgramTTS(KEY, base_url=served.url, model=model, sample_rate=rate), TEXT)
    assert (info.value.retryable, "400" in str(info.value)) == (False, True)


async def until(condition: Callable[[], bool]) -> None:
    """Wait (up to 2 s) for a state reached in another task or thread."""
    deadline = asyncio.get_running_loop().time() + 2.0
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)
