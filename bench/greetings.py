"""Many calls answered at once on the embedded voice: how many are greeted, and how soon.

Run ``python -m bench greetings`` (``--calls 100``, ``--wait 10``, ``--json PATH``). The service
runs in a process of its own, as in production (uvicorn, its lifespan, ``PROVIDERS=offline``:
Whisper tiny.en, the persona's intents and the Piper voice; the demo persona, whose greeting is
"Hello, Sunrise Bakery! How can I help you today?"). Once it is up, the fake Vobiz dials
``--calls`` calls at the same instant over real WebSockets on 127.0.0.1 (signed answer webhook,
then the media stream). Each caller stays silent, waits up to ``--wait`` seconds for the agent to
speak, hears the greeting out, and hangs up.

Reported: the calls greeted (the first ``playAudio`` of the greeting reached the caller within
``--wait``), the time to greeting (the answer webhook POSTed → the first ``playAudio`` frame
played, on the fake Vobiz's timeline) p50/p95/max and the part of it until the media socket was
open (webhook, answer XML, WebSocket handshake: no speech involved), how long the service took to start (model
loads, and fixed lines rendered before it answers, where the code does that), and the machine's
load average before the round (other work on the machine slows the embedded voice).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from app.clock import SystemClock
from app.main import create_app
from app.simulator.caller import HangUp, Step, WaitForAgent
from app.simulator.connect import NetworkConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import CallRecording
from app.simulator.simulate import _bind
from bench.harness import AUTH, bench_server, fmt_ms, service_settings, stats, write_json

PROMPTS = Path(__file__).resolve().parents[1] / "prompts"


def _serve(ports: Any, commands: Any, cpus: list[int] | None) -> None:
    """The service with the embedded engines, in a process of its own (on ``cpus`` if given);
    sends its base URL and its start-up time (seconds) once it answers, then serves until told
    to exit."""

    if cpus:
        os.sched_setaffinity(0, cpus)
    started = time.monotonic()
    sock, base = _bind()
    data = tempfile.TemporaryDirectory(prefix="bench-greetings-")  # call records go here
    # call records as a single host keeps them by default: SQLite in DATA_DIR (100 starts queue
    # on SQLite's one writer here, beside the greetings)
    settings = service_settings(base, Path(data.name), providers="offline", prompts_dir=PROMPTS)
    app = create_app(settings)  # loads Whisper, Piper and the end-of-turn model here
    server = bench_server(app, settings)

    async def run() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(server.serve(sockets=[sock]))
            while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
                await asyncio.sleep(0.01)
            ports.put((base, time.monotonic() - started))
            await asyncio.to_thread(commands.get)
            server.should_exit = True

    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(run())
    data.cleanup()


def since_dialled(rec: CallRecording, kind: str) -> float | None:
    """Seconds from the answer webhook to the first ``kind`` event; None if none came."""
    dialled = next((e.t for e in rec.events if e.kind == "call_started"), 0.0)
    first = next((e.t for e in rec.events if e.kind == kind), None)
    return None if first is None else first - dialled


def _cpu_sets() -> tuple[list[int] | None, list[int] | None]:
    """The service on the first CPU, the fake Vobiz (this process) on the others: the callers'
    side costs about as much CPU as the service and must not take turns on its core."""
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[:1], cpus[1:]) if len(cpus) >= 2 else (None, None)


async def run(calls: int, wait: float) -> dict[str, Any]:
    service_cpus, vobiz_cpus = _cpu_sets()
    context = multiprocessing.get_context("spawn")
    ports, commands = context.Queue(), context.Queue()
    process = context.Process(target=_serve, args=(ports, commands, service_cpus), daemon=True)
    process.start()
    if vobiz_cpus:
        os.sched_setaffinity(0, vobiz_cpus)
    try:
        base, startup_s = await asyncio.to_thread(ports.get, True, 180)
        load = os.getloadavg()
        # a connection per call (as Vobiz's many machines would open them), idle ones let go
        # before uvicorn's keep-alive closes them; recorded at the line rate: nothing resampled
        limits = httpx.Limits(max_connections=calls, max_keepalive_connections=calls, keepalive_expiry=2.0)
        config = PlatformConfig(auth_token=AUTH, recording_rate=8000)
        vobiz = FakeVobiz(NetworkConnector(limits=limits), SystemClock(), config)
        steps: list[Step] = [WaitForAgent(timeout=wait), HangUp()]
        answer, hangup = f"{base}/vobiz/answer", f"{base}/vobiz/hangup"
        began = time.monotonic()

        async def dial() -> CallRecording | str:
            try:
                return await vobiz.dial(answer, steps, {}, hangup_url=hangup)
            except httpx.HTTPError as exc:  # a webhook POST of the fake Vobiz failed: the call is lost
                return type(exc).__name__
            except ExceptionGroup as group:
                http, rest = group.split(httpx.HTTPError)
                if rest is not None or http is None:
                    raise
                return type(http.exceptions[0]).__name__

        async with asyncio.TaskGroup() as tg:  # every call dialled at the same instant
            tasks = [tg.create_task(dial()) for _ in range(calls)]
        took = time.monotonic() - began
        await vobiz.connector.aclose()
    finally:
        commands.put("exit")
        await asyncio.to_thread(process.join, 30)
    done = [t.result() for t in tasks]
    recs = [r for r in done if isinstance(r, CallRecording)]
    lost = Counter(r for r in done if isinstance(r, str))
    times = [t for t in (since_dialled(r, "agent_audio_start") for r in recs) if t is not None and t <= wait]
    opened = [t for t in (since_dialled(r, "socket_open") for r in recs) if t is not None]
    return {
        "calls": calls,
        "wait_s": wait,
        "greeted": len(times),
        "time_to_greeting_ms": stats([t * 1000 for t in times], 50, 95),
        "time_to_socket_open_ms": stats([t * 1000 for t in opened], 50, 95),
        "protocol_errors": sum(len(r.protocol_errors) for r in recs),
        "calls_lost": dict(lost),  # the fake Vobiz's own HTTP errors, by kind (not greeted)
        "startup_s": startup_s,
        "round_s": took,
        "load_average_before": load,
        "cpus": os.cpu_count(),
        "pinned": {"service": service_cpus, "vobiz": vobiz_cpus},
        "python": platform.python_version(),
    }


def to_markdown(r: dict[str, Any]) -> str:
    t, o = r["time_to_greeting_ms"], r["time_to_socket_open_ms"]
    load = ", ".join(f"{x:.2f}" for x in r["load_average_before"])
    return "\n".join(
        [
            f"Python {r['python']}, {r['cpus']} CPUs; service on CPU {r['pinned']['service']}, the fake "
            f"Vobiz on CPU {r['pinned']['vobiz']}; load average before the round: {load}",
            f"service start-up {r['startup_s']:.1f} s; the round took {r['round_s']:.1f} s",
            "",
            "| calls at once | greeted (within) | to greeting p50 ms | p95 ms | max ms | protocol errors |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {r['calls']} | {r['greeted']} ({r['wait_s']:g} s) | {fmt_ms(t['p50'])} | {fmt_ms(t['p95'])} "
            f"| {fmt_ms(t['max'])} | {r['protocol_errors']} |",
            "",
            f"of which the answer webhook → the media socket open: p50 {fmt_ms(o['p50'])} ms, "
            f"p95 {fmt_ms(o['p95'])} ms, max {fmt_ms(o['max'])} ms",
            *([f"calls lost to the fake Vobiz's HTTP errors: {r['calls_lost']}"] if r["calls_lost"] else []),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=100, help="calls dialled at once (default 100)")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds a caller waits to be greeted")
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    args = parser.parse_args()
    if args.calls < 1 or args.wait <= 0:
        parser.error("--calls must be at least 1 and --wait positive")
    import uvloop  # the fake Vobiz on uvloop too, so the callers' side keeps up with 100 calls

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run(args.calls, args.wait))
    print(to_markdown(result))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
