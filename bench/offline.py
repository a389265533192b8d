"""Offline speech-to-text: per-utterance latency, word error rate, and event-loop lag while it works.

Run ``python -m bench.offline`` (``--reps N``, ``--json PATH``). eSpeak NG (``en-us``) speaks
each sentence; the audio goes through :class:`app.providers.whisper_stt.WhisperSTT` in 20 ms
frames, clear (16 kHz) and through a simulated 8 kHz mu-law phone line. One utterance at a
time: the latency is from the last frame sent (the endpoint's silence included) to the
``Transcript`` event, i.e. the transcription plus the hop to its thread. Meanwhile a 20 ms
ticker task on the same event loop records how late each tick wakes (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import time
from importlib.metadata import version
from typing import Any

import numpy as np

from app.audio.wavio import through_phone_line
from app.providers.base import PCM, STTOptions, STTStream, Transcript
from app.providers.espeak import EspeakTTS
from app.providers.whisper_stt import WhisperSTT, load_whisper
from app.simulator.accuracy import word_errors, words
from bench.harness import loop_ticker

RATE, FRAME = 16000, 320
ENDPOINT_S = 0.8  # silence after each sentence: the 0.5 s endpoint + the VAD hangover (~0.1 s) + margin
DROPPED_AFTER_S = 5.0  # no transcript by then: the utterance was dropped as noise
SENTENCES = (
    "I would like to book a table for four people tomorrow evening.",
    "Can you transfer me to the billing department please?",
    "My flight was cancelled and I need a refund.",
    "I need to change my delivery address.",
    "Please cancel my appointment for next week.",
    "Please send me a copy of the invoice by email.",
    "The delivery was supposed to arrive on Monday morning.",
    "What time does the pharmacy close on Sunday?",
    "Could you please repeat that?",
    "I am calling about my internet connection.",
    "Is there a parking space near the hotel?",
    "How long will the repair take?",
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(versions: dict[str, list[tuple[str, PCM]]]) -> dict[str, Any]:
    stt = WhisperSTT(model=load_whisper())
    lateness: list[tuple[float, float]] = []  # (when, ms late)

    async with stt.stream(STTOptions()) as stream:
        return await _measure(stream, versions, lateness)


async def _measure(
    stream: STTStream, versions: dict[str, list[tuple[str, PCM]]], lateness: list[tuple[float, float]]
) -> dict[str, Any]:
    async def next_transcript() -> str:
        async for event in stream.events():
            if isinstance(event, Transcript):
                return event.text
        return ""

    tick = asyncio.create_task(loop_ticker(lateness))
    results: dict[str, Any] = {}
    try:
        for name, clips in versions.items():
            rows = []
            for text, pcm in clips:
                audio = np.concatenate([pcm, np.zeros(round(ENDPOINT_S * RATE), np.int16)])
                for at in range(0, audio.shape[0], FRAME):
                    await stream.send(audio[at : at + FRAME])
                    await asyncio.sleep(0)
                sent = time.perf_counter()
                try:  # an utterance the model heard nothing in gives no event at all
                    heard: str | None = await asyncio.wait_for(next_transcript(), DROPPED_AFTER_S)
                except TimeoutError:
                    heard = None
                elapsed = time.perf_counter() - sent
                rows.append(
                    {"text": text, "heard": heard, "seconds": elapsed, "audio_s": pcm.shape[0] / RATE}
                )
            results[name] = rows
    finally:
        tick.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tick
    results["ticker_lateness_ms"] = [ms for _, ms in lateness]
    return results


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rows in results.items():
        if name == "ticker_lateness_ms":
            continue
        heard = [r for r in rows if r["heard"] is not None]
        ms = [r["seconds"] * 1000 for r in heard]
        errors = sum(word_errors(r["text"], r["heard"] or "") for r in rows)
        out[name] = {
            "utterances": len(rows),
            "dropped": len(rows) - len(heard),
            "wer": errors / sum(len(words(r["text"])) for r in rows),
            "p50_ms": statistics.median(ms),
            "p95_ms": pct(ms, 95),
            "max_ms": max(ms),
            "real_time_factor": sum(r["seconds"] for r in heard) / sum(r["audio_s"] for r in heard),
        }
    lag = results["ticker_lateness_ms"]
    out["ticker"] = {"ticks": len(lag), "p50_ms": pct(lag, 50), "p99_ms": pct(lag, 99), "max_ms": max(lag)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=1, help="times each sentence is spoken (default 1)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    started = time.perf_counter()
    model = load_whisper()
    load_s = time.perf_counter() - started
    model.transcribe([np.zeros(RATE, np.int16)])  # warm-up: the first call allocates
    tts = EspeakTTS("en-us", sample_rate=RATE)
    clear = [(t, tts.synthesize(t).pcm) for _ in range(args.reps) for t in SENTENCES]
    versions = {"16 kHz": clear, "8 kHz mu-law line": [(t, through_phone_line(p)) for t, p in clear]}
    results = asyncio.run(run(versions))
    summary = summarise(results)
    env = {
        "cpus": os.cpu_count(),
        "threads": model.threads,
        "workers": model.workers,
        "python": platform.python_version(),
        "faster_whisper": version("faster-whisper"),
        "ctranslate2": version("ctranslate2"),
        "model_load_s": load_s,
    }
    print(f"Whisper tiny.en int8, {env['threads']} threads × {env['workers']} worker(s), {env['cpus']} CPUs")
    print(f"model load (sha256 check included): {load_s * 1000:.0f} ms\n")
    print("| audio | utterances | dropped | WER | p50 ms | p95 ms | max ms | real-time factor |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in versions:
        s = summary[name]
        print(
            f"| {name} | {s['utterances']} | {s['dropped']} | {s['wer'] * 100:.1f} % "
            f"| {s['p50_ms']:.0f} | {s['p95_ms']:.0f} | {s['max_ms']:.0f} | {s['real_time_factor']:.2f} |"
        )
    t = summary["ticker"]
    print("\n| 20 ms ticker on the same loop | ticks | p50 late ms | p99 late ms | max late ms |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| while transcribing | {t['ticks']} | {t['p50_ms']:.2f} | {t['p99_ms']:.2f} | {t['max_ms']:.2f} |"
    )
    print("\n| sentence | 16 kHz heard | line heard |")
    print("|---|---|---|")
    for a, b in zip(results["16 kHz"], results["8 kHz mu-law line"], strict=True):
        print(f"| {a['text']} | {a['heard'] or '(nothing)'} | {b['heard'] or '(nothing)'} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"env": env, "summary": summary, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
