"""Capacity: how many concurrent calls one service process carries on this machine.

Run ``python -m bench`` or ``python -m bench.capacity`` (``--ramp 25 50 …``, ``--window S``,
``--workers K``, ``--json PATH``). Reported:

- per-frame CPU cost of the inbound path per format, in-process (``bench.inbound``);
- a ramp of N concurrent calls, each step against the same service process (uvicorn, uvloop,
  zero-latency scripted providers) over real WebSockets on 127.0.0.1 in real time, dialled
  by the fake Vobiz from ``--workers`` processes of its own. Each caller talks, listens and
  cuts into a long answer over and over (``bench.harness.call_script``) until it is hung up.
  Calls start spread out, then every figure is taken over a ``--window`` during which all N
  are up:

  * inbound frame lag: a ``media`` frame handed to the fake Vobiz's socket → the agent taking
    it from the socket's reader (decoded and resampled; VAD and the turn-taker run at once), both
    stamped on the machine's one monotonic clock (p50/p99/max); and the service loop's lag
    (a 20 ms ticker on its event loop);
  * underruns: playout ticks of the fake Vobiz that ran dry mid-segment (a gap in the agent's
    audio as the phone hears it; ``PhonePlayout``'s ``starved``);
  * CPU seconds of the service process per call-second, resident memory per call (peak RSS
    during the window minus RSS idle after a warm-up call, ÷ N; psutil);
  * pipeline overhead per turn and barge-in reaction, as ``bench.pipeline`` measures them.

  A step passes with inbound frame lag p99 < 20 ms and no underrun in the window, no protocol
  error and every call carried through the window. Inbound frames the service dropped (its
  2 s queue overflowed) are reported for whole calls: they happen in the burst of call set-ups.
  The ramp stops at the first step that fails, then bisects ``--refine`` times between the last
  pass and that failure.

By default the service is pinned to CPU 0 and the fake Vobiz workers to the other CPUs
(``--no-pin`` to let the scheduler place them): the fake Vobiz costs about as much CPU per
call as the service, and on two cores it would otherwise take turns on the service's core. The
fake Vobiz records at the line rate (8 kHz), so it resamples nothing. ``fake Vobiz lag`` (how
late it sent frames against its own 20 ms cadence) and ``others' CPU`` (the rest of the
machine's busy time in the window: other people's work) say when a step measured its
surroundings more than the service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import platform
import sys
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import psutil

from app.clock import SystemClock
from app.simulator.connect import Connector, HttpReply, MediaSocket, MediaSocketWrapper, NetworkConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import CallRecording
from bench import inbound
from bench.harness import (
    AUTH,
    call_script,
    fmt_ms,
    overhead_ms,
    reaction_ms,
    stats,
    write_json,
)
from bench.pipeline import TARGET_OVERHEAD_P95_MS, TARGET_REACTION_P95_MS
from bench.speed import SpeedProbe
from bench.workers import ServiceGroup

DEFAULT_RAMP = (25, 50, 100, 200, 300, 400, 500)
TARGET_CALLS = 300
TARGET_LAG_P99_MS = 20.0
TARGET_MIB_PER_CALL = 1.0
TARGET_CPU_MS_PER_CALL_S = 2.5  # service CPU per second of call (issue 13)
HOST_CORES = (4, 8, 16)  # hosts the per-core figures are extrapolated to (arithmetic)
LINE_RATE = 8000  # mu-law 8 kHz, the service's default stream format
CYCLE_S = 6.0  # a script cycle lasts at least this long (it is ~8 s); calls are hung up anyway
SETTLE_S = 3.0  # after the last call starts, before the window opens
DIAL_RATE = 50.0  # calls started per second at most during the ramp-up
WARM_UP = "warm-up"


@dataclass(frozen=True, slots=True)
class Options:
    ramp: tuple[int, ...] = DEFAULT_RAMP  # N per step, ascending
    window: float = 10.0  # seconds measured per step, all calls up
    workers: int = 2  # fake Vobiz processes
    refine: int = 3  # bisection steps after the first failing step
    frames: int = 5000  # frames timed per format (per-frame cost)
    pin: bool = True  # service on the first CPU, the fake Vobiz on the others
    deflate: bool = True  # the fake Vobiz offers permessage-deflate (the websockets default)
    warm_up: bool = True  # one whole call before the ramp (first-use costs), then the idle RSS
    profile: str | None = None  # run the service under cProfile, stats to this path
    service_workers: int = 1  # service processes on one port (``serve --workers``), all on one core


# ── the fake Vobiz, in worker processes ─────────────────────────────────────────────────────────


class _StampedSocket(MediaSocketWrapper):
    """A media socket that stamps each ``media`` frame as it is handed to the socket."""

    def __init__(self, inner: MediaSocket, sends: dict[str, array[float]]) -> None:
        super().__init__(inner)
        self._sends = sends
        self._stamps: array[float] | None = None

    async def send(self, text: str) -> None:
        stamps = self._stamps
        if stamps is not None and '"event": "media"' in text:
            stamps.append(time.monotonic())
        elif stamps is None and '"event": "start"' in text:
            call_id = json.loads(text)["start"]["callId"]
            self._stamps = self._sends[call_id] = array("d")
        await self._inner.send(text)


class _StampingConnector:
    def __init__(self, inner: Connector) -> None:
        self._inner = inner
        self.sends: dict[str, array[float]] = {}  # call id → monotonic send time of each media frame

    async def request(
        self, method: str, url: str, data: dict[str, str], headers: dict[str, str]
    ) -> HttpReply:
        return await self._inner.request(method, url, data, headers)

    async def open_socket(self, url: str) -> MediaSocket:
        return _StampedSocket(await self._inner.open_socket(url), self.sends)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass(frozen=True, slots=True)
class _Job:
    base: str
    starts: list[tuple[str, float]]  # (call id, monotonic start time)
    cycles: int
    hang_up_at: float | None  # monotonic; None: the calls run their script to the end
    since: float  # the measurement window, monotonic
    until: float
    deflate: bool = True  # offer permessage-deflate on the media socket


def _summary(rec: CallRecording, sends: array[float] | None, job: _Job) -> dict[str, Any]:
    origin = rec.clock_origin
    return {
        "call_id": rec.call_id,
        "end_reason": rec.end_reason,
        "duration_s": rec.duration,
        "protocol_errors": [f"{v.rule}: {v.detail}" for v in rec.protocol_errors],
        "underruns": [origin + t for t in rec.underruns],
        "reaction_ms": reaction_ms(rec, since=job.since, until=job.until),
        "sends": (sends or array("d")).tobytes(),
    }


def _failed(call_id: str, error: str) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "end_reason": "failed",
        "duration_s": 0.0,
        "error": error,
        "protocol_errors": [],
        "underruns": [],
        "reaction_ms": [],
        "sends": b"",
    }


async def _run_job(job: _Job) -> list[dict[str, Any]]:
    script = call_script(job.cycles, LINE_RATE)
    compression = "deflate" if job.deflate else None
    # idle webhook connections expire before uvicorn's 5 s keep-alive timeout closes them, so
    # hundreds of calls' webhooks never race a server-side close (httpx's expiry is also 5 s)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100, keepalive_expiry=2.0)
    network = NetworkConnector(timeout=30.0, compression=compression, limits=limits)
    connector = _StampingConnector(network)
    vobiz = FakeVobiz(connector, SystemClock(), PlatformConfig(auth_token=AUTH, recording_rate=LINE_RATE))

    async def dial(call_id: str, at: float) -> CallRecording | str:
        await asyncio.sleep(at - time.monotonic())
        try:
            return await vobiz.dial(
                f"{job.base}/vobiz/answer",
                script.steps,
                script.audio,
                hangup_url=f"{job.base}/vobiz/hangup",
                call_id=call_id,
            )
        except (OSError, httpx.HTTPError) as exc:  # one failed call is a finding, not the end of the step
            return f"{call_id}: {type(exc).__name__}: {exc}"

    async def hang_up(at: float) -> None:
        await asyncio.sleep(at - time.monotonic())
        for call_id in list(vobiz.calls):
            vobiz.hang_up(call_id, by="caller")

    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(dial(call_id, at)) for call_id, at in job.starts]
            if job.hang_up_at is not None:
                tg.create_task(hang_up(job.hang_up_at))
    finally:
        await connector.aclose()
    out = []
    for call_id, task in zip((c for c, _ in job.starts), tasks, strict=True):
        rec = task.result()
        if isinstance(rec, str):
            out.append(_failed(call_id, rec))
        else:
            out.append(_summary(rec, connector.sends.get(rec.call_id), job))
    return out


def _vobiz_worker(cpus: list[int] | None, jobs: Any, results: Any) -> None:
    """A fake Vobiz process: runs each job's calls on its own (uv)loop, sends back summaries."""
    import uvloop

    if cpus:
        os.sched_setaffinity(0, cpus)
    while (job := jobs.get()) is not None:
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results.put(runner.run(_run_job(job)))
        except Exception as exc:  # the parent reports it; the worker stays up for the next job
            results.put(exc)


class _Workers:
    """``--workers`` fake Vobiz processes; ``run`` splits one step's calls between them."""

    def __init__(self, count: int, cpus: list[int] | None) -> None:
        context = multiprocessing.get_context("spawn")
        self._jobs = [context.Queue() for _ in range(count)]
        self._results = context.Queue()
        self.processes = [
            context.Process(target=_vobiz_worker, args=(cpus, q, self._results), daemon=True)
            for q in self._jobs
        ]
        for p in self.processes:
            p.start()

    async def run(self, jobs: list[_Job], wait_s: float) -> list[dict[str, Any]]:
        for queue, job in zip(self._jobs, jobs, strict=False):
            queue.put(job)
        out: list[dict[str, Any]] = []
        for _ in jobs:
            got = await asyncio.to_thread(self._results.get, True, wait_s)
            if isinstance(got, Exception):
                raise RuntimeError(f"a fake Vobiz worker failed: {got!r}") from got
            out.extend(got)
        return out

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.processes:
            assert p.pid is not None
            t = psutil.Process(p.pid).cpu_times()
            total += t.user + t.system
        return total

    def close(self) -> None:
        for queue in self._jobs:
            queue.put(None)
        for p in self.processes:
            p.join(10)


# ── one step of the ramp ────────────────────────────────────────────────────────────────────────


def _machine_busy() -> float:
    """CPU seconds all the machine's CPUs have been busy since boot."""
    t = psutil.cpu_times()._asdict()  # on Linux "user" already includes "guest"
    return float(sum(v for k, v in t.items() if k not in ("idle", "iowait", "guest", "guest_nice")))


def _frame_lags(
    calls: list[dict[str, Any]], taken: dict[str, Any], since: float, until: float
) -> list[float]:
    """ms from each media frame's send (fake Vobiz) to the agent taking it (service), in the window."""
    lags: list[np.ndarray[Any, Any]] = []
    for call in calls:
        sent = np.frombuffer(call["sends"], dtype=np.float64)
        got = taken.get(call["call_id"])
        if got is None:
            continue
        n = min(len(sent), len(got))
        sent, got = sent[:n], got[:n]
        inside = (sent >= since) & (sent < until)
        lags.append((got[inside] - sent[inside]) * 1000)
    return np.concatenate(lags).tolist() if lags else []


def _carried(call: dict[str, Any], since: float, until: float) -> bool:
    """The call was up, sending media, from before the window to its end."""
    sent = np.frombuffer(call["sends"], dtype=np.float64)
    return bool(len(sent)) and sent[0] <= since and sent[-1] >= until - 0.1


def _cycles(n: int, window: float) -> int:
    """Script cycles enough to keep a step's calls talking until they are hung up."""
    return math.ceil((0.5 + _spread(n) + SETTLE_S + window) / CYCLE_S) + 1


def _spread(n: int) -> float:
    return max(1.0, n / DIAL_RATE)


def _vobiz_lags(calls: list[dict[str, Any]], since: float, until: float) -> list[float]:
    """How late the fake Vobiz itself sent each frame against its 20 ms cadence (its own load)."""
    lags: list[np.ndarray[Any, Any]] = []
    for call in calls:
        sent = np.frombuffer(call["sends"], dtype=np.float64)
        if not len(sent):
            continue
        late = (sent - sent[0] - 0.02 * np.arange(len(sent))) * 1000
        late -= min(0.0, float(late.min()))
        lags.append(late[(sent >= since) & (sent < until)])
    return np.concatenate(lags).tolist() if lags else []


async def _collect(service: ServiceGroup, call_ids: set[str], wait_s: float = 60.0) -> dict[str, Any]:
    """What the service recorded, once every call in ``call_ids`` has ended there (or ``wait_s``)."""
    got: dict[str, Any] = {"lags": [], "turns": [], "taken": {}, "dropped": {}}
    deadline = time.monotonic() + wait_s
    while True:
        part = await service.report()
        got["lags"] += part["lags"]
        got["turns"] += part["turns"]
        got["taken"].update(part["taken"])
        got["dropped"].update(part["dropped"])
        if call_ids <= got["taken"].keys() or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.5)


async def _step(
    n: int, service: ServiceGroup, workers: _Workers, options: Options, idle_rss: int
) -> dict[str, Any]:
    window = options.window
    spread = _spread(n)
    t0 = time.monotonic() + 0.5
    since = t0 + spread + SETTLE_S
    until = since + window
    cycles = _cycles(n, window)
    rng = np.random.default_rng(n)
    starts = sorted(float(t0 + s) for s in rng.uniform(0, spread, n))
    k = len(workers.processes)
    jobs = [
        _Job(service.base, [(f"cap{n}-{i}", at) for i, at in enumerate(starts) if i % k == w], cycles,
             until + 0.2, since, until, options.deflate)
        for w in range(k)
    ]  # fmt: skip
    running = asyncio.ensure_future(workers.run(jobs, wait_s=until - time.monotonic() + 120))
    await asyncio.sleep(since - time.monotonic())
    cpu0, vobiz_cpu0, busy0 = service.cpu_seconds(), workers.cpu_seconds(), _machine_busy()
    redis0 = service.redis_cpu_seconds()
    rss_peak = 0
    while (left := until - time.monotonic()) > 0:
        rss_peak = max(rss_peak, service.rss())
        await asyncio.sleep(min(1.0, left))
    cpu1, vobiz_cpu1, busy1 = service.cpu_seconds(), workers.cpu_seconds(), _machine_busy()
    redis1 = service.redis_cpu_seconds()
    rss_peak = max(rss_peak, service.rss())
    calls = await running
    recorded = await _collect(service, {c["call_id"] for c in calls})
    frame_lag = _frame_lags(calls, recorded["taken"], since, until)
    loop_lag = [ms for t, ms in recorded["lags"] if since <= t < until]
    underruns = sum(1 for c in calls for t in c["underruns"] if since <= t < until)
    errors = [e for c in calls for e in c["protocol_errors"]]
    carried = sum(1 for c in calls if _carried(c, since, until) and c["call_id"] in recorded["taken"])
    overhead = overhead_ms(recorded["turns"], since=since, until=until)
    reaction = [ms for c in calls for ms in c["reaction_ms"]]
    dropped = sum(recorded["dropped"].values())
    result = {
        "calls": n,
        "window_s": window,
        "window_at": (since, until),
        "carried": carried,
        "end_reasons": dict(Counter(c["end_reason"] for c in calls)),
        "frames": len(frame_lag),
        "frame_lag_ms": stats(frame_lag, 50, 99),
        "loop_lag_ms": stats(loop_lag, 50, 99),
        "vobiz_lag_ms": stats(_vobiz_lags(calls, since, until), 50, 99),
        "underrun_ticks": underruns,
        "protocol_errors": len(errors),
        "protocol_error_examples": errors[:5],
        "failed_calls": [c["error"] for c in calls if "error" in c][:5],
        "inbound_dropped": dropped,
        "cpu_per_call_s": (cpu1 - cpu0) / (n * window),
        "service_cpu_share": (cpu1 - cpu0) / window,
        "redis_cpu_per_call_s": (redis1 - redis0) / (n * window),
        "vobiz_cpu_share": (vobiz_cpu1 - vobiz_cpu0) / window,
        # everything else on the machine (other people's work, this process, Redis, the kernel)
        "others_cpu_share": max(0.0, (busy1 - busy0) - (cpu1 - cpu0) - (vobiz_cpu1 - vobiz_cpu0)) / window,
        "rss_mib": rss_peak / 2**20,
        "mib_per_call": (rss_peak - idle_rss) / 2**20 / n,
        "turns": len(overhead),
        "overhead_ms": stats(overhead, 50, 95, 99),
        "barge_ins": len(reaction),
        "reaction_ms": stats(reaction, 50, 95),
    }
    vobiz99 = result["vobiz_lag_ms"]["p99"]
    # the load generator fell behind its own 20 ms cadence: the step measured it as much as the service
    result["vobiz_limited"] = vobiz99 is not None and vobiz99 >= TARGET_LAG_P99_MS
    lag99 = result["frame_lag_ms"]["p99"]
    result["passed"] = bool(
        lag99 is not None and lag99 < TARGET_LAG_P99_MS and underruns == 0 and not errors and carried == n
    )
    return result


def _cpu_sets(pin: bool) -> tuple[list[int] | None, list[int] | None]:
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, None
    return cpus[:1], cpus[1:]


async def _ramp(options: Options) -> dict[str, Any]:
    service_cpus, vobiz_cpus = _cpu_sets(options.pin)
    pool = _Workers(options.workers, vobiz_cpus)
    steps: list[dict[str, Any]] = []
    probe = SpeedProbe(service_cpus)  # the service CPU's speed in each window (``bench.speed``)
    probe.start()
    try:
        cycles = max(_cycles(n, options.window) for n in options.ramp)
        group = ServiceGroup(options.service_workers, cycles, service_cpus, options.profile)
        async with group as service:
            if options.warm_up:  # one whole call (caches, first-use costs), then the idle footprint
                t = time.monotonic() + 0.5
                warm_up = _Job(service.base, [(WARM_UP, t)], 1, None, t, t, options.deflate)
                await pool.run([warm_up], wait_s=120)
                await _collect(service, {WARM_UP})
            idle_rss = service.rss()

            async def step(n: int) -> dict[str, Any]:
                result = await _step(n, service, pool, options, idle_rss)
                steps.append(result)
                print(_row(result), file=sys.stderr, flush=True)
                return result

            passed, failed = 0, None
            for n in options.ramp:
                if (await step(n))["passed"]:
                    passed = n
                else:
                    failed = n
                    break
            for _ in range(options.refine if failed is not None else 0):
                mid = (passed + failed) // 2 if failed is not None else 0
                if failed is None or mid in (passed, failed) or failed - passed < 10:
                    break
                if (await step(mid))["passed"]:
                    passed = mid
                else:
                    failed = mid
    finally:
        pool.close()
        probe.stop()
    for s in steps:
        s["probe_ms"] = probe.median_ms(*s["window_at"])
    return {
        "steps": sorted(steps, key=lambda s: s["calls"]),
        "capacity": passed,
        "idle_rss_mib": idle_rss / 2**20,
        "pinned": {"service": service_cpus, "vobiz": vobiz_cpus},
        "vobiz_workers": options.workers,
        "service_workers": options.service_workers,
        "deflate": options.deflate,
    }


# ── report ──────────────────────────────────────────────────────────────────────────────────────


def run(options: Options = Options()) -> dict[str, Any]:
    """Everything: per-frame costs, then the ramp. JSON-serialisable (µs, ms, MiB, seconds)."""
    costs = inbound.run(options.frames)
    ramped = asyncio.run(_ramp(options))
    best = next((s for s in ramped["steps"] if s["calls"] == ramped["capacity"]), None)
    return {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "frame_cost": costs,
        **ramped,
        "targets": _targets(ramped["capacity"], best),
    }


def _targets(capacity: int, best: dict[str, Any] | None) -> list[dict[str, Any]]:
    def get(*keys: str) -> float | None:
        value: Any = best
        for key in keys:
            value = None if value is None else value[key]
        return None if value is None else float(value)

    def row(name: str, target: str, value: float | None, ok: bool) -> dict[str, Any]:
        return {"target": name, "wanted": target, "measured": value, "met": ok}

    mib, o95, r95 = get("mib_per_call"), get("overhead_ms", "p95"), get("reaction_ms", "p95")
    cpu = get("cpu_per_call_s")
    cpu_ms = None if cpu is None else cpu * 1000
    return [
        row("concurrent calls", f"≥ {TARGET_CALLS}", capacity, capacity >= TARGET_CALLS),
        row("service CPU per call-second (ms)", f"≤ {TARGET_CPU_MS_PER_CALL_S:g}", cpu_ms,
            cpu_ms is not None and cpu_ms <= TARGET_CPU_MS_PER_CALL_S),
        row("memory per call (MiB)", f"≤ {TARGET_MIB_PER_CALL:g}", mib, mib is not None and mib <= 1.0),
        row("overhead p95 (ms)", f"≤ {TARGET_OVERHEAD_P95_MS:g}", o95,
            o95 is not None and o95 <= TARGET_OVERHEAD_P95_MS),
        row("barge-in reaction p95 (ms)", f"≤ {TARGET_REACTION_P95_MS:g}", r95,
            r95 is not None and r95 <= TARGET_REACTION_P95_MS),
    ]  # fmt: skip


LAG_HEADER = (
    "| calls | frame lag p50 ms | p99 ms | max ms | loop lag p99 ms | underruns | protocol errors "
    "| dropped frames | fake Vobiz lag p99 ms | others' CPU % | passed |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)
COST_HEADER = (
    "| calls | service CPU ms per call-s | speed probe ms | service CPU % "
    "| MiB per call | overhead p50 ms | p95 ms | p99 ms | barge-in p50 ms | p95 ms | fake Vobiz CPU % |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _verdict(s: dict[str, Any]) -> str:
    return "yes" if s["passed"] else "no (fake Vobiz behind)" if s["vobiz_limited"] else "no"


def _lag_row(s: dict[str, Any]) -> str:
    f = s["frame_lag_ms"]
    return (
        f"| {s['calls']} | {fmt_ms(f['p50'])} | {fmt_ms(f['p99'])} | {fmt_ms(f['max'])} "
        f"| {fmt_ms(s['loop_lag_ms']['p99'])} | {s['underrun_ticks']} | {s['protocol_errors']} "
        f"| {s['inbound_dropped']} | {fmt_ms(s['vobiz_lag_ms']['p99'])} | {s['others_cpu_share'] * 100:.0f} "
        f"| {_verdict(s)} |"
    )


def _cost_row(s: dict[str, Any]) -> str:
    o, r = s["overhead_ms"], s["reaction_ms"]
    probe = s.get("probe_ms")
    return (
        f"| {s['calls']} | {s['cpu_per_call_s'] * 1000:.2f} | {'—' if probe is None else f'{probe:.2f}'} "
        f"| {s['service_cpu_share'] * 100:.0f} "
        f"| {s['mib_per_call']:.2f} | {fmt_ms(o['p50'])} | {fmt_ms(o['p95'])} | {fmt_ms(o['p99'])} "
        f"| {fmt_ms(r['p50'])} | {fmt_ms(r['p95'])} | {s['vobiz_cpu_share'] * 100:.0f} |"
    )


def _row(s: dict[str, Any]) -> str:
    """One line per step, printed as the ramp goes."""
    f, o = s["frame_lag_ms"], s["overhead_ms"]
    return (
        f"{s['calls']} calls: frame lag p99 {fmt_ms(f['p99'])} ms, {s['underrun_ticks']} underruns, "
        f"{s['protocol_errors']} protocol errors, service CPU {s['service_cpu_share'] * 100:.0f} % "
        f"({s['cpu_per_call_s'] * 1000:.2f} ms per call-s), "
        f"overhead p95 {fmt_ms(o['p95'])} ms, fake Vobiz lag p99 {fmt_ms(s['vobiz_lag_ms']['p99'])} ms, "
        f"others' CPU {s['others_cpu_share'] * 100:.0f} %: {_verdict(s)}"
    )


def hosts(result: dict[str, Any]) -> list[dict[str, Any]]:
    """ARITHMETIC, not measured: what the figures measured on one core imply for bigger hosts
    (one worker per core; the callers' side, the database and Redis elsewhere)."""
    best = next((s for s in result["steps"] if s["calls"] == result["capacity"]), None)
    if best is None or not result["pinned"]["service"]:
        return []  # no passing step, or the service was not held to one core: no per-core figure
    per_core = result["capacity"] / len(result["pinned"]["service"])
    cpu_ms = best["cpu_per_call_s"] * 1000
    return [
        {
            "cores": cores,
            "calls_by_capacity": int(cores * per_core),
            "calls_by_cpu": int(cores * 1000 / cpu_ms) if cpu_ms > 0 else None,
        }
        for cores in HOST_CORES
    ]


def to_markdown(result: dict[str, Any]) -> str:
    pinned = result["pinned"]
    where = (
        f"service on CPU {pinned['service']}, {result['vobiz_workers']} fake Vobiz processes on CPU "
        f"{pinned['vobiz']}"
        if pinned["service"]
        else f"service and {result['vobiz_workers']} fake Vobiz processes unpinned"
    )
    if result["service_workers"] > 1:
        where = f"{result['service_workers']} service workers on one port and one Redis; " + where
    lines = [
        f"Python {result['machine']['python']}, {result['machine']['cpus']} CPUs; {where}.",
        "",
        "Inbound path per 20 ms frame (in-process; parse = JSON + base64):",
        "",
        inbound.to_markdown(result["frame_cost"]),
        "",
        f"Concurrent calls (μ-law 8 kHz; window {result['steps'][0]['window_s']:g} s with all calls up; "
        f"idle RSS {result['idle_rss_mib']:.0f} MiB):",
        "",
        LAG_HEADER,
        *[_lag_row(s) for s in result["steps"]],
        "",
        COST_HEADER,
        *[_cost_row(s) for s in result["steps"]],
        "",
        f"Largest N passing (frame lag p99 < {TARGET_LAG_P99_MS:g} ms, no underrun, no protocol error, "
        "every call carried): "
        f"**{result['capacity']}**.",
        "",
        "| target | wanted | measured (at that N) | met |",
        "|---|---|---:|---|",
    ]
    for t in result["targets"]:
        value = t["measured"]
        shown = "—" if value is None else (f"{value:.2f}" if isinstance(value, float) else str(value))
        lines.append(f"| {t['target']} | {t['wanted']} | {shown} | {'yes' if t['met'] else 'no'} |")
    best = next((s for s in result["steps"] if s["calls"] == result["capacity"]), None)
    if best is not None and result["service_workers"] > 1:
        lines += [
            "",
            f"Redis (the call bus and the call rules, shared by the {result['service_workers']} workers): "
            f"{best['redis_cpu_per_call_s'] * 1000:.3f} ms of its CPU per call-second; one Redis "
            "thread would carry ~"
            + (f"{1 / best['redis_cpu_per_call_s']:.0f}" if best["redis_cpu_per_call_s"] > 0 else "∞")
            + " calls at that rate (arithmetic).",
        ]
    rows = hosts(result)
    if rows:
        lines += [
            "",
            "**Arithmetic, not measured**: bigger hosts, one worker per core, from the per-core figures "
            "above (capacity scales with cores: the workers share only Redis; callers, database and "
            "Redis on other machines):",
            "",
            "| host cores | calls (cores × capacity per core) | calls (cores × 1000 ÷ CPU ms per call-s) |",
            "|---:|---:|---:|",
            *[f"| {h['cores']} | {h['calls_by_capacity']} | {h['calls_by_cpu']} |" for h in rows],
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ramp", type=int, nargs="+", default=list(DEFAULT_RAMP), help="N per step")
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per step")
    parser.add_argument("--workers", type=int, default=2, help="fake Vobiz processes")
    parser.add_argument("--refine", type=int, default=3, help="bisection steps after the first failure")
    parser.add_argument("--frames", type=int, default=5000, help="frames timed per format (frame cost)")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin CPUs")
    parser.add_argument(
        "--no-deflate", dest="deflate", action="store_false", help="the fake Vobiz offers no compression"
    )
    parser.add_argument(
        "--service-workers", type=int, default=1,
        help="service worker processes on one port, sharing one core and a real Redis (serve --workers)",
    )  # fmt: skip
    parser.add_argument("--profile", metavar="PATH", help="run the service under cProfile; stats to PATH")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if (
        any(n <= 0 for n in args.ramp)
        or min(args.window, args.workers, args.frames, args.service_workers) <= 0
    ):
        parser.error("--ramp, --window, --workers, --service-workers and --frames must be positive")
    if args.profile and args.service_workers > 1:
        parser.error("--profile runs one service worker: drop --service-workers")
    options = Options(
        ramp=tuple(sorted(args.ramp)),
        window=args.window,
        workers=args.workers,
        refine=args.refine,
        frames=args.frames,
        pin=args.pin,
        deflate=args.deflate,
        profile=args.profile,
        service_workers=args.service_workers,
    )
    result = run(options)
    print(to_markdown(result))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
