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
