"""report.write_outputs: the WAV, JSON, transcript and timeline PNG of a synthetic call."""

from __future__ import annotations

import json
import struct
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

from app.simulator.recording import (
    PCM,
    CallRecording,
    EventKind,
    ProtocolViolation,
    TimelineEvent,
    TranscriptLine,
    TurnLatency,
)
from app.simulator.report import (
    format_timestamp,
    format_transcript,
    render_timeline,
    summarize,
    transcript_document,
    write_outputs,
)
from app.simulator.timeline_plot import ENVELOPE_BINS, envelope, spans

RATE = 16000
PNG_SIZE = (1400, 500)  # width, height in px: 14×5 in at 100 dpi


def _speech(track: PCM, t0: float, t1: float, freq: float, seed: int) -> None:
    """Add a speech-like burst (a tone with a syllable-rate envelope, plus noise) over [t0, t1) s."""
    i0, i1 = round(t0 * RATE), round(t1 * RATE)
    t = np.arange(i1 - i0) / RATE
    syllables = 0.55 + 0.45 * np.abs(np.sin(2 * np.pi * 3.0 * t))
    noise = np.random.default_rng(seed).normal(0, 0.05, t.size)
    burst = 9000 * syllables * (np.sin(2 * np.pi * freq * t) + noise)
    track[i0:i1] = np.clip(track[i0:i1] + burst, -32768, 32767).astype(np.int16)


def _event(t: float, kind: EventKind, **detail: Any) -> TimelineEvent:
    return TimelineEvent(t, kind, dict(detail))


def build_recording(*, with_error: bool = True) -> CallRecording:
    """Two caller utterances, two agent replies (the first cut by a barge-in + clearAudio),
    three checkpoints (two acked), optionally one protocol error; agent track shorter than caller's."""
    caller = np.zeros(round(9.2 * RATE), np.int16)
    agent = np.zeros(round(8.5 * RATE), np.int16)
    _speech(caller, 0.5, 2.0, 220.0, 1)
    _speech(caller, 4.8, 6.0, 250.0, 2)
    _speech(agent, 2.64, 4.92, 440.0, 3)
    _speech(agent, 6.9, 8.5, 470.0, 4)
    events = [  # deliberately not in time order: the report must sort them
        _event(0.0, "call_started"),
        _event(0.05, "socket_open"),
        _event(0.5, "caller_speech_start", text="Hi, I'd like to book a table for four tonight"),
        _event(2.0, "caller_speech_end"),
        _event(2.6, "checkpoint", name="reply-1"),
        _event(2.64, "agent_audio_start"),
        _event(2.62, "checkpoint", name="reply-1a"),
        _event(3.1, "played_stream", name="reply-1a"),
        _event(4.8, "caller_speech_start", text="Actually, make it eight"),
        _event(4.8, "barge_in"),
        _event(4.9, "clear_audio", dropped_s=np.float64(0.6)),
        _event(4.92, "cleared_audio"),
        _event(4.92, "agent_audio_end"),
        _event(6.0, "caller_speech_end"),
        _event(6.9, "agent_audio_start"),
        _event(6.95, "checkpoint", name="reply-2"),
        _event(8.5, "agent_audio_end"),
        _event(8.5, "played_stream", name="reply-2"),
        _event(9.0, "hangup", by="caller"),
        _event(9.05, "status_callback", event="Hangup"),
    ]
    errors = [ProtocolViolation(7.5, "playaudio-format-mismatch", "sent audio/x-mulaw;rate=8000 on L16")]
    if with_error:
        events.append(_event(7.5, "protocol_error", rule=errors[0].rule, detail=errors[0].detail))
    return CallRecording(
        call_id="sim-0001",
        sample_rate=RATE,
        caller=caller,
        agent=agent,
        events=events,
        transcript=[
            TranscriptLine(0.5, "caller", "Hi, I'd like to book a table for four tonight"),
            TranscriptLine(2.64, "agent", "Sure! For four people at what time?", interrupted=True),
            TranscriptLine(4.8, "caller", "Actually, make it eight"),
            TranscriptLine(6.9, "agent", "Eight people, got it."),
        ],
        turns=[TurnLatency(1, 2.0, 2.64), TurnLatency(2, 6.0, 6.9)],
        protocol_errors=errors if with_error else [],
        duration=9.2,
        end_reason="caller-hangup",
    )


def build_long_recording(minutes: float = 3.0) -> CallRecording:
    """A ``minutes``-long call: a turn every ~7 s, a barge-in every fifth turn, a few protocol errors."""
    duration = minutes * 60
    caller = np.zeros(round(duration * RATE), np.int16)
    agent = np.zeros_like(caller)
    rec = CallRecording(call_id="sim-long", sample_rate=RATE, caller=caller, agent=agent, duration=duration)
    rng = np.random.default_rng(7)
    t, turn = 1.0, 0
    while t + 7 < duration - 2:
        turn += 1
        said, latency, reply = rng.uniform(1.0, 2.5), rng.uniform(0.4, 2.4), rng.uniform(1.5, 3.5)
        caller_end, agent_start = t + said, t + said + latency
        _speech(caller, t, caller_end, 230.0, turn)
        text = f"Caller utterance number {turn} with several words in it"
        rec.events += [_event(t, "caller_speech_start", text=text), _event(caller_end, "caller_speech_end")]
        rec.transcript.append(TranscriptLine(t, "caller", text))
        rec.turns.append(TurnLatency(turn, caller_end, agent_start))
        cut = turn % 5 == 0
        agent_end = agent_start + (reply / 2 if cut else reply)
        _speech(agent, agent_start, agent_end, 450.0, 100 + turn)
        rec.events += [
            _event(agent_start, "agent_audio_start"),
            _event(agent_start + 0.02, "checkpoint", name=f"r{turn}"),
            _event(agent_end, "agent_audio_end"),
        ]
        rec.transcript.append(TranscriptLine(agent_start, "agent", f"Agent reply {turn}", interrupted=cut))
        if cut:
            _speech(caller, agent_end - 0.1, agent_end + 0.9, 260.0, 200 + turn)
            rec.events += [
                _event(agent_end - 0.1, "barge_in"),
                _event(agent_end, "clear_audio", dropped_s=1.0),
            ]
        else:
            rec.events.append(_event(agent_end, "played_stream", name=f"r{turn}"))
        if turn % 8 == 0:
            rec.protocol_errors.append(ProtocolViolation(agent_start + 0.5, "checkpoint-name-reused", "r"))
        t = agent_end + rng.uniform(0.5, 2.0)
    rec.events.append(_event(duration - 0.5, "hangup", by="app"))
    rec.end_reason = "app-hangup"
    return rec


def _read_wav(path: Path) -> tuple[wave._wave_params, PCM]:
    with wave.open(str(path), "rb") as wav:
        params = wav.getparams()
        frames = np.frombuffer(wav.readframes(params.nframes), dtype="<i2")
    return params, frames.reshape(-1, params.nchannels)


def _assert_png(path: Path) -> None:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert header[12:16] == b"IHDR"
    assert struct.unpack(">II", header[16:24]) == PNG_SIZE
    pixels = imread(path)
    assert pixels.shape[:2] == (PNG_SIZE[1], PNG_SIZE[0])
    assert float(pixels[..., :3].var()) > 0.001


def test_write_outputs_returns_every_file(tmp_path: Path) -> None:
    paths = write_outputs(build_recording(), tmp_path / "out")
    assert {name: p.name for name, p in paths.items()} == {
        "wav": "call.wav",
        "events": "events.json",
        "transcript_txt": "transcript.txt",
        "transcript_json": "transcript.json",
        "report": "report.json",
        "timeline": "timeline.png",
    }
    assert all(p.is_file() and p.parent == tmp_path / "out" for p in paths.values())


def test_wav_is_stereo_caller_left_agent_right(tmp_path: Path) -> None:
    rec = build_recording()
    params, frames = _read_wav(write_outputs(rec, tmp_path)["wav"])
    assert (params.nchannels, params.sampwidth, params.framerate) == (2, 2, RATE)
    assert params.nframes == rec.caller.size > rec.agent.size
    np.testing.assert_array_equal(frames[:, 0], rec.caller)
    np.testing.assert_array_equal(frames[: rec.agent.size, 1], rec.agent)
    assert not frames[rec.agent.size :, 1].any()  # the shorter agent track is padded with silence


def test_wav_pads_a_shorter_caller_track(tmp_path: Path) -> None:
    rec = build_recording()
    rec.caller = rec.caller[:RATE]
    _, frames = _read_wav(write_outputs(rec, tmp_path)["wav"])
    np.testing.assert_array_equal(frames[:, 1], rec.agent)
    np.testing.assert_array_equal(frames[:RATE, 0], rec.caller)
    assert not frames[RATE:, 0].any()


def test_wav_rejects_a_float_track(tmp_path: Path) -> None:
    rec = build_recording()
    rec.agent = np.zeros(10, np.float32)
    with pytest.raises(TypeError, match="agent track must be mono int16"):
        write_outputs(rec, tmp_path)


def test_events_json_is_time_ordered_and_complete(tmp_path: Path) -> None:
    rec = build_recording()
    doc = json.loads(write_outputs(rec, tmp_path)["events"].read_text("utf-8"))
    assert (doc["call_id"], doc["duration_s"], doc["end_reason"]) == ("sim-0001", 9.2, "caller-hangup")
    events = doc["events"]
    assert len(events) == len(rec.events)
    times = [e["t"] for e in events]
    assert times == sorted(times)
    assert sorted((e["t"], e["kind"]) for e in events) == sorted((round(e.t, 3), e.kind) for e in rec.events)
    assert events[0] == {"t": 0.0, "kind": "call_started", "detail": {}}
    assert {"t": 4.9, "kind": "clear_audio", "detail": {"dropped_s": 0.6}} in events  # numpy float → JSON
    assert [e["kind"] for e in events if e["t"] == 4.8] == ["caller_speech_start", "barge_in"]  # stable
    assert events[-1] == {"t": 9.05, "kind": "status_callback", "detail": {"event": "Hangup"}}


def test_transcript_lines_and_interrupted_marks(tmp_path: Path) -> None:
    rec = build_recording()
    rec.transcript.reverse()  # out of order on purpose
    paths = write_outputs(rec, tmp_path)
    expected = [
        "[00:00.500] Caller: Hi, I'd like to book a table for four tonight",
        "[00:02.640] Agent: Sure! For four people at what time? [interrupted]",
        "[00:04.800] Caller: Actually, make it eight",
        "[00:06.900] Agent: Eight people, got it.",
    ]
    assert paths["transcript_txt"].read_text("utf-8") == "\n".join(expected) + "\n"
    assert format_transcript(rec).splitlines() == expected
    doc = json.loads(paths["transcript_json"].read_text("utf-8"))
    assert doc["call_id"] == "sim-0001"
    assert doc["lines"][1] == {
        "t": 2.64,
        "timestamp": "00:02.640",
        "speaker": "agent",
        "text": "Sure! For four people at what time?",
        "interrupted": True,
    }
    assert [line["interrupted"] for line in doc["lines"]] == [False, True, False, False]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "00:00.000"),
        (0.0004, "00:00.000"),
        (59.9996, "01:00.000"),
        (75.5, "01:15.500"),
        (3725.25, "62:05.250"),
    ],
)
def test_timestamp_format(seconds: float, shown: str) -> None:
    assert format_timestamp(seconds) == shown


def test_report_json_summary(tmp_path: Path) -> None:
    report = json.loads(write_outputs(build_recording(), tmp_path)["report"].read_text("utf-8"))
    assert report == {
        "call_id": "sim-0001",
        "ok": False,
        "duration_s": 9.2,
        "end_reason": "caller-hangup",
        "turns": 2,
        "latencies": [
            {"turn": 1, "caller_end_s": 2.0, "agent_start_s": 2.64, "latency_ms": 640.0},
            {"turn": 2, "caller_end_s": 6.0, "agent_start_s": 6.9, "latency_ms": 900.0},
        ],
        "latency_p50_ms": 770.0,  # linear interpolation: the mean of two
        "latency_p95_ms": 887.0,  # 640 + 0.95 × 260
        "barge_ins": 1,
        "checkpoints_sent": 3,
        "checkpoints_acknowledged": 2,
        "checkpoints_unacknowledged": ["reply-1"],
        "clear_audio": 1,
        "word_accuracy": None,  # the agent's side is unknown
        "protocol_errors": [
            {"t": 7.5, "rule": "playaudio-format-mismatch", "detail": "sent audio/x-mulaw;rate=8000 on L16"}
        ],
    }


def test_clean_recording_is_ok() -> None:
    report = summarize(build_recording(with_error=False))
    assert report["ok"] is True
    assert report["protocol_errors"] == []


def test_percentiles_of_one_and_many_turns() -> None:
    rec = build_recording()
    rec.turns = [TurnLatency(1, 1.0, 1.5)]
    assert (summarize(rec)["latency_p50_ms"], summarize(rec)["latency_p95_ms"]) == (500.0, 500.0)
    rec.turns = [TurnLatency(i + 1, 10.0 * i, 10.0 * i + 0.1 * (i + 1)) for i in range(20)]  # 100…2000 ms
    report = summarize(rec)
    assert report["latency_p50_ms"] == 1050.0
    assert report["latency_p95_ms"] == 1905.0


def test_no_turns_no_percentiles(tmp_path: Path) -> None:
    rec = CallRecording(call_id="empty", end_reason="no-answer")
    paths = write_outputs(rec, tmp_path)
    report = json.loads(paths["report"].read_text("utf-8"))
    assert report["turns"] == 0
    assert report["latency_p50_ms"] is None
    assert report["latency_p95_ms"] is None
    assert report["ok"] is True
    assert paths["transcript_txt"].read_text("utf-8") == ""
    _, frames = _read_wav(paths["wav"])
    assert frames.shape == (0, 2)
    _assert_png(paths["timeline"])


def test_timeline_png_is_a_non_blank_image_of_the_right_size(tmp_path: Path) -> None:
    _assert_png(write_outputs(build_recording(), tmp_path)["timeline"])


def test_timeline_survives_awkward_text(tmp_path: Path) -> None:
    rec = build_recording()
    rec.events[2] = _event(0.5, "caller_speech_start", text="costs $5 and $6 \\frac{1 😀 你好")
    rec.call_id = "call_$x$"
    _assert_png(render_timeline(rec, tmp_path / "t.png"))


def test_three_minute_call_renders_with_bounded_work(tmp_path: Path) -> None:
    """What keeps a long call cheap to draw is that each waveform becomes at most ENVELOPE_BINS
    points, however long the call (no timed assertion: a loaded machine would fail it)."""
    rec = build_long_recording(3.0)
    for track in (rec.caller, rec.agent):
        times, level = envelope(track, rec.sample_rate)
        assert 0 < times.size == level.size <= ENVELOPE_BINS
        assert times[-1] <= track.size / rec.sample_rate
    _assert_png(render_timeline(rec, tmp_path / "long.png"))


def test_spans_pair_start_and_end_events() -> None:
    rec = build_recording()
    caller = spans(rec, "caller_speech_start", "caller_speech_end", 9.2)
    assert [(t0, t1) for t0, t1, _ in caller] == [(0.5, 2.0), (4.8, 6.0)]
    assert caller[1][2] == {"text": "Actually, make it eight"}
    agent = spans(rec, "agent_audio_start", "agent_audio_end", 9.2)
    assert [(t0, t1) for t0, t1, _ in agent] == [(2.64, 4.92), (6.9, 8.5)]
    rec.events += [_event(8.7, "agent_audio_start"), _event(8.8, "agent_audio_start")]  # never closed
    assert [(t0, t1) for t0, t1, _ in spans(rec, "agent_audio_start", "agent_audio_end", 9.2)][-1] == (
        8.7,
        9.2,
    )


def test_envelope_is_a_normalised_peak_per_bin() -> None:
    track = np.zeros(RATE, np.int16)
    track[RATE // 2 : RATE // 2 + 10] = -32768  # the most negative sample must not overflow
    times, level = envelope(track, RATE, bins=100)
    assert times.size == level.size == 100
    assert times[0] == pytest.approx(0.005)
    assert level.max() == 1.0
    assert level[50] == 1.0
    assert level[:50].max() == 0.0
    quiet = np.full(RATE, 30, np.int16)  # ≈ −61 dBFS: stays near zero, not scaled up to full height
    assert envelope(quiet, RATE, bins=10)[1].max() < 0.1
    assert envelope(np.zeros(0, np.int16), RATE)[0].size == 0


def test_heard_lines_are_interleaved_and_word_accuracy_reported() -> None:
    rec = build_recording(with_error=False)
    rec.heard = [
        TranscriptLine(2.1, "caller", "Hi I'd like to book a table for four tonight."),
        TranscriptLine(6.1, "caller", "Actually make it late"),  # one word wrong
    ]
    lines = format_transcript(rec).splitlines()
    assert lines[:2] == [
        "[00:00.500] Caller: Hi, I'd like to book a table for four tonight",
        "[00:02.100]   (agent heard): Hi I'd like to book a table for four tonight.",
    ]
    assert lines[4] == "[00:06.100]   (agent heard): Actually make it late"
    # 14 words said, one substituted: punctuation and case do not count
    assert summarize(rec)["word_accuracy"] == {
        "words": 14,
        "errors": 1,
        "word_error_rate": round(1 / 14, 4),
        "accuracy": round(13 / 14, 4),
    }
    assert transcript_document(rec)["heard"][1]["text"] == "Actually make it late"


def test_no_word_accuracy_when_a_caller_line_came_from_a_wav_file() -> None:
    rec = build_recording(with_error=False)
    rec.transcript[2] = TranscriptLine(4.8, "caller", "(question.wav)")
    rec.heard = [TranscriptLine(2.1, "caller", "Hi")]
    assert summarize(rec)["word_accuracy"] is None
