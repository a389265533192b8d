"""Per-frame cost of the audio path: wire decode + resample in, resample + encode out.

Run ``python -m bench.codec`` (``--frames N``, ``--json PATH``). Every figure is
per 20 ms frame, in microseconds, measured with ``time.perf_counter_ns`` around
each call after a warm-up; group delays are in milliseconds.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from app.audio.codec import encode
from app.audio.formats import INBOUND_FORMATS, OUTBOUND_FORMATS, AudioFormat
from app.audio.frames import InboundDecoder, OutboundEncoder
from app.audio.resample import StreamResampler

DEFAULT_FRAMES = 5000
WARMUP = 50
PIPELINE_RATE = 16000
TTS_RATES = (16000, 24000, 22050)
TARGET_US = 50.0


def _speech_like(rate: int, seconds: float, seed: int) -> npt.NDArray[np.int16]:
    """Band-limited noise with a syllable-rate envelope, at telephone levels."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    noise = np.cumsum(rng.normal(0.0, 1.0, n))
    noise -= np.convolve(noise, np.ones(32) / 32, mode="same")  # crude high-pass
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t)
    x = 3000.0 * envelope * noise / (np.std(noise) + 1e-9)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def _label(fmt: AudioFormat) -> str:
    name = "mu-law" if fmt.encoding == "mulaw" else "L16"
    return f"{name} {fmt.sample_rate / 1000:g}k"


def _measure(step: Callable[[int], object], frames: int) -> dict[str, float]:
    for i in range(WARMUP):
        step(i)
    samples = [0] * frames
    clock = time.perf_counter_ns
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(frames):
            start = clock()
            step(i)
            samples[i] = clock() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    us = sorted(s / 1000.0 for s in samples)
    return {
        "mean_us": statistics.fmean(us),
        "p50_us": us[len(us) // 2],
        "p95_us": us[min(len(us) - 1, int(len(us) * 0.95))],
    }


def _inbound(fmt: AudioFormat, frames: int) -> dict[str, Any]:
    pcm = _speech_like(fmt.sample_rate, 1.0, seed=fmt.sample_rate)
    payload = encode(pcm, fmt)
    size = fmt.frame_bytes()
    payloads = [payload[i : i + size] for i in range(0, len(payload), size)]
    dec = InboundDecoder(fmt, PIPELINE_RATE)
    stats = _measure(lambda i: dec(payloads[i % len(payloads)]), frames)
    return {
        "format": _label(fmt),
        "content_type": fmt.content_type,
        **stats,
        "delay_ms": dec.delay_seconds * 1e3,
    }


def _outbound(source_rate: int, fmt: AudioFormat, frames: int) -> dict[str, Any]:
    pcm = _speech_like(source_rate, 1.0, seed=source_rate)
    step_n = source_rate // 50
    chunks = [pcm[i : i + step_n] for i in range(0, pcm.size - step_n + 1, step_n)]
    enc = OutboundEncoder(source_rate, fmt)
    stats = _measure(lambda i: enc.push(chunks[i % len(chunks)]), frames)
    return {
        "source_rate": source_rate,
        "format": _label(fmt),
        "content_type": fmt.content_type,
        **stats,
        "delay_ms": enc.delay_seconds * 1e3,
    }


def _resamplers() -> list[dict[str, Any]]:
    pairs = sorted(
        {(f.sample_rate, PIPELINE_RATE) for f in INBOUND_FORMATS}
        | {(src, f.sample_rate) for src in TTS_RATES for f in OUTBOUND_FORMATS}
    )
    rows = []
    for a, b in pairs:
        r = StreamResampler(a, b)
        rows.append(
            {
                "in_rate": a,
                "out_rate": b,
                "ratio": f"{r.up}/{r.down}",
                "taps": int(r.taps.size) if a != b else 0,
                "taps_per_phase": -(-int(r.taps.size) // r.up) if a != b else 0,
                "delay_ms": r.delay_seconds * 1e3,
            }
        )
    return rows


def run(frames: int = DEFAULT_FRAMES) -> dict[str, Any]:
    """Measure everything; returns a JSON-serialisable dict (times in µs, delays in ms)."""
    return {
        "frames": frames,
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "inbound": [_inbound(fmt, frames) for fmt in INBOUND_FORMATS],
        "outbound": [_outbound(src, fmt, frames) for src in TTS_RATES for fmt in OUTBOUND_FORMATS],
        "resamplers": _resamplers(),
    }


def to_markdown(result: dict[str, Any]) -> str:
    """Render :func:`run`'s result as Markdown tables."""
    lines = [
        f"Per 20 ms frame, {result['frames']} frames, µs (target: decode+resample < {TARGET_US:g} µs).",
        "",
        "| inbound → 16 kHz | mean µs | p50 µs | p95 µs | delay ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in result["inbound"]:
        lines.append(
            f"| {row['format']} | {row['mean_us']:.1f} | {row['p50_us']:.1f} | {row['p95_us']:.1f} "
            f"| {row['delay_ms']:.2f} |"
        )
    lines += ["", "| outbound | mean µs | p50 µs | p95 µs | delay ms |", "|---|---:|---:|---:|---:|"]
    for row in result["outbound"]:
        lines.append(
            f"| {row['source_rate'] / 1000:g} kHz → {row['format']} | {row['mean_us']:.1f} "
            f"| {row['p50_us']:.1f} | {row['p95_us']:.1f} | {row['delay_ms']:.2f} |"
        )
    lines += ["", "| resampler | L/M | taps | taps/phase | group delay ms |", "|---|---:|---:|---:|---:|"]
    for row in result["resamplers"]:
        lines.append(
            f"| {row['in_rate']} → {row['out_rate']} Hz | {row['ratio']} | {row['taps']} "
            f"| {row['taps_per_phase']} | {row['delay_ms']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="frames timed per case")
    parser.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    args = parser.parse_args()
    if args.frames <= 0:
        parser.error("--frames must be positive")
    result = run(args.frames)
    print(to_markdown(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
