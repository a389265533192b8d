"""The end-of-turn model (Smart Turn v3.2): cost per inference, and what it costs the event loop.

Run ``python -m bench smart_turn`` (``--runs N``, ``--seconds S``, ``--json PATH``).

* **per inference**: after 20 warm-up runs, ``--runs`` (200) inferences on 3 s of audio, timing
  the features (:func:`app.providers.log_mel.turn_features`) and the onnxruntime session apart.
  The cost does not depend on the audio: the model always sees 8 s (800 frames).
* **the event loop**: a task sleeping 20 ms at a time records how late each tick wakes, for
  ``--seconds`` (5) with nothing else running, then while one coroutine asks
  ``SmartTurn.complete_probability`` back to back (one inference always in flight), then while
  four do (the queue full: some get ``None`` at once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from importlib.metadata import version
from typing import Any

import numpy as np

from app.providers.base import PCM
from app.providers.log_mel import turn_features
from app.providers.smart_turn import SmartTurn, load_smart_turn
from bench.harness import loop_ticker

RATE = 16000
WARM_UP = 20


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def audio(seconds: float = 3.0) -> PCM:
    """Speech-like test audio: a gliding tone with noise, under a syllable-rate envelope."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    voice = np.sin(2 * np.pi * (150 + 40 * np.sin(2 * np.pi * 0.7 * t)) * t)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (6000 * envelope * voice + 300 * rng.standard_normal(t.shape[0])).astype(np.int16)


def per_inference(runs: int) -> dict[str, Any]:
    started = time.perf_counter()
    model = load_smart_turn()
    load_s = time.perf_counter() - started
    pcm = audio()
    for _ in range(WARM_UP):
        model.predict(pcm)
    features_ms, model_ms = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        features = turn_features(pcm)[np.newaxis]
        t1 = time.perf_counter()
        model.session.run(["logits"], {"input_features": features})
        t2 = time.perf_counter()
        features_ms.append((t1 - t0) * 1000)
        model_ms.append((t2 - t1) * 1000)
    total = [f + m for f, m in zip(features_ms, model_ms, strict=True)]
    parts = {"features": features_ms, "model": model_ms, "total": total}
    figures = {f"{name}_p{q}_ms": round(pct(v, q), 2) for name, v in parts.items() for q in (50, 95)}
    return {"load_s": round(load_s, 3), "runs": runs, **figures}


async def loop_lag(seconds: float, askers: int) -> dict[str, Any]:
    """Ticker lateness while ``askers`` coroutines ask for verdicts back to back."""
    turn = SmartTurn(load_smart_turn())
    pcm = audio()
    answered = skipped = 0
    lags: list[tuple[float, float]] = []
    stop = time.monotonic() + seconds

    async def ask() -> None:
        nonlocal answered, skipped
        while time.monotonic() < stop:
            if await turn.complete_probability(pcm) is None:
                skipped += 1
                await asyncio.sleep(0.005)  # a refused caller comes back at its next pause
            else:
                answered += 1

    async with asyncio.TaskGroup() as tg:
        ticker = tg.create_task(loop_ticker(lags))
        if askers:
            async with asyncio.TaskGroup() as inner:
                for _ in range(askers):
                    inner.create_task(ask())
        else:
            await asyncio.sleep(seconds)
        ticker.cancel()
    late = [ms for _, ms in lags]
    return {
        "askers": askers,
        "verdicts_per_s": round(answered / seconds, 1),
        "none_per_s": round(skipped / seconds, 1),
        "tick_p50_ms": round(pct(late, 50), 2),
        "tick_p99_ms": round(pct(late, 99), 2),
        "tick_max_ms": round(max(late), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench smart_turn", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="timed inferences (after 20 warm-up runs)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each loop-lag phase")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.runs < 1 or args.seconds <= 0:
        raise SystemExit("--runs must be >= 1 and --seconds > 0")
    load_before = os.getloadavg()[0]
    cost = per_inference(args.runs)
    lag = [asyncio.run(loop_lag(args.seconds, askers)) for askers in (0, 1, 4)]
    print(
        f"Smart Turn v3.2 on onnxruntime {version('onnxruntime')}, {os.cpu_count()} CPUs, "
        f"{platform.python_version()}; model load {cost['load_s']} s; {cost['runs']} runs; "
        f"machine load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n"
    )
    print("| part | p50 | p95 |\n|---|---:|---:|")
    for part in ("features", "model", "total"):
        print(f"| {part} | {cost[f'{part}_p50_ms']} ms | {cost[f'{part}_p95_ms']} ms |")
    print("\n| 20 ms ticker | verdicts/s | None/s | p50 late | p99 late | max late |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in lag:
        what = "idle loop" if not row["askers"] else f"{row['askers']} asking back to back"
        print(
            f"| {what} | {row['verdicts_per_s']} | {row['none_per_s']} | {row['tick_p50_ms']} ms "
            f"| {row['tick_p99_ms']} ms | {row['tick_max_ms']} ms |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cost": cost, "loop": lag, "load_average": load_before}, f, indent=2)


if __name__ == "__main__":
    main()
