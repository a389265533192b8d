"""Pipeline overhead and barge-in reaction, with zero-latency scripted providers.

Run ``python -m bench.pipeline`` (``--calls N``, ``--json PATH``). N calls run at once, in
real time, over real WebSockets on 127.0.0.1 through the fake Vobiz; the service runs in a
process of its own, as in production. Each caller asks two questions and interrupts one long answer. Reported:

- overhead per turn: the transcript that ended the caller's turn → the first ``playAudio``
  written to the socket (the app's own stamps; the providers add nothing);
- barge-in reaction: the first voiced frame of an interruption leaving the fake Vobiz →
  the ``clearAudio`` arriving back (end to end, through both sockets).

The service process, the script and both figures live in ``bench.harness`` (shared with
``bench.capacity``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
from typing import Any

import numpy as np

from app.clock import SystemClock
from app.simulator.connect import NetworkConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import CallRecording
from bench.harness import (
    AUTH,
    ServiceProcess,
    call_script,
    fmt_ms,
    overhead_ms,
    percentile,
    reaction_ms,
    write_json,
)

TARGET_OVERHEAD_P95_MS = 5.0
TARGET_REACTION_P95_MS = 120.0
SPREAD_S = 3.0  # call start times are spread uniformly over this many seconds
WARM_UP = "warm-up"


async def _run(calls: int) -> dict[str, Any]:
    script = call_script()
    rng = np.random.default_rng(7)
    async with ServiceProcess() as service:
        base = service.base

        async def dial(vobiz: FakeVobiz, delay: float, call_id: str | None = None) -> CallRecording:
            await asyncio.sleep(delay)  # calls arrive spread out, as they do on a real line
            return await vobiz.dial(
                f"{base}/vobiz/answer",
                script.steps,
                script.audio,
                hangup_url=f"{base}/vobiz/hangup",
                call_id=call_id,
            )

        vobiz = FakeVobiz(NetworkConnector(), SystemClock(), PlatformConfig(auth_token=AUTH))
        try:
            await dial(vobiz, 0.0, WARM_UP)  # caches and first-use costs, not measured
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(dial(vobiz, float(rng.uniform(0, SPREAD_S)))) for _ in range(calls)]
        finally:
            await vobiz.connector.aclose()
    recordings = [t.result() for t in tasks]
    overhead = overhead_ms(service.recorded["turns"], skip=[WARM_UP])
    reaction = [ms for rec in recordings for ms in reaction_ms(rec)]
    return summarise(calls, overhead, reaction, sum(len(r.protocol_errors) for r in recordings))


def summarise(calls: int, overhead: list[float], reaction: list[float], errors: int) -> dict[str, Any]:
    """The result dict (times in ms) for ``calls`` concurrent calls."""
    return {
        "calls": calls,
        "turns": len(overhead),
        "barge_ins": len(reaction),
        "protocol_errors": errors,
        "overhead_ms": {"p50": percentile(overhead, 50), "p95": percentile(overhead, 95),
                        "p99": percentile(overhead, 99), "max": max(overhead, default=None)},
        "reaction_ms": {"p50": percentile(reaction, 50), "p95": percentile(reaction, 95),
                        "max": max(reaction, default=None)},
        "targets_ms": {"overhead_p95": TARGET_OVERHEAD_P95_MS, "reaction_p95": TARGET_REACTION_P95_MS},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "mean_reaction_ms": statistics.fmean(reaction) if reaction else None,
    }  # fmt: skip


def met(result: dict[str, Any]) -> tuple[bool, bool]:
    """Whether the overhead and the reaction targets are met."""
    o, r = result["overhead_ms"]["p95"], result["reaction_ms"]["p95"]
    return (o is not None and o <= TARGET_OVERHEAD_P95_MS, r is not None and r <= TARGET_REACTION_P95_MS)


def to_markdown(result: dict[str, Any]) -> str:
    o, r = result["overhead_ms"], result["reaction_ms"]
    ok_o, ok_r = met(result)
    yes = {True: "yes", False: "no"}
    return "\n".join(
        [
            f"{result['calls']} concurrent calls, {result['turns']} turns, {result['barge_ins']} barge-ins, "
            f"{result['protocol_errors']} protocol errors.",
            "",
            "| measure | p50 ms | p95 ms | max ms | target p95 | met |",
            "|---|---:|---:|---:|---:|---|",
            f"| pipeline overhead (final transcript → first playAudio) | {fmt_ms(o['p50'])} "
            f"| {fmt_ms(o['p95'])} | {fmt_ms(o['max'])} | ≤ {TARGET_OVERHEAD_P95_MS:g} | {yes[ok_o]} |",
            f"| barge-in reaction (first voiced frame → clearAudio) | {fmt_ms(r['p50'])} "
            f"| {fmt_ms(r['p95'])} | {fmt_ms(r['max'])} | ≤ {TARGET_REACTION_P95_MS:g} | {yes[ok_r]} |",
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
        write_json(args.json, result)


if __name__ == "__main__":
    main()
