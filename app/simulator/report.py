"""Turn a ``CallRecording`` into the files ``voice-agent simulate --out DIR`` writes.

Files (all times in seconds since the dial unless a key ends in ``_ms``):

- ``call.wav``: stereo 16-bit PCM at ``recording.sample_rate``; left = caller, right = agent.
- ``events.json``: every timeline event ``{t, kind, detail}`` in time order (``t`` rounded to ms).
- ``transcript.txt`` / ``transcript.json``: one line per utterance, ``[mm:ss.mmm] Caller: …``.
- ``report.json``: the ``summarize`` dict (latencies in ms, ``ok`` = no protocol errors).
- ``timeline.png``: the call at a glance (see ``app.simulator.timeline_plot``).

Everything but the writers is pure: ``summarize`` and ``format_transcript`` only read the recording.
"""

from __future__ import annotations

import json
import wave
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from app.simulator.accuracy import word_errors, words
from app.simulator.recording import PCM, CallRecording, TimelineEvent, TranscriptLine
from app.simulator.timeline_plot import draw_timeline

__all__ = [
    "events_document",
    "format_timestamp",
    "format_transcript",
    "latency_percentiles_ms",
    "render_timeline",
    "stereo_pcm",
    "summarize",
    "transcript_document",
    "word_accuracy",
    "write_outputs",
    "write_wav",
]

FILE_NAMES = {
    "wav": "call.wav",
    "events": "events.json",
    "transcript_txt": "transcript.txt",
    "transcript_json": "transcript.json",
    "report": "report.json",
    "timeline": "timeline.png",
}
SPEAKER_LABELS = {"caller": "Caller", "agent": "Agent"}
HEARD_LABEL = "  (agent heard)"


def _ms(seconds: float) -> float:
    """Seconds → milliseconds, rounded to 0.1 ms (float noise like 640.0000000001 removed)."""
    return round(seconds * 1000.0, 1)


def _s(seconds: float) -> float:
    """Seconds rounded to the millisecond."""
    return round(float(seconds), 3)


def _jsonable(value: Any) -> Any:
    """``json.dumps`` fallback for event details: numpy scalars/arrays, tuples, sets, anything else → str."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=_jsonable) + "\n", "utf-8")


def format_timestamp(t: float) -> str:
    """Seconds → ``mm:ss.mmm`` (minutes keep counting past 59; negative times clamp to 0)."""
    total_ms = max(0, round(t * 1000.0))
    minutes, rest = divmod(total_ms, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{minutes:02d}:{seconds:02d}.{millis:03d}"


def sorted_events(recording: CallRecording) -> list[TimelineEvent]:
    """The events by time; ties keep recording order (the sort is stable)."""
    return sorted(recording.events, key=lambda e: e.t)


def sorted_transcript(recording: CallRecording) -> list[TranscriptLine]:
    """Transcript lines by start time; ties keep recording order."""
    return sorted(recording.transcript, key=lambda line: line.t)


def events_document(recording: CallRecording) -> dict[str, Any]:
    """The ``events.json`` content: call id, duration (s), end reason and the time-ordered events."""
    return {
        "call_id": recording.call_id,
        "duration_s": _s(recording.duration),
        "end_reason": recording.end_reason,
        "events": [
            {"t": _s(e.t), "kind": e.kind, "detail": dict(e.detail)} for e in sorted_events(recording)
        ],
    }


def transcript_document(recording: CallRecording) -> dict[str, Any]:
    """The ``transcript.json`` content: the lines of ``format_transcript`` as objects (``t`` in s);
    ``heard``: the caller's speech as the agent's speech-to-text heard it (in-process calls)."""

    def doc(line: TranscriptLine) -> dict[str, Any]:
        return {
            "t": _s(line.t),
            "timestamp": format_timestamp(line.t),
            "speaker": line.speaker,
            "text": line.text,
            "interrupted": line.interrupted,
        }

    return {
        "call_id": recording.call_id,
        "lines": [doc(line) for line in sorted_transcript(recording)],
        "heard": [doc(line) for line in sorted(recording.heard, key=lambda line: line.t)],
    }


def format_transcript(recording: CallRecording) -> str:
    """One line per utterance, ``[mm:ss.mmm] Caller: text`` / ``Agent: text [interrupted]``, in time
    order; what the agent's speech-to-text heard of the caller is interleaved as ``(agent heard)``."""
    # at one instant: what the caller said, then what the agent heard of it, then its reply
    entries = [(line.t, 2 if line.speaker == "agent" else 0, line) for line in recording.transcript]
    entries += [(line.t, 1, line) for line in recording.heard]
    lines = []
    for _, rank, line in sorted(entries, key=lambda e: (e[0], e[1])):
        heard = rank == 1
        mark = " [interrupted]" if line.interrupted else ""
        label = HEARD_LABEL if heard else SPEAKER_LABELS[line.speaker]
        lines.append(f"[{format_timestamp(line.t)}] {label}: {line.text}{mark}")
    return "".join(f"{text}\n" for text in lines)


def word_accuracy(recording: CallRecording) -> dict[str, Any] | None:
    """How well the agent heard the caller: the words of every scripted caller line against
    everything the agent's speech-to-text heard, as one Levenshtein alignment (turns may merge or
    split, so lines are not paired). ``None`` when the agent's side is unknown (a remote service)
    or a caller line came from a WAV file (its words are not known)."""
    said = [line.text for line in sorted_transcript(recording) if line.speaker == "caller"]
    if not recording.heard or any(text.startswith("(") and text.endswith(")") for text in said):
        return None
    reference = " ".join(said)
    hypothesis = " ".join(line.text for line in sorted(recording.heard, key=lambda line: line.t))
    total = len(words(reference))
    errors = word_errors(reference, hypothesis)
    return {
        "words": total,
        "errors": errors,
        "word_error_rate": round(errors / total, 4) if total else 0.0,
        "accuracy": round(max(0.0, 1 - errors / total), 4) if total else 1.0,
    }


def latency_percentiles_ms(latencies_s: list[float]) -> tuple[float | None, float | None]:
    """(p50, p95) in ms of latencies given in seconds; linear interpolation between order statistics
    (numpy's default, so p50 of two values is their mean). ``(None, None)`` when there are none."""
    if not latencies_s:
        return None, None
    p50, p95 = np.percentile(np.asarray(latencies_s, dtype=np.float64), [50.0, 95.0])
    return _ms(float(p50)), _ms(float(p95))


def summarize(recording: CallRecording) -> dict[str, Any]:
    """The ``report.json`` content.

    Times (``duration_s``, ``caller_end_s``, ``agent_start_s``, ``t``) are seconds since the dial,
    rounded to the ms; latencies are milliseconds. ``ok`` is true iff there are no protocol errors.
    """
    turns = sorted(recording.turns, key=lambda turn: turn.turn)
    p50, p95 = latency_percentiles_ms([turn.latency for turn in turns])
    sent = [str(e.detail.get("name", "")) for e in recording.events_of("checkpoint")]
    acked = [str(e.detail.get("name", "")) for e in recording.events_of("played_stream")]
    unacked = Counter(sent) - Counter(acked)
    errors = sorted(recording.protocol_errors, key=lambda error: error.t)
    return {
        "call_id": recording.call_id,
        "ok": not errors,
        "duration_s": _s(recording.duration),
        "end_reason": recording.end_reason,
        "turns": len(turns),
        "latencies": [
            {
                "turn": turn.turn,
                "caller_end_s": _s(turn.caller_end),
                "agent_start_s": _s(turn.agent_start),
                "latency_ms": _ms(turn.latency),
            }
            for turn in turns
        ],
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
        "barge_ins": len(recording.events_of("barge_in")),
        "checkpoints_sent": len(sent),
        "checkpoints_acknowledged": len(acked),
        # voided by clearAudio, or still queued at hang-up; in the order they were sent
        "checkpoints_unacknowledged": [name for name in dict.fromkeys(sent) if unacked[name] > 0],
        "clear_audio": len(recording.events_of("clear_audio")),
        "word_accuracy": word_accuracy(recording),
        "protocol_errors": [
            {"t": _s(error.t), "rule": error.rule, "detail": error.detail} for error in errors
        ],
    }


def _mono_int16(track: PCM, name: str) -> PCM:
    array = np.asarray(track)
    if array.dtype != np.int16 or array.ndim != 1:
        raise TypeError(f"{name} track must be mono int16, got {array.dtype} with shape {array.shape}")
    return array


def stereo_pcm(recording: CallRecording) -> PCM:
    """Interleaved little-endian int16 frames ``[L0, R0, L1, R1, …]``: left = caller, right = agent.

    The shorter track is padded with silence at the end (both already start at the dial).
    """
    caller = _mono_int16(recording.caller, "caller")
    agent = _mono_int16(recording.agent, "agent")
    frames = max(caller.size, agent.size)
    interleaved = np.zeros(2 * frames, dtype="<i2")
    interleaved[0 : 2 * caller.size : 2] = caller
    interleaved[1 : 2 * agent.size : 2] = agent
    return interleaved


def write_wav(recording: CallRecording, path: Path) -> Path:
    """Write ``call.wav``: 2 channels, 16-bit, ``recording.sample_rate`` Hz."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(recording.sample_rate)
        out.writeframes(stereo_pcm(recording).tobytes())
    return path


def render_timeline(recording: CallRecording, path: Path) -> Path:
    """Write ``timeline.png`` (1400×500 px: 14×5 in at 100 dpi) for the recording."""
    draw_timeline(recording, path, summarize(recording))
    return path


def write_outputs(recording: CallRecording, out_dir: Path) -> dict[str, Path]:
    """Write every output file into ``out_dir`` (created if missing); returns name → path.

    Names: ``wav``, ``events``, ``transcript_txt``, ``transcript_json``, ``report``, ``timeline``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / file_name for name, file_name in FILE_NAMES.items()}
    write_wav(recording, paths["wav"])
    _write_json(paths["events"], events_document(recording))
    paths["transcript_txt"].write_text(format_transcript(recording), "utf-8")
    _write_json(paths["transcript_json"], transcript_document(recording))
    summary = summarize(recording)
    _write_json(paths["report"], summary)
    draw_timeline(recording, paths["timeline"], summary)
    return paths
