"""The call recording's writer and recorder: placement on the call's clock, the cut at a
``clearAudio``, a readable file after a crash, bounded memory over an hour, retention."""

from __future__ import annotations

import io
import os
import time
import tracemalloc
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from agents.catalog import ALL_TOOLS
from agents.personas import load_personas
from app.audio.codec import encode
from app.audio.formats import AudioFormat
from app.audio.wav_stream import HEADER_BYTES, StereoWavWriter, existing_frames
from app.clock import FakeClock
from app.config import Settings
from app.pipeline.call_recording import CallAudioRecorder, open_recording, recording_name
from app.pipeline.factory import conversation_config
from app.recordings import recording_on, snapshot, sweep

MULAW = AudioFormat("mulaw", 8000)
L16_16K = AudioFormat("l16", 16000)
FRAME = 160  # 20 ms at 8 kHz


class NullFile(io.RawIOBase):
    """A seekable sink that keeps only its size (an hour of audio, no disk, no memory)."""

    def __init__(self) -> None:
        self.size = 0
        self.pos = 0

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        n = memoryview(data).nbytes  # type: ignore[arg-type]
        self.pos += n
        self.size = max(self.size, self.pos)
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.size + offset
        return self.pos

    def truncate(self, size: int | None = None) -> int:
        self.size = self.pos if size is None else size
        return self.size


def tone(n: int, value: int) -> bytes:
    return encode(np.full(n, value, np.int16), MULAW)


def read(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (2, 2)
        data = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
        return wav.getframerate(), data


def test_both_channels_land_on_the_clock_and_the_right_is_cut_at_the_clear(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = open_recording(tmp_path, "CA-1", clock, MULAW, MULAW)
    assert rec.name == "CA-1.wav"
    # 1 s of caller frames; the agent sends 10 frames (200 ms) ahead at 0.2 s; a clear at 0.3 s
    for i in range(50):
        clock._now = i * 0.02
        rec.caller(tone(FRAME, 1000))
        if i == 10:
            for _ in range(10):
                rec.agent(tone(FRAME, 2000))
        if i == 15:
            rec.cut()
    rec.close().result()
    rate, data = read(tmp_path / "CA-1.wav")
    assert rate == 8000
    left, right = data[:, 0], data[:, 1]
    assert len(data) == 50 * FRAME
    assert np.all(np.abs(left - 1000) < 40)  # μ-law's step near 1000
    heard = np.flatnonzero(right)
    assert heard[0] == 10 * FRAME  # it plays from when it was sent
    assert heard[-1] == 15 * FRAME - 1  # ... up to the clear, not a sample after
    assert len(heard) == 5 * FRAME


def test_a_frame_playing_at_the_clear_is_cut_inside_it(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = open_recording(tmp_path, "CA-2", clock, MULAW, MULAW)
    rec.caller(tone(FRAME, 0))
    rec.agent(tone(3 * FRAME, 2000))  # one 60 ms playAudio
    clock._now = 0.03  # 240 samples in
    rec.cut()
    clock._now = 0.1
    rec.agent(tone(FRAME, 3000))  # the next reply, after the clear
    clock._now = 0.2
    rec.close().result()
    _, data = read(tmp_path / "CA-2.wav")
    right = data[:, 1]
    assert np.flatnonzero((right > 1500) & (right < 2500)).tolist() == list(range(240))
    assert np.flatnonzero(right > 2500).tolist() == list(range(800, 960))


def test_end_of_call_leaves_out_what_was_still_queued(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = open_recording(tmp_path, "CA-3", clock, MULAW, MULAW)
    rec.agent(tone(25 * FRAME, 2000))  # 0.5 s sent at once
    clock._now = 0.2
    rec.close().result()  # the caller hung up 0.2 s in
    _, data = read(tmp_path / "CA-3.wav")
    assert len(data) == 1600
    assert np.all(data[:, 1] != 0)


def test_a_gap_in_the_callers_stream_is_silence_not_a_drift(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = open_recording(tmp_path, "CA-4", clock, MULAW, MULAW)
    rec.caller(tone(FRAME, 1000))
    clock._now = 1.0  # no frames for a second
    rec.caller(tone(FRAME, 1000))
    rec.close().result()
    _, data = read(tmp_path / "CA-4.wav")
    voiced = np.flatnonzero(data[:, 0])
    assert voiced[:FRAME].tolist() == list(range(FRAME))
    assert voiced[FRAME] == 8000 - FRAME  # the second frame ended at the clock's 1.0 s


def test_a_different_playback_rate_is_resampled_to_the_line_rate(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = open_recording(tmp_path, "CA-5", clock, MULAW, L16_16K)
    for i in range(10):
        clock._now = i * 0.02
        rec.caller(tone(FRAME, 0))
        rec.agent(encode(np.full(320, 2000, np.int16), L16_16K))
    rec.close().result()
    rate, data = read(tmp_path / "CA-5.wav")
    assert rate == 8000
    assert len(data) == 10 * FRAME
    assert np.median(data[FRAME:, 1]) == pytest.approx(2000, abs=20)


def test_the_file_is_a_valid_wav_while_written_and_after_a_crash(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "CA-6.wav"
    with path.open("w+b") as file:  # the recorder is never closed: the process "died"
        rec = CallAudioRecorder(file, clock, MULAW, MULAW)
        for i in range(100):
            clock._now = i * 0.02
            rec.caller(tone(FRAME, 1000))
        rate, data = read(path)  # read while it is open, as a crash leaves it
    assert rate == 8000
    assert 1.0 <= len(data) / 8000 <= 2.0  # all but the last half second or so
    assert np.all(data[:, 0] != 0)
    # a new socket of the same call continues the file after what it holds
    with (tmp_path / "CA-6.wav").open("r+b") as f:
        before = existing_frames(f, 8000)
    again = open_recording(tmp_path, "CA-6", clock, MULAW, MULAW)
    again.caller(tone(FRAME, 500))
    again.close().result()
    _, after = read(tmp_path / "CA-6.wav")
    assert before is not None
    assert len(after) == before + FRAME


def test_an_hour_of_frames_holds_a_fixed_window_in_memory() -> None:
    sink = NullFile()
    clock = FakeClock()
    rec = CallAudioRecorder(sink, clock, MULAW, MULAW)  # type: ignore[arg-type]
    caller, agent = tone(FRAME, 1000), tone(FRAME, 2000)
    window = rec.writer.buffered_bytes
    frames = 3600 * 50
    traced = range(5 * 3000, 10 * 3000)  # minutes 5 to 10 under tracemalloc (it is slow)
    grown = peak = -1
    try:
        for i in range(frames):
            clock._now = i * 0.02
            if i == traced.start:
                tracemalloc.start()
                base = tracemalloc.get_traced_memory()[0]
            rec.caller(caller)
            if i % 500 < 400:  # the agent talks 8 s in 10, sent 8 frames ahead (the playout's lead)
                for _ in range(8 if i % 500 == 0 else 1):
                    rec.agent(agent)
            elif i % 500 == 400:
                rec.cut()  # and is interrupted
            if i == traced.stop:
                grown, peak = (m - base for m in tracemalloc.get_traced_memory())
                tracemalloc.stop()
            if i % 30000 == 0:
                assert rec.writer.buffered_bytes == window
    finally:
        tracemalloc.stop()
    assert rec.writer.buffered_bytes == window  # 4 s of stereo int16 at 8 kHz: 128 KB
    assert 0 <= grown < 64 * 1024  # five minutes streamed through (9.6 MB of audio); none kept
    assert peak < 256 * 1024
    assert rec.writer.written >= (frames - 50) * FRAME  # it went to the file as it came
    rec.close().result()
    assert sink.size == HEADER_BYTES + frames * FRAME * 4


def test_the_writer_keeps_only_its_window_and_drops_late_samples() -> None:
    sink = NullFile()
    writer = StereoWavWriter(sink, 8000, window_s=1.0, flush_s=0.5)  # type: ignore[arg-type]
    writer.put(1, 20_000, np.ones(100, np.int16))  # far ahead: the window moves, writing silence
    assert writer.written == 20_100 - 8000
    writer.put(0, 0, np.ones(100, np.int16))  # already on disk: dropped
    assert writer.late_samples == 100
    writer.close().result()
    assert sink.size == HEADER_BYTES + 20_100 * 4


@pytest.mark.parametrize("call_id", ["../x", "..", ".hidden", "a/b", "a\\b", "", "x" * 200, "a..b"])
def test_a_call_id_that_is_not_a_plain_name_names_no_file(call_id: str) -> None:
    with pytest.raises(ValueError, match="not a safe file name"):
        recording_name(call_id)


def test_retention_deletes_old_recordings_only(tmp_path: Path) -> None:
    old, new, other = tmp_path / "old.wav", tmp_path / "new.wav", tmp_path / "notes.txt"
    for path in (old, new, other):
        path.write_bytes(b"x")
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old, (ten_days_ago, ten_days_ago))
    os.utime(other, (ten_days_ago, ten_days_ago))
    assert sweep(tmp_path, 0) == 0  # 0: keep all
    assert sweep(tmp_path, 30) == 0
    assert sweep(tmp_path, 7) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.wav", "notes.txt"]
    assert sweep(tmp_path / "missing", 7) == 0


async def test_a_live_or_crashed_file_is_served_as_far_as_it_was_written(tmp_path: Path) -> None:
    path = tmp_path / "CA-7.wav"
    clock = FakeClock()
    with path.open("w+b") as file:
        rec = CallAudioRecorder(file, clock, MULAW, MULAW)
        for i in range(60):
            clock._now = i * 0.02
            rec.caller(tone(FRAME, 1000))
        file.write(b"half a write")  # a write cut short: past the header's count
        file.flush()
        found = snapshot(path)
        assert found is not None
        served = b"".join([chunk async for chunk in found.chunks()])
    assert len(served) == found.size == HEADER_BYTES + rec.writer.written * 4
    with wave.open(io.BytesIO(served)) as wav:
        assert wav.getnframes() == rec.writer.written > 0
    (tmp_path / "not.wav").write_bytes(b"RIFF")
    assert snapshot(tmp_path / "not.wav") is None


PERSONA = """---
display_name: Test Line
greeting: Hello there.
recording_disclosure: This call may be recorded.
{extra}
---
You answer the phone.
"""


@pytest.mark.parametrize(
    ("setting", "own", "on"),
    [(False, "", False), (True, "", True), (True, "recording: off", False), (False, "recording: on", True)],
)
def test_the_persona_decides_before_the_setting_and_the_disclosure_goes_first(
    tmp_path: Path, make_settings: Callable[..., Settings], setting: bool, own: str, on: bool
) -> None:
    (tmp_path / "line.md").write_text(PERSONA.format(extra=own))
    persona = load_personas(tmp_path, frozenset(ALL_TOOLS))["line"]
    assert recording_on(make_settings(recording=setting), persona) is on
    config = conversation_config(persona, recording=on)
    expected = "This call may be recorded. Hello there." if on else "Hello there."
    assert config.greeting == expected
    assert config.policy.greeting_interruptible is not on  # a disclosure is heard whole
