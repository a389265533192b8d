"""DeepgramSTT through the real deepgram-sdk against the fake Deepgram in ``fake_deepgram.py``.

Audio is queued faster than real time (the fake judges samples, not the clock), so a test with
seconds of audio takes milliseconds. At 16 kHz one second of int16 audio is 32000 bytes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from app.clock import FakeClock
from app.providers.base import SpeechStarted, STTEvent, STTOptions, STTStream, Transcript, UtteranceEnd
from app.providers.deepgram_stt import DeepgramSTT
from app.providers.errors import ProviderError
from tests.contract.fake_deepgram import FakeDeepgram
from tests.contract.stt_streams import RATE, collect, finals, loud, quiet, run, send_all, until
from tests.servers import serve_in_thread

KEY = "test-key"


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


async def test_results_map_to_speech_started_interim_final_and_utterance_end(served: Served) -> None:
    served.fake.utterances = ["Hello there, how are you?"]
    stt = DeepgramSTT(KEY, base_url=served.url)
    assert (stt.name, stt.sample_rate) == ("deepgram", RATE)
    async with stt.stream(STTOptions(endpointing_ms=300, utterance_end_ms=1000)) as stream:
        events = await run(stream, quiet(0.2), loud(0.5), quiet(1.5))

    assert [type(e) for e in events] == [SpeechStarted, Transcript, Transcript, UtteranceEnd]
    started, interim, final, utterance_end = events
    assert started == SpeechStarted(timestamp=0.2)
    assert isinstance(interim, Transcript)
    assert isinstance(final, Transcript)
    assert (interim.text, interim.is_final, interim.speech_final) == ("Hello there,", False, False)
    assert (final.text, final.is_final, final.speech_final) == ("Hello there, how are you?", True, True)
    assert (final.confidence, final.start, final.end) == (0.98, 0.2, 0.7)  # first word start, last word end
    assert utterance_end == UtteranceEnd(last_word_end=0.7)
    rec = served.fake.listens[0]
    assert rec.close_stream
    assert rec.bytes_received == round(2.2 * 2 * RATE)
    assert rec.sent[-1]["type"] == "Metadata"  # received after CloseStream, and ignored


async def test_query_parameters_and_auth_header(served: Served) -> None:
    stt = DeepgramSTT(KEY, base_url=served.url)
    options = STTOptions(language="en-IN", keywords=("Vobiz", "booking id"), endpointing_ms=250)
    async with stt.stream(options):
        pass
    options = STTOptions(model="nova-2-phonecall", keywords=("Vobiz:2",), utterance_end_ms=1500)
    async with stt.stream(options):
        pass
    async with stt.stream(STTOptions(interim_results=False, endpointing_ms=0)):
        pass

    nova3, nova2, plain = served.fake.listens
    assert all(rec.authorized for rec in served.fake.listens)
    assert sorted(nova3.query) == [
        ("channels", "1"),
        ("encoding", "linear16"),
        ("endpointing", "250"),
        ("interim_results", "true"),
        ("keyterm", "Vobiz"),
        ("keyterm", "booking id"),
        ("language", "en-IN"),
        ("model", "nova-3"),
        ("punctuate", "true"),
        ("sample_rate", "16000"),
        ("smart_format", "true"),
        ("utterance_end_ms", "1000"),
        ("vad_events", "true"),
    ]
    assert (nova2.param("model"), nova2.param("keywords"), nova2.param("keyterm")) == (
        "nova-2-phonecall",
        "Vobiz:2",
        None,
    )
    assert nova2.param("utterance_end_ms") == "1500"
    # utterance_end_ms needs interim results; endpointing 0 turns endpointing off
    assert (plain.param("interim_results"), plain.param("utterance_end_ms")) == ("false", None)
    assert plain.param("endpointing") == "false"


async def test_keepalive_only_when_no_audio_flows(served: Served) -> None:
    async with DeepgramSTT(KEY, base_url=served.url, keepalive_seconds=0.15).stream(STTOptions()) as stream:
        for _ in range(15):  # 0.3 s of 20 ms frames, paced: never 0.15 s without audio
            await stream.send(quiet(0.02))
            await asyncio.sleep(0.02)
        await until(lambda: served.fake.listens[0].bytes_received >= 15 * 640)
        assert served.fake.listens[0].keepalives == 0
        await asyncio.sleep(0.5)  # silence: a KeepAlive every 0.15 s
    assert 2 <= served.fake.listens[0].keepalives <= 4


async def test_keepalives_on_the_clock_count_from_the_last_audio_sent(served: Served) -> None:
    clock = FakeClock()
    served.fake.now = clock.now  # stamps, read while the test holds time still
    stt = DeepgramSTT(KEY, base_url=served.url, keepalive_seconds=5.0, clock=clock)
    async with stt.stream(STTOptions()) as stream:
        await stream.send(quiet(0.02))
        await until(lambda: served.fake.listens[0].bytes_received == 640)
        await clock.advance(4.9)
        await stream.send(quiet(0.02))  # audio at 4.9 s: the next KeepAlive is due at 9.9 s, not 5 s
        await until(lambda: served.fake.listens[0].bytes_received == 1280)
        for keepalives in (1, 2):
            await clock.advance(5.0)
            await until(lambda: served.fake.listens[0].keepalives >= keepalives)  # noqa: B023
    listen = served.fake.listens[0]
    assert listen.opened_at == 0.0
    assert [round(t, 6) for t in listen.keepalive_at] == [9.9, 14.9]


async def test_reconnect_back_off_doubles_on_the_clock(served: Served) -> None:
    clock = FakeClock()
    served.fake.now = clock.now
    served.fake.drop_after_bytes = [3200] * 10  # every socket drops 0.1 s into the audio
    stt = DeepgramSTT(KEY, base_url=served.url, reconnect_attempts=3, keepalive_seconds=1000, clock=clock)
    async with stt.stream(STTOptions()) as stream:
        await send_all(stream, loud(1.0))
        waits = []
        for _ in range(3):
            await until(lambda: any(t < clock.now() + 1 for t in clock.deadlines()))  # back-off
            wake = min(clock.deadlines())
            waits.append(round(wake - clock.now(), 6))
            await clock.advance(wake - clock.now())
        with pytest.raises(ProviderError, match="gave up after 3 reconnects"):
            await collect(stream)
    assert waits == [0.1, 0.2, 0.4]
    assert [rec.opened_at for rec in served.fake.listens] == pytest.approx([0.0, 0.1, 0.3, 0.7])
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_reconnect_replays_the_utterance_in_progress_with_monotonic_times(served: Served) -> None:
    served.fake.utterances = ["first one", "second utterance here"]
    # the first socket drops 1.25 s in, in the middle of the second utterance (1.1 s .. 1.4 s)
    served.fake.drop_after_bytes = [round(1.25 * 2 * RATE)]
    events: list[STTEvent] = []

    async def read(stream: STTStream) -> None:
        async for event in stream.events():
            events.append(event)

    stt = DeepgramSTT(KEY, base_url=served.url)
    async with stt.stream(STTOptions(endpointing_ms=300)) as stream, asyncio.TaskGroup() as tg:
        tg.create_task(read(stream))
        await send_all(stream, quiet(0.2), loud(0.4), quiet(0.5))
        # a live caller's audio arrives in real time, so the first final (at 0.9 s of audio) is in
        # before the drop at 1.25 s; sending as fast as possible would race it on a busy machine
        await until(lambda: any(t.text == "first one" for t in finals(events)))
        await send_all(stream, loud(0.3), quiet(1.3))
        await stream.end_input()

    first, second = served.fake.listens
    assert first.dropped
    assert not second.dropped
    assert second.close_stream
    # the replay starts where the first final ended (0.9 s: 0.6 s + 300 ms endpointing)
    assert second.bytes_received == round((2.7 - 0.9) * 2 * RATE)
    got = finals(events)
    assert [(t.text, t.start, t.end) for t in got] == [
        ("first one", 0.2, 0.6),
        ("second utterance here", 1.1, 1.4),
    ]
    assert all(t.speech_final for t in got)
    starts = [e.start for e in events if isinstance(e, Transcript) and e.start is not None]
    assert len(starts) == 4  # an interim and a final per utterance
    assert starts == sorted(starts)  # monotonic across the reconnect
    assert UtteranceEnd(last_word_end=1.4) in events
    # speech started again on the new socket, at the same stream time
    assert [e.timestamp for e in events if isinstance(e, SpeechStarted)] == [0.2, 1.1, 1.1]


async def test_end_input_flushes_final_results_and_leaves_no_tasks(served: Served) -> None:
    served.fake.utterances = ["cut short"]
    async with DeepgramSTT(KEY, base_url=served.url).stream(STTOptions()) as stream:
        await send_all(stream, quiet(0.1), loud(0.4))  # no trailing silence: no endpoint yet
        await stream.end_input()
        await stream.end_input()  # twice is fine
        await stream.send(loud(0.1))  # ignored after the end
        events = await collect(stream)
    assert [(t.text, t.is_final, t.speech_final) for t in finals(events)] == [("cut short", True, False)]
    assert served.fake.listens[0].close_stream
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert await collect(stream) == []  # a second reader sees the end too


async def test_end_input_finalizes_so_the_last_words_come_from_finalize(served: Served) -> None:
    # a caller hangs up mid-sentence: Finalize makes Deepgram's held words final before the close
    served.fake.utterances = ["make that four people"]
    async with DeepgramSTT(KEY, base_url=served.url).stream(STTOptions()) as stream:
        await send_all(stream, quiet(0.1), loud(0.6))
        await stream.end_input()
        events = await collect(stream)
    assert [t.text for t in finals(events)] == ["make that four people"]
    listen = served.fake.listens[0]
    assert (listen.finalizes, listen.close_stream) == (1, True)
    [final] = [m for m in listen.sent if m["type"] == "Results" and m["is_final"]]
    assert final["from_finalize"] is True  # read from the Finalize answer, before CloseStream


async def test_auth_failure_is_not_retryable_and_hides_the_key(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stt = DeepgramSTT("wrong-secret-key", base_url=served.url)
    with pytest.raises(ProviderError) as info:
        async with stt.stream(STTOptions()):
            pass
    assert info.value.retryable is False
    assert info.value.provider == "deepgram"
    assert "401" in str(info.value)
    assert "wrong-secret-key" not in str(info.value) + caplog.text
    assert not served.fake.listens[0].authorized
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_repeated_drops_end_in_a_retryable_error(served: Served) -> None:
    served.fake.drop_after_bytes = [8000] * 10
    async with DeepgramSTT(KEY, base_url=served.url, reconnect_attempts=2).stream(STTOptions()) as stream:
        await send_all(stream, loud(1.0))
        with pytest.raises(ProviderError) as info:
            await collect(stream)
        assert info.value.retryable is True
        assert "gave up after 2 reconnects" in str(info.value)
        assert len(served.fake.listens) == 3  # the first socket and two reconnects
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_unreachable_server_is_retryable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderError) as info:
        async with DeepgramSTT(KEY, base_url=f"http://127.0.0.1:{port}").stream(STTOptions()):
            pass
    assert info.value.retryable is True


async def test_send_never_blocks_and_drops_the_oldest_audio_when_the_queue_is_full(served: Served) -> None:
    frame = quiet(0.02)
    async with DeepgramSTT(KEY, base_url=served.url).stream(STTOptions()) as stream:
        for _ in range(2000):  # 40 s of audio without yielding to the sender: must not block
            await stream.send(frame)
    # the newest 10 s, less one frame that made room for the end-of-audio marker
    assert served.fake.listens[0].bytes_received == 499 * 640


async def test_an_error_in_the_block_propagates_as_itself_after_the_stream_stopped(served: Served) -> None:
    served.fake.utterances = ["still heard"]
    stt = DeepgramSTT(KEY, base_url=served.url)
    streams: list[STTStream] = []

    async def broken() -> None:
        async with stt.stream(STTOptions()) as stream:
            streams.append(stream)
            await send_all(stream, quiet(0.1), loud(0.4))
            raise LookupError("the caller's code broke")  # not wrapped in an ExceptionGroup

    with pytest.raises(LookupError, match="the caller's code broke"):
        await broken()
    [stream] = streams
    assert served.fake.listens[0].close_stream  # leaving ended the input, as end_input does
    assert [t.text for t in finals(await collect(stream))] == ["still heard"]
    assert asyncio.all_tasks() == {asyncio.current_task()}


# ── issue 18: retries, close codes, timeouts on the clock ──


async def test_close_1008_is_not_retried(served: Served) -> None:
    served.fake.drop_code = 1008  # Deepgram could not decode the audio: a retry sends it again
    served.fake.drop_after_bytes = [3200] * 5
    async with DeepgramSTT(KEY, base_url=served.url).stream(STTOptions()) as stream:
        await send_all(stream, loud(0.5))
        with pytest.raises(ProviderError) as info:
            await collect(stream)
    assert info.value.retryable is False
    assert "1008" in str(info.value)
    assert len(served.fake.listens) == 1


async def test_a_socket_that_lived_long_but_produced_nothing_does_not_reset_the_failures(
    served: Served,
) -> None:
    clock = FakeClock()
    served.fake.now = clock.now
    # socket k is replayed k × 0.1 s of quiet audio (no result), then drops at the next 0.1 s
    served.fake.drop_after_bytes = [3200 * (k + 1) for k in range(10)]
    stt = DeepgramSTT(KEY, base_url=served.url, reconnect_attempts=2, keepalive_seconds=1000, clock=clock)
    async with stt.stream(STTOptions()) as stream:
        for k in range(3):
            await until(lambda: len(served.fake.listens) > k and served.fake.listens[k].opened_at is not None)  # noqa: B023
            await clock.advance(11.0)  # a long life, without a single result
            await send_all(stream, quiet(0.1))
            await until(lambda: served.fake.listens[k].dropped)  # noqa: B023
            await until(lambda: any(t < clock.now() + 1 for t in clock.deadlines()) or stream._ended)
            await clock.advance(1.0)  # the back-off
        async with asyncio.timeout(2):  # a hang guard: the old code kept reconnecting
            with pytest.raises(ProviderError, match="gave up after 2 reconnects"):
                await collect(stream)
    assert len(served.fake.listens) == 3


async def test_first_connect_backs_off_on_the_clock_and_retries(served: Served) -> None:
    clock = FakeClock()
    served.fake.now = clock.now
    served.fake.listen_status = [503, 429]
    served.fake.utterances = ["hello"]
    stt = DeepgramSTT(KEY, base_url=served.url, keepalive_seconds=1000, clock=clock)
    async with asyncio.TaskGroup() as tg:
        entering = tg.create_task(_open_and_hear(stt))
        await step_back_offs(clock, 0.1, 0.2)
    assert entering.result() == ["hello"]
    assert [rec.opened_at for rec in served.fake.listens] == [None, None, pytest.approx(0.3)]


async def step_back_offs(clock: FakeClock, *waits: float) -> None:
    """Wait for each back-off in turn (a sleeper due within 1 s) and let its time pass."""
    for wait in waits:
        await until(lambda: any(t < clock.now() + 1 for t in clock.deadlines()))
        assert round(min(clock.deadlines()) - clock.now(), 6) == wait
        await clock.advance(wait)


async def _open_and_hear(stt: DeepgramSTT) -> list[str]:
    async with stt.stream(STTOptions()) as stream:
        return [t.text for t in finals(await run(stream, quiet(0.1), loud(0.4), quiet(0.3)))]


async def test_first_connect_gives_up_after_the_retries_with_a_retryable_error(served: Served) -> None:
    clock = FakeClock()
    served.fake.listen_status = [503] * 5
    stt = DeepgramSTT(KEY, base_url=served.url, reconnect_attempts=2, clock=clock)
    with pytest.raises(ProviderError, match=r"HTTP 503.*gave up after 2 retries") as info:
        await asyncio.gather(_open_and_hear(stt), step_back_offs(clock, 0.1, 0.2))
    assert info.value.retryable is True
    assert len(served.fake.listens) == 3
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_connect_times_out_after_3_s_on_the_clock() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts the TCP connection, never answers the handshake
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clock = FakeClock()
    stt = DeepgramSTT(KEY, base_url=f"http://127.0.0.1:{port}", reconnect_attempts=0, clock=clock)
    try:
        async with asyncio.TaskGroup() as tg:
            entering = tg.create_task(_open_and_hear(stt))
            await until(lambda: clock.deadlines() == [3.0])
            await clock.advance(3.0)
            await asyncio.wait({entering})
    except* ProviderError as group:
        [error] = group.exceptions
        assert isinstance(error, ProviderError)
        assert error.retryable is True
        assert str(error) == "deepgram: connect: TimeoutError; gave up after 0 retries"
    else:
        pytest.fail("no timeout")
    finally:
        server.close()


async def test_a_stalled_socket_is_reopened_and_the_utterance_replayed(served: Served) -> None:
    clock = FakeClock()
    served.fake.now = clock.now
    served.fake.stall_after_bytes = [0]  # the first socket reads on and answers nothing
    served.fake.utterances = ["are you there"]
    stt = DeepgramSTT(KEY, base_url=served.url, keepalive_seconds=1000, clock=clock)
    async with stt.stream(STTOptions()) as stream:
        await send_all(stream, quiet(8.0), loud(0.5), quiet(0.5))  # 9 s of audio, unanswered
        await until(lambda: served.fake.listens[0].bytes_received == 9 * 2 * RATE)
        await clock.advance(8.0)  # nothing back for 8 s: stalled
        await until(lambda: any(t < clock.now() + 1 for t in clock.deadlines()))
        await clock.advance(0.1)  # the back-off
        await until(lambda: len(served.fake.listens) == 2)
        events = await run(stream, quiet(0.02))
    assert [t.text for t in finals(events)] == ["are you there"]
    assert served.fake.listens[1].close_stream


@pytest.mark.parametrize(
    ("model", "language"), [("nova-2-phonecall", "hi"), ("nova-3-medical", "es"), ("whisper-9", "en-US")]
)
async def test_a_model_language_pair_deepgram_refuses_is_not_retried(
    served: Served, model: str, language: str
) -> None:
    with pytest.raises(ProviderError) as info:
        async with DeepgramSTT(KEY, base_url=served.url).stream(STTOptions(model=model, language=language)):
            pass
    assert (info.value.retryable, len(served.fake.listens)) == (False, 1)
    assert "400" in str(info.value)


async def test_a_long_utterance_in_several_finals_before_speech_final(served: Served) -> None:
    served.fake.split_final_seconds = 1.0
    served.fake.utterances = ["one two three four five six seven eight"]
    async with DeepgramSTT(KEY, base_url=served.url).stream(STTOptions(endpointing_ms=300)) as stream:
        events = await run(stream, quiet(0.2), loud(2.5), quiet(0.5))
    got = finals(events)
    assert [(t.text, t.speech_final) for t in got] == [
        ("one two three four", False),
        ("five six", False),
        ("seven eight", True),
    ]
    starts = [t.start or 0.0 for t in got]
    assert starts == sorted(starts)


async def test_keepalives_keep_an_idle_socket_from_the_net_0001_close(served: Served) -> None:
    served.fake.idle_close_seconds = 0.4  # Deepgram's ~10 s, shortened (real time)
    async with DeepgramSTT(KEY, base_url=served.url, keepalive_seconds=0.1).stream(STTOptions()) as stream:
        await stream.send(quiet(0.02))
        await asyncio.sleep(1.0)  # no audio: only KeepAlives
    assert len(served.fake.listens) == 1  # never closed, never reopened
    assert served.fake.listens[0].close_stream


async def test_a_net_0001_close_is_reopened(served: Served) -> None:
    served.fake.idle_close_seconds = 0.2
    served.fake.utterances = ["still there"]
    stt = DeepgramSTT(KEY, base_url=served.url, keepalive_seconds=1000)  # no KeepAlive: idle
    async with stt.stream(STTOptions()) as stream:
        await until(lambda: len(served.fake.listens) >= 2)  # closed with NET-0001, reopened
        served.fake.idle_close_seconds = None
        events = await run(stream, quiet(0.1), loud(0.4), quiet(0.3))
    assert [t.text for t in finals(events)] == ["still there"]
