"""Offline TTS latency: first audio and real-time factor for Piper and eSpeak NG.

Run ``python -m bench.offline_tts`` (``--runs N``, ``--json PATH``). Each engine speaks the
same 10-word sentence through :class:`~app.providers.offline_tts.ThreadedSynthesizer`, the
path the pipeline uses, after loading and two warm-up runs. Reported per engine:

- first audio: calling ``synthesize`` → the first chunk in the consumer's hands (ms);
- real-time factor: wall time to the last chunk ÷ seconds of audio produced (below 1 is
  faster than real time);
- load: building the engine once per process (Piper: hash + ONNX session + warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from collections.abc import Callable

from app.providers.base import TTSOptions
from app.providers.offline_tts import ThreadedSynthesizer
from app.providers.tts import TextToSpeech

SENTENCE = "Please hold the line while I check your booking details."  # 10 words
WARM_UP_RUNS = 2


def _piper() -> TextToSpeech:
    from app.providers.piper_tts import PiperTTS

    return PiperTTS()


def _espeak() -> TextToSpeech:
    from app.providers.espeak import EspeakTTS

    engine = EspeakTTS()
    engine.load()
    return engine


ENGINES: dict[str, Callable[[], TextToSpeech]] = {"piper": _piper, "espeak-ng": _espeak}


async def _one(synth: ThreadedSynthesizer) -> tuple[float, float]:
    """(first-audio seconds, real-time factor) for one synthesis of SENTENCE."""
    samples = 0
    first = 0.0
    started = time.perf_counter()
    async for chunk in synth.synthesize(SENTENCE, TTSOptions()):
        if not samples:
            first = time.perf_counter() - started
        samples += int(chunk.shape[0])
    elapsed = time.perf_counter() - started
    return first, elapsed / (samples / synth.sample_rate)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(name: str, runs: int) -> dict[str, float]:
    started = time.perf_counter()
    engine = ENGINES[name]()
    load_s = time.perf_counter() - started
    synth = ThreadedSynthesizer(engine)
    for _ in range(WARM_UP_RUNS):
        await _one(synth)
    results = [await _one(synth) for _ in range(runs)]
    firsts = [first * 1000 for first, _ in results]
    factors = [factor for _, factor in results]
    return {
        "load_ms": load_s * 1000,
        "first_audio_p50_ms": statistics.median(firsts),
        "first_audio_p90_ms": _quantile(firsts, 0.9),
        "rtf_p50": statistics.median(factors),
        "rtf_p90": _quantile(factors, 0.9),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per engine")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    figures = {name: asyncio.run(_measure(name, args.runs)) for name in ENGINES}
    print(f"10-word sentence, {args.runs} runs per engine, {platform.python_version()}\n")
    print("| engine | load ms | first audio p50 ms | p90 ms | RTF p50 | RTF p90 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, f in figures.items():
        print(
            f"| {name} | {f['load_ms']:.0f} | {f['first_audio_p50_ms']:.1f} | "
            f"{f['first_audio_p90_ms']:.1f} | {f['rtf_p50']:.3f} | {f['rtf_p90']:.3f} |"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(figures, out, indent=2)


if __name__ == "__main__":
    main()
