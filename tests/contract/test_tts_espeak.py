"""eSpeak NG engine against the real libespeak-ng from the espeakng-loader wheel (no mocks).

Every synthesis runs in a fresh instance of the library, so the same text gives the same samples
whatever was spoken before, with the standard voices (pitch "flutter") as with ``en-us+Storm``.
"""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt
import pytest
import webrtcvad

from app.providers.errors import TTSError
from app.providers.espeak import NATIVE_RATE, EspeakTTS
from app.providers.tts import SpeechAudio, TextToSpeech

SENTENCE = "Please hold the line while I check your booking details."  # 10 words
LONGER = SENTENCE + " Your table for four is confirmed at half past seven this evening."
STABLE_VOICE = "en-us+Storm"  # no flutter, echo or breath

Int16 = npt.NDArray[np.int16]


def _words(text: str) -> int:
    return len(text.split())


@pytest.fixture(scope="module")
def engine() -> EspeakTTS:
    tts = EspeakTTS()
    tts.load()
    return tts


@pytest.fixture(scope="module")
def speech16() -> SpeechAudio:
    return EspeakTTS(sample_rate=16000).synthesize(SENTENCE)


def test_engine_satisfies_the_protocol(engine: EspeakTTS) -> None:
    assert isinstance(engine, TextToSpeech)
    assert engine.name == "espeak-ng"
    assert (engine.voice, engine.words_per_minute, engine.sample_rate) == ("en-us", 170, NATIVE_RATE)
    assert NATIVE_RATE == 22050


def test_sentence_is_loud_int16_at_the_declared_rate_with_plausible_duration(engine: EspeakTTS) -> None:
    audio = engine.synthesize(SENTENCE)
    assert audio.sample_rate == engine.sample_rate == 22050
    assert audio.pcm.dtype == np.int16
    assert audio.pcm.ndim == 1
    assert audio.duration == audio.pcm.shape[0] / 22050
    assert 0.2 * _words(SENTENCE) <= audio.duration <= 0.8 * _words(SENTENCE)
    samples = audio.pcm.astype(np.float64)
    assert np.abs(samples).max() > 5000
    assert np.sqrt(np.mean(samples**2)) > 1000


def test_longer_text_gives_longer_audio(engine: EspeakTTS) -> None:
    short = engine.synthesize(SENTENCE).duration
    longer = engine.synthesize(LONGER).duration
    extra_words = _words(LONGER) - _words(SENTENCE)
    assert longer - short >= 0.2 * extra_words
    assert 0.2 * _words(LONGER) <= longer <= 0.8 * _words(LONGER)


def test_speaking_rate_scales_duration() -> None:
    slow = EspeakTTS(words_per_minute=120).synthesize(SENTENCE).duration
    fast = EspeakTTS(words_per_minute=240).synthesize(SENTENCE).duration
    assert 1.5 < slow / fast < 2.5


def test_very_long_text(engine: EspeakTTS) -> None:
    text = " ".join([LONGER] * 25)  # 550 words
    audio = engine.synthesize(text)
    assert 0.2 * _words(text) <= audio.duration <= 0.8 * _words(text)
    assert np.abs(audio.pcm[-5 * 22050 :].astype(np.int32)).max() > 5000  # still speaking near the end


def _fft_resample(x: npt.NDArray[np.float64], n_out: int) -> npt.NDArray[np.float64]:
    """Independent reference: ideal band-limited, zero-delay resampling via the FFT."""
    spectrum = np.fft.rfft(x)
    kept = np.zeros(n_out // 2 + 1, dtype=np.complex128)
    keep = min(spectrum.shape[0], kept.shape[0])
    kept[:keep] = spectrum[:keep]
    out: npt.NDArray[np.float64] = np.fft.irfft(kept, n_out) * (n_out / x.shape[0])
    return out


def _corr(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], lag: int) -> float:
    """Correlation of ``a[n]`` with ``b[n + lag]`` over their overlap."""
    n = min(a.shape[0], b.shape[0]) - abs(lag)
    return float(np.corrcoef(a[max(0, -lag) :][:n], b[max(0, lag) :][:n])[0, 1])


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_resampled_output_is_the_native_audio_at_the_new_rate(rate: int) -> None:
    native = EspeakTTS(STABLE_VOICE).synthesize(SENTENCE)
    other = EspeakTTS(STABLE_VOICE, sample_rate=rate).synthesize(SENTENCE)
    assert other.sample_rate == rate
    assert other.pcm.dtype == np.int16
    assert other.pcm.shape[0] == native.pcm.shape[0] * rate // NATIVE_RATE
    assert other.duration == pytest.approx(native.duration, abs=1 / rate)
    # Same waveform, and in time with the native audio (the resampler's delay is removed).
    got = other.pcm.astype(np.float64)
    reference = _fft_resample(native.pcm.astype(np.float64), got.shape[0])
    aligned = _corr(reference, got, 0)
    assert aligned > 0.95
    assert aligned > max(_corr(reference, got, -1), _corr(reference, got, 1))


def test_stable_voice_is_reproducible() -> None:
    tts = EspeakTTS(STABLE_VOICE)
    first = tts.synthesize(SENTENCE).pcm
    EspeakTTS().synthesize(LONGER)  # a different voice and text in between
    np.testing.assert_array_equal(tts.synthesize(SENTENCE).pcm, first)


def test_standard_voice_is_reproducible_after_other_speech() -> None:
    """libespeak-ng keeps the flutter phase in a function static: it must not carry over."""
    tts = EspeakTTS("en-us")
    first = tts.synthesize(SENTENCE).pcm
    EspeakTTS("en", words_per_minute=200).synthesize(LONGER)
    np.testing.assert_array_equal(tts.synthesize(SENTENCE).pcm, first)
    np.testing.assert_array_equal(tts.synthesize(SENTENCE).pcm, first)


def test_concurrent_engines_do_not_corrupt_each_other() -> None:
    a = EspeakTTS(STABLE_VOICE, words_per_minute=170)
    b = EspeakTTS(STABLE_VOICE, words_per_minute=130, sample_rate=16000)
    c = EspeakTTS("en", words_per_minute=200)  # a flutter voice
    jobs = {"a": (a, SENTENCE), "b": (b, LONGER), "c": (c, LONGER)}
    expected = {key: tts.synthesize(text) for key, (tts, text) in jobs.items()}
    results: dict[str, list[SpeechAudio]] = {key: [] for key in jobs}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def worker(key: str) -> None:
        tts, text = jobs[key]
        try:
            barrier.wait(timeout=10)
            for _ in range(4):
                results[key].append(tts.synthesize(text))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(key,)) for key in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    for key in ("a", "b", "c"):
        assert len(results[key]) == 4
        for audio in results[key]:
            assert audio.sample_rate == expected[key].sample_rate
            assert audio.pcm.tobytes() == expected[key].pcm.tobytes()


@pytest.mark.parametrize("text", ["", " ", "\n\t  \r\n", "\x00 \x00"])
@pytest.mark.parametrize("rate", [NATIVE_RATE, 16000])
def test_empty_text_gives_empty_audio(text: str, rate: int) -> None:
    audio = EspeakTTS(sample_rate=rate).synthesize(text)
    assert audio.pcm.dtype == np.int16
    assert audio.pcm.shape == (0,)
    assert audio.sample_rate == rate
    assert audio.duration == 0.0


def test_unusual_characters_are_spoken(engine: EspeakTTS) -> None:
    for text in ("Café crème, naïve résumé.", "hello\x00world", "a < b & c > d", "lone \ud800 surrogate"):
        audio = engine.synthesize(text)
        assert audio.duration > 0.3, text


def test_most_energy_is_in_the_speech_band(engine: EspeakTTS) -> None:
    pcm = engine.synthesize(SENTENCE).pcm.astype(np.float64)
    power = np.abs(np.fft.rfft(pcm)) ** 2
    freqs = np.fft.rfftfreq(pcm.shape[0], 1 / NATIVE_RATE)
    band = power[(freqs >= 100) & (freqs <= 4000)].sum()
    assert band / power.sum() > 0.8


def _voiced(pcm: Int16, mode: int) -> npt.NDArray[np.bool_]:
    """webrtcvad's decision for each whole 20 ms frame of 16 kHz audio."""
    vad = webrtcvad.Vad(mode)
    frames = [pcm[i : i + 320] for i in range(0, pcm.shape[0] - 319, 320)]
    return np.array([bool(vad.is_speech(f.tobytes(), 16000)) for f in frames])


@pytest.mark.parametrize("mode", [0, 3])
def test_webrtc_vad_hears_speech_and_not_silence(speech16: SpeechAudio, mode: int) -> None:
    assert speech16.sample_rate == 16000
    assert _voiced(speech16.pcm, mode).mean() > 0.8
    gap = np.zeros(16000, dtype=np.int16)  # 1 s = 50 frames
    decisions = _voiced(np.concatenate([gap, speech16.pcm, gap]), mode)
    assert not decisions[:50].any()  # silence before the speech
    assert not decisions[-25:].any()  # the last 0.5 s, after the VAD's hangover
    assert decisions[50:-50].mean() > 0.8


def test_unknown_voice_raises_tts_error() -> None:
    tts = EspeakTTS("xx-no-such-voice")  # construction stays cheap: nothing checked yet
    with pytest.raises(TTSError, match="xx-no-such-voice"):
        tts.load()
    with pytest.raises(TTSError, match="xx-no-such-voice"):
        tts.synthesize("hello")
    assert EspeakTTS().synthesize("hello").duration > 0.2  # the library is still usable


@pytest.mark.parametrize(
    "kwargs",
    [
        {"voice": ""},
        {"voice": "en\x00us"},
        {"words_per_minute": 79},
        {"words_per_minute": 451},
        {"words_per_minute": True},
        {"sample_rate": 7999},
        {"sample_rate": 48001},
        {"sample_rate": 16000.0},
    ],
)
def test_bad_arguments_are_rejected_at_construction(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        EspeakTTS(**kwargs)  # type: ignore[arg-type]


def test_non_text_is_a_type_error(engine: EspeakTTS) -> None:
    with pytest.raises(TypeError, match="bytes"):
        engine.synthesize(b"hello")  # type: ignore[arg-type]


def test_speech_audio_validates_its_fields() -> None:
    ok = SpeechAudio(np.zeros(800, dtype=np.int16), 16000)
    assert ok.duration == 0.05
    with pytest.raises(TypeError):
        SpeechAudio(np.zeros(8, dtype=np.float32), 16000)
    with pytest.raises(ValueError, match="1-D"):
        SpeechAudio(np.zeros((2, 4), dtype=np.int16), 16000)
    with pytest.raises(ValueError, match="sample_rate"):
        SpeechAudio(np.zeros(8, dtype=np.int16), 0)
