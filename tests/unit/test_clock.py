"""FakeClock: sleepers wake in deadline order at exactly their deadline."""

from __future__ import annotations

import asyncio

from app.clock import FakeClock


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
