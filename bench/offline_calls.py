"""Whole calls on the embedded engines: how late the service's event loop runs while Whisper and
Piper work, and what each turn costs a caller.

Run ``python -m bench.offline_calls`` (``--calls 1 2 4``, ``--json PATH``). For each N, N calls
run at once in real time over real WebSockets on 127.0.0.1 through the fake Vobiz, against the
service in a process of its own with ``PROVIDERS=offline`` (Whisper tiny.en, the persona's
intents, Piper). Each caller (Piper's voice, rendered before the call) asks two questions of the
demo persona. Reported:

- loop lag: a task on the service's event loop sleeps 20 ms at a time and records how late it
  wakes, which is what every call's 20 ms ``media`` frames see while the engines work in their
  threads (p50/p99/max);
- turn latency: the caller's last voiced frame → the first ``playAudio`` of the reply (the
  service's own stamps: 0.5 s endpointing + transcription + synthesis of the first sentence);
- word errors of the agent's speech recognition over all calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from app.clock import SystemClock
from app.main import create_app
from app.pipeline.conversation import Conversation, TranscriptEntry
from app.simulator.accuracy import word_errors, words
from app.simulator.audio_prep import render_caller_audio
from app.simulator.caller import parse_script
from app.simulator.connect import NetworkConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.simulate import _bind
from bench.harness import AUTH, loop_ticker, service_settings

SCRIPT = """\
wait 10
say Hello, what time do you open tomorrow?
wait
say Where are you located?
wait
hangup
"""
SAID = ["Hello, what time do you open tomorrow?", "Where are you located?"]
PROMPTS = Path(__file__).resolve().parents[1] / "prompts"


class _Collect:
    def __init__(self) -> None:
        self.ended: list[Conversation] = []

    def on_transcript(self, conversation: Conversation, entry: TranscriptEntry) -> None:
        pass

    def on_end(self, conversation: Conversation) -> None:
        self.ended.append(conversation)


def _serve(ports: Any, results: Any, stop: Any) -> None:
    """The service, in a process of its own; a ticker measures its loop's lag between ``mark``s."""
    import uvicorn

    sock, base = _bind()
    collect = _Collect()
    data = tempfile.TemporaryDirectory(prefix="bench-offline-")  # call records go here
    settings = service_settings(base, Path(data.name), providers="offline", prompts_dir=PROMPTS)
    app = create_app(settings, observer=collect)  # loads Whisper and Piper here, before any call
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    lags: list[tuple[float, float]] = []  # (when, ms late)

    async def run() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(server.serve(sockets=[sock]))
            while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
                await asyncio.sleep(0.01)
            ticking = tg.create_task(loop_ticker(lags))
            ports.put(base)
            while True:
                command = await asyncio.to_thread(stop.get)
                if command == "mark":  # a new round: lags and calls from here on
                    lags.clear()
                    collect.ended.clear()
                    ports.put("ok")
                    continue
                results.put(_round(lags, collect.ended))
                if command == "exit":
                    ticking.cancel()
                    server.should_exit = True
                    return

    asyncio.run(run())


def _round(lags: list[tuple[float, float]], ended: list[Conversation]) -> dict[str, Any]:
    turns = [
        (s.first_play_audio - s.speech_end) * 1000
        for c in ended
        for s in c.latency.turns.values()
        if s.speech_end is not None and s.first_play_audio is not None
    ]
    heard = [" ".join(e.text for e in c.transcript if e.speaker == "caller") for c in ended]
    reference = " ".join(SAID)
    return {
        "lags_ms": [ms for _, ms in lags],
        "turns_ms": turns,
        "word_errors": sum(word_errors(reference, h) for h in heard),
        "words": len(words(reference)) * len(ended),
    }


def _stats(values: list[float], *quantiles: int) -> dict[str, float | None]:
    found: dict[str, float | None] = {
        f"p{q}": float(np.percentile(values, q)) if values else None for q in quantiles
    }
    found["max"] = max(values, default=None)
    return found


async def _run(rounds: list[int]) -> list[dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    ports, results, commands = context.Queue(), context.Queue(), context.Queue()
    process = context.Process(target=_serve, args=(ports, results, commands), daemon=True)
    process.start()
    base = await asyncio.to_thread(ports.get, True, 120)
    steps = parse_script(SCRIPT)
    audio = await asyncio.to_thread(render_caller_audio, steps, 16000, None)
    rng = np.random.default_rng(7)
    out = []
    try:
        vobiz = FakeVobiz(NetworkConnector(), SystemClock(), PlatformConfig(auth_token=AUTH))
        for calls in rounds:
            commands.put("mark")
            await asyncio.to_thread(ports.get, True, 30)

            async def dial(delay: float) -> Any:
                await asyncio.sleep(delay)
                return await vobiz.dial(
                    f"{base}/vobiz/answer", steps, audio, hangup_url=f"{base}/vobiz/hangup"
                )

            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(dial(float(rng.uniform(0, 1.0)))) for _ in range(calls)]
            commands.put("report")
            measured = await asyncio.to_thread(results.get, True, 60)
            errors = sum(len(t.result().protocol_errors) for t in tasks)
            lags, turns = measured["lags_ms"], measured["turns_ms"]
            out.append(
                {
                    "calls": calls,
                    "turns": len(turns),
                    "protocol_errors": errors,
                    "loop_lag_ms": _stats(lags, 50, 99),
                    "turn_latency_ms": _stats(turns, 50, 95),
                    "word_error_rate": measured["word_errors"] / max(1, measured["words"]),
                }
            )
        await vobiz.connector.aclose()
    finally:
        commands.put("exit")
        await asyncio.to_thread(results.get, True, 60)
        process.join(10)
    return out


def to_markdown(rows: list[dict[str, Any]]) -> str:
    def f(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}"

    lines = [
        "| calls | turns | loop lag p50 ms | p99 ms | max ms | turn latency p50 ms | p95 ms | WER "
        "| protocol errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lag, turn = r["loop_lag_ms"], r["turn_latency_ms"]
        wer = f"{r['word_error_rate']:.1%}"
        lines.append(
            f"| {r['calls']} | {r['turns']} | {f(lag['p50'])} | {f(lag['p99'])} | {f(lag['max'])} "
            f"| {f(turn['p50'])} | {f(turn['p95'])} | {wer} | {r['protocol_errors']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, nargs="+", default=[1, 2, 4], help="concurrent calls per round")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    rows = asyncio.run(_run(args.calls))
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs\n")
    print(to_markdown(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
