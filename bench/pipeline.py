"""Pipeline overhead and barge-in reaction, with zero-latency scripted providers.

Run ``python -m bench.pipeline`` (``--calls N``, ``--json PATH``). N calls run at once, in
real time, over real WebSockets on 127.0.0.1 through the fake Vobiz; the service runs in a
process of its own, as in production. Each caller asks two questions and interrupts one long answer. Reported:

- overhead per turn: the transcript that ended the caller's turn → the first ``playAudio``
  written to the socket (the app's own stamps; the providers add nothing);
- barge-in reaction: the first voiced frame of an interruption leaving the fake Vobiz →
  the ``clearAudio`` arriving back (end to end, through both sockets).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import secrets
import statistics
from typing import Any

import numpy as np

from agents.builtin import BUILTIN_TOOLS
from agents.tools import ToolRegistry
from app.api.deps import AppContext
from app.clock import SystemClock
from app.config import Settings
from app.main import create_app
from app.pipeline.control import VobizCallControl
from app.pipeline.conversation import Conversation, ConversationConfig, Providers
from app.providers.scripted import Rule, ScriptedLLM, ScriptedSTT, ToneTTS
from app.simulator.caller import HangUp, InterruptAfter, Say, Step, WaitForAgent
from app.simulator.connect import NetworkConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import CallRecording
from app.simulator.simulate import _bind
from app.telephony.token import StreamClaims

TARGET_OVERHEAD_P95_MS = 5.0
TARGET_REACTION_P95_MS = 120.0
AUTH = "bench-auth-token"
SPREAD_S = 3.0  # call start times are spread uniformly over this many seconds
RULES = [
    Rule("open", "We open at nine. Anything else?"),
    Rule("story", "Here is a long answer that keeps going for a good while so you can cut in."),
]


def _tone(seconds: float) -> Any:
    t = np.arange(int(seconds * 16000)) / 16000
    return (6000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)


def _script() -> tuple[list[Step], dict[int, Any], list[str]]:
    steps: list[Step] = [
        WaitForAgent(),
        Say("What time do you open?", audio=_tone(0.8)),
        WaitForAgent(),
        Say("Tell me a story", audio=_tone(0.8)),
        InterruptAfter(1.0, Say("Stop, thanks", audio=_tone(0.6))),
        WaitForAgent(),
        HangUp(),
    ]
    audio = {1: steps[1].audio, 3: steps[3].audio, 4: steps[4].say.audio}  # type: ignore[union-attr]
    return steps, audio, ["What time do you open?", "Tell me a story", "Stop, thanks"]


def _factory(clock: SystemClock, conversations: list[Conversation]) -> Any:
    def make(claims: StreamClaims, ctx: AppContext) -> Conversation:
        conversation = Conversation(
            config=ConversationConfig(greeting="Hello, how can I help?"),
            providers=Providers(ScriptedSTT(_script()[2]), ScriptedLLM(RULES), ToneTTS()),
            clock=clock,
            control=VobizCallControl(None, claims.call_id, None),
            tools=ToolRegistry(BUILTIN_TOOLS),
            call_id=claims.call_id,
            persona=claims.persona,
        )
        conversations.append(conversation)
        return conversation

    return make


def _serve(ports: Any, results: Any, stop: Any) -> None:
    """The service, in a process of its own; sends back every turn's stamps when stopped."""
    import uvicorn

    sock, base = _bind()
    clock = SystemClock()
    conversations: list[Conversation] = []
    settings = Settings(
        _env_file=None,
        public_url=base,
        signature_mode="enforce",
        vobiz_auth_token=AUTH,
        stream_token_secret=secrets.token_urlsafe(32),
    )
    app = create_app(settings, clock=clock, agent_factory=_factory(clock, conversations))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))

    async def run() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(server.serve(sockets=[sock]))
            while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
                await asyncio.sleep(0.01)
            ports.put(base)
            await asyncio.to_thread(stop.wait)
            server.should_exit = True

    asyncio.run(run())
    results.put(
        [
            (s.stt_final, s.first_play_audio)
            for c in conversations[1:]  # the first call warms up
            for s in c.latency.turns.values()
            if s.stt_final is not None and s.first_play_audio is not None
        ]
    )


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


async def _run(calls: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    ports, results, stop = context.Queue(), context.Queue(), context.Event()
    process = context.Process(target=_serve, args=(ports, results, stop), daemon=True)
    process.start()
    base = await asyncio.to_thread(ports.get, True, 60)
    clock = SystemClock()
    steps, audio, _ = _script()
    rng = np.random.default_rng(7)

    async def dial(vobiz: FakeVobiz, delay: float) -> CallRecording:
        await asyncio.sleep(delay)  # calls arrive spread out, as they do on a real line
        return await vobiz.dial(f"{base}/vobiz/answer", steps, audio, hangup_url=f"{base}/vobiz/hangup")

    try:
        vobiz = FakeVobiz(NetworkConnector(), clock, PlatformConfig(auth_token=AUTH))
        await dial(vobiz, 0.0)  # warm-up: caches and first-use costs, not measured
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(dial(vobiz, float(rng.uniform(0, SPREAD_S)))) for _ in range(calls)]
        await vobiz.connector.aclose()
    finally:
        stop.set()
        stamps = await asyncio.to_thread(results.get, True, 60)
        process.join(10)
    recordings: list[CallRecording] = [t.result() for t in tasks]
    overhead = [(stamp[1] - stamp[0]) * 1000 for stamp in stamps]
    reaction = []
    for rec in recordings:
        barges = [e.t for e in rec.events if e.kind == "barge_in"]
        clears = [e.t for e in rec.events if e.kind == "clear_audio"]
        for b in barges:
            after = [c for c in clears if c >= b]
            if after:
                reaction.append((after[0] - b) * 1000)
    errors = sum(len(r.protocol_errors) for r in recordings)
    return {
        "calls": calls,
        "turns": len(overhead),
        "barge_ins": len(reaction),
        "protocol_errors": errors,
        "overhead_ms": {"p50": _percentile(overhead, 50), "p95": _percentile(overhead, 95),
                        "max": max(overhead, default=None)},
        "reaction_ms": {"p50": _percentile(reaction, 50), "p95": _percentile(reaction, 95),
                        "max": max(reaction, default=None)},
        "targets_ms": {"overhead_p95": TARGET_OVERHEAD_P95_MS, "reaction_p95": TARGET_REACTION_P95_MS},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "mean_reaction_ms": statistics.fmean(reaction) if reaction else None,
    }  # fmt: skip


def to_markdown(result: dict[str, Any]) -> str:
    def fmt(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}"

    o, r = result["overhead_ms"], result["reaction_ms"]
    ok_o = o["p95"] is not None and o["p95"] <= TARGET_OVERHEAD_P95_MS
    ok_r = r["p95"] is not None and r["p95"] <= TARGET_REACTION_P95_MS
    return "\n".join(
        [
            f"{result['calls']} concurrent calls, {result['turns']} turns, {result['barge_ins']} barge-ins, "
            f"{result['protocol_errors']} protocol errors.",
            "",
            "| measure | p50 ms | p95 ms | max ms | target p95 | met |",
            "|---|---:|---:|---:|---:|---|",
            f"| pipeline overhead (final transcript → first playAudio) | {fmt(o['p50'])} | {fmt(o['p95'])} "
            f"| {fmt(o['max'])} | ≤ {TARGET_OVERHEAD_P95_MS:g} | {'yes' if ok_o else 'no'} |",
            f"| barge-in reaction (first voiced frame → clearAudio) | {fmt(r['p50'])} | {fmt(r['p95'])} "
            f"| {fmt(r['max'])} | ≤ {TARGET_REACTION_P95_MS:g} | {'yes' if ok_r else 'no'} |",
        ]
    )


def run(calls: int) -> dict[str, Any]:
    return asyncio.run(_run(calls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=10, help="concurrent calls")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    result = run(args.calls)
    print(to_markdown(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
