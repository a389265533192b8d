"""``say-wav`` end to end: a 44.1 kHz WAV (written with the stdlib ``wave`` module) is read,
converted to the emulator's 16 kHz, sent down the 8 kHz μ-law line and heard by the app,
whose echo agent plays it back to the caller."""

from __future__ import annotations

import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from app.config import Settings
from app.simulator.audio_prep import render_caller_audio
from app.simulator.caller import parse_script
from app.simulator.recording import CallRecording
from tests.e2e.test_emulator import simulate

WAV_RATE = 44100
FREQ = 440.0


def write_tone_wav(path: Path, seconds: float) -> None:
    n = np.arange(int(seconds * WAV_RATE))
    pcm = (10000 * np.sin(2 * np.pi * FREQ * n / WAV_RATE)).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(WAV_RATE)
        wav.writeframes(pcm.tobytes())


def peak_hz(rec: CallRecording, track: str, start: float, end: float) -> float:
    pcm = getattr(rec, track)[int(start * rec.sample_rate) : int(end * rec.sample_rate)].astype(float)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / rec.sample_rate)[int(np.argmax(spectrum))])


def level(rec: CallRecording, track: str, start: float, end: float) -> float:
    pcm = getattr(rec, track)[int(start * rec.sample_rate) : int(end * rec.sample_rate)]
    return float(np.sqrt(np.mean(pcm.astype(float) ** 2)))


async def test_a_44k_wav_is_converted_sent_and_heard(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    wav = tmp_path / "question.wav"
    write_tone_wav(wav, 0.8)
    steps = parse_script(f"say-wav {wav}\nsilence 0.5\nhangup")
    audio = render_caller_audio(steps, 16000, None)  # no TTS needed for a WAV
    assert len(audio[0]) == int(0.8 * 16000)

    rec = (await simulate(make_settings, steps, audio=audio)).rec  # echo agent; clean call
    starts = [(e.t, e.detail["text"]) for e in rec.events if e.kind == "caller_speech_start"]
    assert starts == [(0.0, "(question.wav)")]
    assert [e.t for e in rec.events if e.kind == "caller_speech_end"] == [pytest.approx(0.78)]
    assert rec.duration == pytest.approx(1.3)
    # the caller's track is the tone at the right pitch and level (10000 peak → 7071 rms)
    assert peak_hz(rec, "caller", 0.1, 0.7) == pytest.approx(FREQ, abs=3)
    assert level(rec, "caller", 0.1, 0.7) == pytest.approx(7071, rel=0.03)
    # the app heard it through the phone line: its echo comes back at the same pitch
    assert peak_hz(rec, "agent", 0.2, 0.8) == pytest.approx(FREQ, abs=3)
    assert level(rec, "agent", 0.2, 0.8) > 5000
    assert level(rec, "agent", 1.0, 1.3) < 100
