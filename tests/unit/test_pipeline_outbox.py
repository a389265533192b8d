"""The playout feeding a real ``Outbox`` behind a slow socket: no stale frame after a clear, and
"first audio" is when the writer takes the frame, not when it was queued."""

from __future__ import annotations

import asyncio

from app.clock import FakeClock
from app.pipeline.outbox import Outbox
from app.pipeline.playout import Playout
from app.pipeline.turns import Floor


class Line:
    """The playout's side of a call (its ``AudioSink``): frames and control through one
    ``Outbox``; the floor as the turn-taker would hold it."""

    def __init__(self, clock: FakeClock, max_audio: int) -> None:
        self.clock = clock
        self.outbox = Outbox(max_audio=max_audio)
        self.started: list[tuple[int, float]] = []  # marked frames, when queued
        self.written: list[tuple[int, float]] = []  # the first marked frame of a turn, when taken
        self.floor = Floor.SPEAKING
        self.playout = Playout(clock=clock, sink=self, turns=self, lead_s=0.1)

    async def send_frame(self, payload: bytes, mark: int | None = None) -> None:
        if mark is not None:
            self.started.append((mark, self.clock.now()))
        await self.outbox.put_audio(payload.decode(), mark)

    def checkpoint(self, name: str) -> None:
        self.outbox.put_audio_after_audio(f"checkpoint:{name}")

    def cut(self) -> None:
        self.floor = Floor.PAUSED  # the turn-taker silences the agent
        self.playout.cut()

    def resume(self) -> None:
        self.floor = Floor.SPEAKING
        self.playout.resume()

    def clear(self) -> None:
        self.outbox.drop_audio()
        self.outbox.put_control("clear")

    def speak(self, turn: int, prefix: str, n: int) -> None:
        audio = self.playout.open_segment(turn, f"t{turn}-s1", "one two three")
        self.playout.add_frames(audio, [f"{prefix}{i}".encode() for i in range(n)])
        self.playout.close_segment(audio)

    async def take(self) -> str:
        """What the socket writer gets next (the queue must not be empty); a marked frame is
        reported as the agent would be told (once per turn, as ``Conversation`` keeps it)."""
        item = await asyncio.wait_for(self.outbox.get(), timeout=1.0)
        if isinstance(item, str):
            return item
        if item.mark not in [turn for turn, _ in self.written]:
            self.written.append((item.mark, self.clock.now()))
        return item.message


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_frame_waiting_for_room_at_a_clear_is_never_sent_after_it() -> None:
    clock = FakeClock()
    line = Line(clock, max_audio=2)
    line.speak(1, "a", 20)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(line.playout.run())
        await settle()
        # the socket writes nothing: a0 and a1 fill the queue, a2 waits for room inside put_audio
        assert line.outbox.audio_backlog == 2
        line.floor = Floor.PAUSED
        assert line.playout.cut() is not None  # barge-in: clearAudio, dropping a0 and a1
        await settle()  # the drop made room: a2's put_audio wakes up
        assert await line.take() == "clear"
        assert line.outbox.audio_backlog == 0  # a2 was made before the clear: not queued after it
        line.playout.on_cleared()
        line.resume()
        await clock.advance(0.02)
        assert (await line.take()).startswith("a")  # the resumed audio does flow
        task.cancel()


async def test_first_audio_is_stamped_when_the_writer_takes_the_frame() -> None:
    clock = FakeClock()
    line = Line(clock, max_audio=50)
    line.speak(1, "a", 20)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(line.playout.run())
        await settle()
        await clock.advance(0.5)  # a slow socket: nothing is written for half a second
        assert line.started == [(1, 0.0)]  # queued at once
        assert line.written == []
        assert await line.take() == "a0"
        assert line.written == [(1, 0.5)]
        assert await line.take() == "a1"
        assert line.written == [(1, 0.5)]  # once per turn
        task.cancel()


async def test_first_audio_dropped_by_a_clear_is_stamped_when_audio_really_goes() -> None:
    clock = FakeClock()
    line = Line(clock, max_audio=50)
    line.speak(1, "a", 20)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(line.playout.run())
        await settle()
        line.cut()  # before the writer took anything: no audio of turn 1 went out
        assert await line.take() == "clear"
        assert line.written == []
        line.playout.on_cleared()
        line.resume()
        await clock.advance(0.3)
        assert await line.take() == "a0"
        assert line.written == [(1, 0.3)]
        task.cancel()
