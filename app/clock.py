"""Time, injected. The call path reads time and sleeps only through a ``Clock``.

Two clocks: :class:`SystemClock` (real time) and :class:`FakeClock` (virtual time, for tests and
the simulator's ``--virtual``). Code takes a ``Clock`` and never asks which one it has: what
differs between them (wall time, work off the loop) is a method of the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wall(self) -> float:
        """Unix seconds (tokens, call records). Moves with ``now``."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def hold(self) -> AbstractContextManager[None]:
        """Enter around work off the event loop (a thread, a database driver): the clock does not
        run ahead while it is pending. Time still passes on a real clock: there it does nothing."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def hold(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()


class FakeClock:
    """A virtual clock: ``sleep`` parks until ``advance`` moves time past the deadline.

    Sleepers wake in deadline order, and each wake-up gets a chance to run before
    time moves on, so timings observed by the code under test are exact. Wall time is the
    system's wall time when the clock was made (or ``wall_start``), advanced by virtual time:
    a simulated minute is a minute in a call's record.
    """

    def __init__(self, start: float = 0.0, *, wall_start: float | None = None) -> None:
        self._now = start
        self._wall_base = (time.time() if wall_start is None else wall_start) - start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._holds = 0

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._wall_base + self._now

    def deadlines(self) -> list[float]:
        """When the pending sleepers wake, earliest first (for tests that step time by hand)."""
        return sorted(deadline for deadline, _, fut in self._sleepers if not fut.done())

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """While held, ``run`` does not move time (work off the loop, e.g. in a thread, is pending)."""
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1

    async def run(self, awaitable: Awaitable[T], *, real_timeout: float = 60.0) -> T:
        """Await ``awaitable``, jumping time to the next sleeper whenever the loop is idle.

        A 60-second call on this clock takes as long as its CPU work, and every timing the
        code under test observes is exact. Runs on the current loop; raises ``TimeoutError``
        after ``real_timeout`` wall seconds, and ``RuntimeError`` if nothing can ever wake.
        """
        task = asyncio.ensure_future(awaitable)
        started = time.monotonic()
        stalled = 0.0
        try:
            while not task.done():
                await _settle()
                if task.done():
                    break
                if time.monotonic() - started > real_timeout:
                    raise TimeoutError("virtual-time run exceeded its wall-clock budget")
                if self._holds or not self._sleepers:
                    # work off the loop (a thread) may still wake something: wait in real time
                    if not self._holds:
                        stalled = stalled or time.monotonic()
                        if time.monotonic() - stalled > 2.0:
                            raise RuntimeError("virtual time: nothing is sleeping and the loop is idle")
                    await asyncio.sleep(0.001)
                    continue
                stalled = 0.0
                deadline, _, fut = heapq.heappop(self._sleepers)
                self._now = max(self._now, deadline)
                if not fut.done():
                    fut.set_result(None)
            return task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking each sleeper at its own deadline."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not fut.done():
                fut.set_result(None)
            for _ in range(5):
                await asyncio.sleep(0)
        self._now = target
        await asyncio.sleep(0)


async def _settle() -> None:
    """Yield until no other callback is ready to run on this loop."""
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)  # CPython's run queue; absent on other loops
    if ready is None:
        for _ in range(200):
            await asyncio.sleep(0)
        return
    idle = 0
    while idle < 2:
        await asyncio.sleep(0)
        idle = idle + 1 if not ready else 0


async def run_within(clock: Clock, seconds: float, work: Awaitable[None]) -> bool:
    """Await ``work`` for at most ``seconds`` of ``clock`` time; cancel it past that.

    True when it finished in time. An exception from ``work`` propagates (in an
    ``ExceptionGroup``); cancelling the caller cancels ``work`` too."""
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(_awaited(work), name="within")
        timer = tg.create_task(clock.sleep(seconds), name="within-timer")
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
        finished = task.done()
        task.cancel()
        timer.cancel()
    return finished


async def _awaited(work: Awaitable[None]) -> None:
    await work


async def run_blocking(clock: Clock, work: Callable[[], T], executor: Executor | None = None) -> T:
    """``work()`` in a worker thread of ``executor`` (None: the loop's default), off the event
    loop, inside ``clock.hold()``: blocking work (a database, a model) takes no virtual time, as
    it takes little real time. Cancelling the caller abandons the thread's result, not the work."""
    with clock.hold():
        if executor is None:
            return await asyncio.to_thread(work)  # context variables go along
        return await asyncio.get_running_loop().run_in_executor(executor, work)
