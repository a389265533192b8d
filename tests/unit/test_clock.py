"""FakeClock: sleepers wake in deadline order at exactly their deadline."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from app.clock import Clock, FakeClock, SystemClock, run_blocking


async def test_sleepers_wake_in_order_at_their_deadlines() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    async with asyncio.TaskGroup() as tg:
        tg.create_task(sleeper("late", 0.3))
        tg.create_task(sleeper("early", 0.1))
        tg.create_task(sleeper("never", 5.0))
        await asyncio.sleep(0)
        await clock.advance(0.5)
        assert woke == [("early", 0.1), ("late", 0.3)]
        assert clock.now() == 0.5
        await clock.advance(4.5)
    assert woke[-1] == ("never", 5.0)


async def test_run_jumps_time_and_is_exact() -> None:
    clock = FakeClock()
    stamps: list[float] = []

    async def ticker() -> str:
        for _ in range(3000):  # one minute of 20 ms ticks
            await clock.sleep(0.02)
            stamps.append(clock.now())
        return "done"

    assert await clock.run(ticker()) == "done"
    assert len(stamps) == 3000
    assert abs(stamps[-1] - 60.0) < 1e-6
    assert clock.now() == stamps[-1]


async def test_run_detects_a_deadlock() -> None:
    import pytest

    clock = FakeClock()
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(RuntimeError, match="nothing is sleeping"):
        await clock.run(never)


async def test_hold_waits_for_work_off_the_loop() -> None:
    clock = FakeClock()

    async def worker() -> float:
        with clock.hold():
            await asyncio.to_thread(lambda: None)
        await clock.sleep(1.0)
        return clock.now()

    assert await clock.run(worker()) == 1.0


async def test_wall_time_follows_virtual_time() -> None:
    clock = FakeClock(wall_start=1_767_225_600.0)  # 2026-01-01 00:00:00 UTC
    assert clock.wall() == 1_767_225_600.0
    await clock.advance(61.5)
    assert clock.wall() == 1_767_225_661.5
    made = time.time()
    assert made <= FakeClock(5.0).wall() <= time.time()  # by default, the system's time when made


async def test_both_clocks_hold_and_run_blocking_work_without_asking_which_they_are() -> None:
    def blocking() -> str:
        time.sleep(0.05)  # real time passes in the thread
        return "done"

    async def work(clock: Clock) -> tuple[str, float]:
        with ThreadPoolExecutor(1) as pool:
            got = await run_blocking(clock, blocking, pool)
        return got, clock.now()

    fake = FakeClock()
    asleep = asyncio.ensure_future(fake.sleep(0.01))  # run would jump to it if nothing held
    assert await fake.run(work(fake)) == ("done", 0.0)
    asleep.cancel()
    system = SystemClock()
    with system.hold():  # a no-op: real time goes on
        before = system.now()
        got, after = await work(system)
    assert got == "done"
    assert after > before
    assert abs(system.wall() - time.time()) < 1.0


async def test_deadlines_lists_pending_sleepers() -> None:
    clock = FakeClock()
    async with asyncio.TaskGroup() as tg:
        late = tg.create_task(clock.sleep(2.0))
        tg.create_task(clock.sleep(0.5))
        await asyncio.sleep(0)
        assert clock.deadlines() == [0.5, 2.0]
        late.cancel()
        await asyncio.sleep(0)
        assert clock.deadlines() == [0.5]
        await clock.advance(0.5)
    assert clock.deadlines() == []
