"""How fast the service's CPU runs right now: a fixed piece of work, timed in CPU time.

This machine is a shared VM whose cores slow down by up to ~2.5× from minute to minute (a
neighbour on the same physical core): the same pure-Python loop takes 0.26 s one second and
0.70 s the next, with nothing else running here. A CPU-seconds figure from one run is therefore
a figure about the neighbours as much as about the code. The probe runs beside the service, on
its CPU, 5 times a second: each time the same work (Python bytecode, dict and list operations,
a little numpy), timed with ``thread_time`` (CPU time, so the wait for the core while the
service uses it does not count). Its median in a step's window says which state the core was
in (here ~1.0–1.2 ms fast, ~2.0–2.3 ms slow). It is not a divisor: the service, much of whose
time is system calls and C, slows by ~15–25 % when the probe slows by 2×. Compare CPU figures
only between runs whose probe agrees (``bench/README.md``).
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from typing import Any

import numpy as np

PERIOD_S = 0.2


def _work() -> float:
    """The fixed work; returns its CPU seconds."""
    start = time.thread_time()
    table: dict[int, int] = {}
    acc = 0
    for i in range(4000):
        table[i & 255] = table.get(i & 255, 0) + i
        acc += len(str(i))
    block = np.arange(320, dtype=np.int16)
    for _ in range(50):
        acc += int(np.abs(block.astype(np.float64) * 0.5).sum())
    return time.thread_time() - start if acc else 0.0


def _probe(cpus: list[int] | None, stop: Any, out: Any) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    samples: list[tuple[float, float]] = []
    while not stop.is_set():
        samples.append((time.monotonic(), _work()))
        time.sleep(PERIOD_S)
    out.put(samples)


class SpeedProbe:
    """``start``, then ``stop``; then ``median_ms(since, until)`` for any window in between."""

    def __init__(self, cpus: list[int] | None) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop, self._out = context.Event(), context.Queue()
        self._process = context.Process(target=_probe, args=(cpus, self._stop, self._out), daemon=True)
        self.samples: list[tuple[float, float]] = []

    def start(self) -> None:
        self._process.start()

    def stop(self) -> None:
        """Stop probing; ``samples`` then holds every (monotonic time, CPU seconds) taken."""
        self._stop.set()
        self.samples = self._out.get(timeout=30)
        self._process.join(10)

    def median_ms(self, since: float, until: float) -> float | None:
        inside = [cpu for t, cpu in self.samples if since <= t < until]
        return statistics.median(inside) * 1000 if inside else None
