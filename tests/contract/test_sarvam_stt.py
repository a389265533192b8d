"""SarvamSTT through the real ``sarvamai`` SDK against the fake Sarvam in ``fake_sarvam.py``.

Audio is queued faster than real time (the fake judges samples, not the clock). At 16 kHz one
second of int16 audio is 32000 bytes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from app.providers.base import SpeechStarted, STTEvent, STTOptions, STTStream, Transcript
from app.providers.errors import ProviderError
from app.providers.sarvam_stt import SarvamSTT, sarvam_language
from tests.contract.fake_sarvam import FakeSarvam
from tests.contract.stt_streams import RATE, collect, finals, loud, quiet, run, send_all, until
from tests.servers import serve_in_thread

KEY = "sarvam-secret-key-123"
HINDI = STTOptions(language="hi-IN", endpointing_ms=300)


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


async def test_speech_start_partial_and_final_with_stream_times(served: Served) -> None:
    served.fake.utterances = ["नमस्ते, मुझे एक टेबल बुक करनी है"]
    stt = SarvamSTT(KEY, base_url=served.url)
    assert (stt.name, stt.sample_rate, stt.capabilities.interim_words) == ("sarvam", RATE, True)
    assert "ta-IN" in stt.capabilities.languages
    async with stt.stream(HINDI) as stream:
        events = await run(stream, quiet(0.2), loud(0.5), quiet(0.6))

    assert [type(e) for e in events] == [SpeechStarted, Transcript, Transcript]
    _, partial, final = events
    assert isinstance(partial, Transcript)
    assert isinstance(final, Transcript)
    assert (partial.text, partial.is_final) == ("नमस्ते, मुझे एक", False)
    assert (final.text, final.is_final, final.speech_final) == ("नमस्ते, मुझे एक टेबल बुक करनी है", True, True)
    assert (final.start, final.end) == (0.2, 0.7)
    rec = served.fake.sockets[0]
    assert rec.key == KEY  # the api-subscription-key header
    assert rec.ended  # ``end`` sent, session.end received, closed 1000
    assert rec.bytes_received == round(1.3 * 2 * RATE)
    assert rec.events("session.end")


async def test_query_parameters(served: Served) -> None:
    stt = SarvamSTT(KEY, base_url=served.url)
    async with stt.stream(STTOptions(language="ta-IN", endpointing_ms=400)):
        pass
    async with stt.stream(STTOptions(language="en-US", model="saaras:v4", keywords=("Vobiz",))):
        pass
    async with stt.stream(STTOptions(language="xx-YY", interim_results=False, endpointing_ms=0)):
        pass
    tamil, english, unknown = (s.query for s in served.fake.sockets)
    assert tamil == {
        "language_code": "ta-IN",
        "model": "saaras:v3-realtime",
        "stream_type": "fast",
        "endpointing": "vad",
        "encoding": "linear16",
        "sample_rate": "16000",
        "return_timestamps": "true",
        "silence_duration_ms": "400",
    }
    assert (english["language_code"], english["model"], english["keyterms"]) == (
        "en-IN",
        "saaras:v4",
        '["Vobiz"]',
    )
    assert (unknown["language_code"], unknown["stream_type"]) == ("auto", "simulated")
    assert "silence_duration_ms" not in unknown


def test_language_codes() -> None:
    assert [sarvam_language(t) for t in ("hi-IN", "hi", "ta", "en-US", "od-IN", "fr-FR")] == [
        "hi-IN",
        "hi-IN",
        "ta-IN",
        "en-IN",
        "or-IN",
        "auto",
    ]


async def test_auth_failure_is_not_retryable_and_hides_the_key(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the websockets client's handshake lines included
    stt = SarvamSTT("wrong-secret-key-999", base_url=served.url)
    with pytest.raises(ProviderError) as info:  # noqa: PT012 (the block is the stream's life)
        async with stt.stream(HINDI) as stream:
            await send_all(stream, loud(0.1))
            await collect(stream)
    assert info.value.retryable is False
    assert info.value.provider == "sarvam"
    assert "403" in str(info.value)
    assert "authentication failed" in str(info.value)
    assert "wrong-secret-key-999" not in str(info.value) + caplog.text
    assert len(served.fake.sockets) == 1  # not retried
    assert served.fake.sockets[0].events("error")[0]["is_fatal"] is True
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_refused_handshake_hides_the_key(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    served.fake.stt_status = [401]
    with pytest.raises(ProviderError) as info:
        async with SarvamSTT(KEY, base_url=served.url).stream(HINDI):
            pass
    assert (info.value.retryable, "HTTP 401" in str(info.value)) == (False, True)
    assert KEY not in str(info.value) + caplog.text


async def test_a_rejected_setting_is_not_retried(served: Served) -> None:
    stt = SarvamSTT(KEY, base_url=served.url)
    with pytest.raises(ProviderError) as info:
        async with stt.stream(STTOptions(language="hi-IN", model="saaras:v9")) as stream:
            await collect(stream)
    assert info.value.retryable is False
    assert "400" in str(info.value)
    assert len(served.fake.sockets) == 1


async def test_reconnect_replays_the_utterance_in_progress_with_monotonic_times(served: Served) -> None:
    served.fake.utterances = ["पहला वाक्य", "दूसरा वाक्य यहाँ है"]
    # the first socket drops 1.25 s in, in the middle of the second utterance (1.1 s .. 1.4 s)
    served.fake.drop_after_bytes = [round(1.25 * 2 * RATE)]
    events: list[STTEvent] = []

    async def read(stream: STTStream) -> None:
        async for event in stream.events():
            events.append(event)

    stt = SarvamSTT(KEY, base_url=served.url)
    async with stt.stream(HINDI) as stream, asyncio.TaskGroup() as tg:
        tg.create_task(read(stream))
        await send_all(stream, quiet(0.2), loud(0.4), quiet(0.5))
        await until(lambda: any(t.text == "पहला वाक्य" for t in finals(events)))
        await send_all(stream, loud(0.3), quiet(1.3))
        await stream.end_input()

    first, second = served.fake.sockets
    assert first.dropped
    assert not second.dropped
    assert second.ended
    # the replay starts where the first final ended (0.6 s); nothing of the caller's audio is lost
    assert second.bytes_received == round((2.7 - 0.6) * 2 * RATE)
    got = finals(events)
    assert [(t.text, t.start, t.end) for t in got] == [
        ("पहला वाक्य", 0.2, 0.6),
        ("दूसरा वाक्य यहाँ है", 1.1, 1.4),
    ]
    starts = [t.start for t in got if t.start is not None]
    assert starts == sorted(starts)


async def test_repeated_drops_end_in_a_retryable_error(served: Served) -> None:
    served.fake.drop_after_bytes = [8000] * 10
    async with SarvamSTT(KEY, base_url=served.url, reconnect_attempts=2).stream(HINDI) as stream:
        await send_all(stream, loud(1.0))
        with pytest.raises(ProviderError) as info:
            await collect(stream)
        assert info.value.retryable is True
        assert "gave up after 2 reconnects" in str(info.value)
        assert len(served.fake.sockets) == 3
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_unreachable_server_is_retryable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stt = SarvamSTT(KEY, base_url=f"http://127.0.0.1:{port}", reconnect_attempts=0)
    with pytest.raises(ProviderError) as info:
        async with stt.stream(HINDI):
            pass
    assert info.value.retryable is True


async def test_end_input_finalises_the_utterance_in_progress(served: Served) -> None:
    served.fake.utterances = ["चार लोग"]
    async with SarvamSTT(KEY, base_url=served.url).stream(HINDI) as stream:
        await send_all(stream, quiet(0.1), loud(0.4))  # no trailing silence: Sarvam's VAD has not ended it
        await stream.end_input()
        await stream.end_input()  # twice is fine
        events = await collect(stream)
    assert [t.text for t in finals(events)] == ["चार लोग"]
    assert served.fake.sockets[0].ended
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_the_websockets_debug_handshake_lines_show_no_key(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="websockets.client")
    async with SarvamSTT(KEY, base_url=served.url).stream(HINDI):
        pass
    handshake = [r.getMessage() for r in caplog.records if r.name == "websockets.client"]
    assert "> api-subscription-key: <redacted>" in handshake  # the header went, its value is hidden
    assert KEY not in caplog.text
