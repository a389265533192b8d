"""Per-frame cost of recording a call: the recorder's work for one 20 ms frame each way.

Run ``python -m bench.recording`` (``--seconds N``, ``--json PATH``). A call of ``--seconds``
(default 600) on a μ-law line is fed through ``CallAudioRecorder`` into a real file in a
temporary folder: every 20 ms one inbound frame (``caller``) and one outbound frame
(``agent``, the agent talking all the time: the worst case), with a ``cut`` every 10 s. Each
call is timed with ``time.perf_counter_ns`` after a 1 s warm-up, GC off; the figures are per
frame, in microseconds, and include the file writes (one every 0.5 s of audio, amortised into
the frame that makes them, so they show in the max and p99.9), run twice: with the writes on
the service's background thread (what a call costs its event loop) and inline (what the write
itself costs). Against a target of 20 µs per
frame each way (0.1 % of a core per call at 50 frames a second).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.audio.codec import encode
from app.audio.formats import AudioFormat
from app.audio.wav_stream import INLINE, FileWrites
from app.clock import FakeClock
from app.pipeline.call_recording import background_writes, open_recording

MULAW = AudioFormat("mulaw", 8000)
TARGET_US = 20.0
WARMUP_FRAMES = 50


def _stats(ns: list[int]) -> dict[str, float]:
    us = sorted(n / 1000 for n in ns)
    return {
        "median_us": round(statistics.median(us), 2),
        "mean_us": round(statistics.fmean(us), 2),
        "p99_us": round(us[int(len(us) * 0.99)], 2),
        "p999_us": round(us[int(len(us) * 0.999)], 2),
        "max_us": round(us[-1], 2),
    }


def run(seconds: float, writes: FileWrites) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    caller = encode(rng.integers(-3000, 3000, 160).astype(np.int16), MULAW)
    agent = encode(rng.integers(-3000, 3000, 160).astype(np.int16), MULAW)
    frames = int(seconds * 50)
    clock = FakeClock()
    took_in: list[int] = []
    took_out: list[int] = []
    with tempfile.TemporaryDirectory() as folder:
        rec = open_recording(Path(folder), "CA-bench", clock, MULAW, MULAW, writes=writes)
        now = time.perf_counter_ns
        gc_was = gc.isenabled()
        gc.disable()
        try:
            for i in range(frames + WARMUP_FRAMES):
                clock._now = i * 0.02
                t0 = now()
                rec.caller(caller)
                t1 = now()
                rec.agent(agent)
                t2 = now()
                if i % 500 == 499:
                    rec.cut()
                rec.writer.wait()  # untimed: the disk keeps up with a real call's pace
                if i >= WARMUP_FRAMES:
                    took_in.append(t1 - t0)
                    took_out.append(t2 - t1)
        finally:
            if gc_was:
                gc.enable()
        count = rec.writer.writes
        rec.close().result()
        size = (Path(folder) / "CA-bench.wav").stat().st_size
    return {
        "seconds": seconds,
        "frames": frames,
        "caller_frame": _stats(took_in),
        "agent_frame": _stats(took_out),
        "file_writes": count,
        "file_bytes": size,
        "target_us": TARGET_US,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="length of the call fed through")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results = {}
    modes: list[tuple[str, FileWrites]] = [("background", background_writes()), ("inline", INLINE)]
    for mode, writes in modes:
        result = results[mode] = run(args.seconds, writes)
        print(f"file writes {mode} ({result['file_writes']} writes, {result['file_bytes']} bytes):")
        for side in ("caller_frame", "agent_frame"):
            s = result[side]
            verdict = "ok" if s["median_us"] <= TARGET_US else "OVER TARGET"
            print(
                f"  {side:13s} median {s['median_us']:6.2f} µs  mean {s['mean_us']:6.2f}  "
                f"p99 {s['p99_us']:6.2f}  p99.9 {s['p999_us']:7.2f}  max {s['max_us']:8.2f}  "
                f"(target {TARGET_US:g} µs: {verdict})"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
