"""Playout pacing, checkpoints, cuts and what the caller heard, on the virtual clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from app.clock import FakeClock
from app.pipeline.playout import Playout, heard_part
from app.pipeline.turns import Floor


@dataclass
class Wire:
    """What the playout wrote, with the virtual time of each write (its ``AudioSink``), and
    the floor it reads (as the ``TurnTaker`` would hold it)."""

    clock: FakeClock
    log: list[tuple[float, str]] = field(default_factory=list)
    marks: list[int] = field(default_factory=list)
    floor: Floor = Floor.SPEAKING

    async def send_frame(self, payload: bytes, mark: int | None = None) -> None:
        self.log.append((round(self.clock.now(), 6), payload.decode()))
        if mark is not None:
            self.marks.append(mark)

    def checkpoint(self, name: str) -> None:
        self.log.append((round(self.clock.now(), 6), f"checkpoint:{name}"))

    def clear(self) -> None:
        self.log.append((round(self.clock.now(), 6), "clear"))


def make() -> tuple[FakeClock, Wire, Playout]:
    """A playout on a wire that writes at once, the floor with the agent speaking."""
    clock = FakeClock()
    wire = Wire(clock)
    playout = Playout(clock=clock, sink=wire, turns=wire, lead_s=0.1)
    return clock, wire, playout


def frames(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(n)]


async def run_for(clock: FakeClock, playout: Playout, seconds: float) -> None:
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(playout.run())
        await asyncio.sleep(0)
        await clock.advance(seconds)
        task.cancel()


@pytest.mark.parametrize(
    "heard", [(0.0, ""), (0.5, "one two"), (0.99, "one two three"), (1.0, "one two three four")]
)
def test_heard_part(heard: tuple[float, str]) -> None:
    assert heard_part("one two three four", heard[0]) == heard[1]


async def test_frames_go_out_at_real_time_with_a_lead() -> None:
    clock, wire, playout = make()
    audio = playout.open_segment(1, "t1-s1", "Hello there")
    playout.add_frames(audio, frames("a", 20))
    playout.close_segment(audio)
    await run_for(clock, playout, 1.0)
    times = [t for t, what in wire.log if what.startswith("a")]
    assert len(times) == 20
    assert times[:6] == [0.0] * 6  # the 100 ms lead goes out at once (frames 0-5)
    assert times[6] == pytest.approx(0.02)  # then one frame per 20 ms
    assert times[-1] == pytest.approx(0.28)
    assert wire.log[20][1] == "checkpoint:t1-s1"
    assert wire.log[20][0] == pytest.approx(0.28)
    assert wire.marks == [1]  # the segment's first frame tells when turn 1 became audible


async def test_a_cut_reports_the_heard_words_and_resumes_from_there() -> None:
    clock, wire, playout = make()
    audio = playout.open_segment(2, "t2-s1", "one two three four five six seven eight nine ten")
    playout.add_frames(audio, frames("b", 50))  # 1 s of audio
    playout.close_segment(audio)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(playout.run())
        await asyncio.sleep(0)
        await clock.advance(0.5)  # 25 frames have played
        wire.floor = Floor.PAUSED  # the turn-taker silenced the agent
        cut = playout.cut()
        assert cut is not None
        assert cut.heard == "one two three four five"
        assert cut.dropped_s == pytest.approx(0.5)
        sent_before = len([w for w in wire.log if w[1].startswith("b")])
        await clock.advance(0.5)
        assert len([w for w in wire.log if w[1].startswith("b")]) == sent_before  # paused: nothing
        playout.on_cleared()
        wire.floor = Floor.SPEAKING  # not an interruption
        playout.resume()
        await clock.advance(1.0)
        task.cancel()
    sent = [what for _, what in wire.log if what.startswith("b")]
    assert "clear" in [what for _, what in wire.log]
    resumed = sent[sent_before:]
    assert resumed[0] == "b25"
    assert resumed[-1] == "b49"
    assert wire.log[-1][1] == "checkpoint:t2-s1~1"
    assert wire.marks == [2, 2]  # the first frame of the segment, then of its rest after the cut
    assert playout.on_played("t2-s1~1") is not None
    assert playout.heard_text(2) == "one two three four five six seven eight nine ten"


async def test_new_audio_waits_for_cleared_audio_or_the_backstop() -> None:
    clock, wire, playout = make()
    audio = playout.open_segment(3, "t3-s1", "long reply")
    playout.add_frames(audio, frames("c", 50))
    playout.close_segment(audio)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(playout.run())
        await asyncio.sleep(0)
        await clock.advance(0.2)
        wire.floor = Floor.PAUSED
        assert playout.cut() is not None
        wire.floor = Floor.LISTENING  # an interruption: the turn is abandoned
        playout.drop_turn(3)
        fresh = playout.open_segment(4, "t4-s1", "new")
        playout.add_frames(fresh, frames("d", 5))
        playout.close_segment(fresh)
        await clock.advance(0.9)
        assert not [w for w in wire.log if w[1].startswith("d")]  # held: no clearedAudio yet
        await clock.advance(0.2)  # the 1 s backstop passes
        task.cancel()
    first_new = next(t for t, what in wire.log if what.startswith("d"))
    assert first_new == pytest.approx(1.2)


async def test_played_segments_count_as_heard_even_before_their_ack() -> None:
    clock, _, playout = make()
    for i, text in enumerate(["First sentence.", "Second one here."]):
        audio = playout.open_segment(5, f"t5-s{i}", text)
        playout.add_frames(audio, frames(f"e{i}-", 10))
        playout.close_segment(audio)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(playout.run())
        await asyncio.sleep(0)
        await clock.advance(0.3)  # 15 frames played: all of the first, half the second
        cut = playout.cut()
        task.cancel()
    assert cut is not None
    assert cut.heard == "First sentence. Second"


async def test_nothing_is_sent_while_the_floor_is_paused_even_with_nothing_cut() -> None:
    # the floor, not a copy in the playout, says when the agent is paused: audio queued after a
    # cut that found nothing to silence still waits for the turn-taker's decision
    clock, wire, playout = make()
    wire.floor = Floor.PAUSED
    assert playout.cut() is None  # nothing audible or queued
    audio = playout.open_segment(6, "t6-s1", "Later words")
    playout.add_frames(audio, frames("f", 10))
    playout.close_segment(audio)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(playout.run())
        await asyncio.sleep(0)
        await clock.advance(0.5)
        assert wire.log == []
        wire.floor = Floor.SPEAKING
        playout.resume()
        await asyncio.sleep(0)
        await clock.advance(0.5)
        task.cancel()
    sent = [t for t, what in wire.log if what.startswith("f")]
    assert len(sent) == 10
    assert sent[0] == pytest.approx(0.5)  # at once on the resume


def make_chunked(chunk: int = 3) -> tuple[FakeClock, Wire, Playout]:
    clock = FakeClock()
    wire = Wire(clock)
    return clock, wire, Playout(clock=clock, sink=wire, turns=wire, lead_s=0.1, chunk=chunk)


async def test_chunks_of_a_segment_go_out_as_one_message_each_at_the_pace_of_their_first_frame() -> None:
    clock, wire, playout = make_chunked()
    audio = playout.open_segment(1, "t1-s1", "Hello there")
    playout.add_frames(audio, frames("a", 20))
    playout.close_segment(audio)
    await run_for(clock, playout, 1.0)
    sent = [(t, what) for t, what in wire.log if what.startswith("a")]
    # 20 frames in 7 messages; the last segment chunk is short, and never mixed with the next one
    assert [what for _, what in sent] == ["a0a1a2", "a3a4a5", "a6a7a8", "a9a10a11", "a12a13a14",
                                          "a15a16a17", "a18a19"]  # fmt: skip
    # a message leaves when its first frame is due (100 ms lead): frames 0, 3 at once, 6 at 20 ms
    assert [t for t, _ in sent] == pytest.approx([0.0, 0.0, 0.02, 0.08, 0.14, 0.2, 0.26])
    assert wire.log[-1][1] == "checkpoint:t1-s1"
    assert wire.log[-1][0] == pytest.approx(0.26)
    assert wire.marks == [1]


async def test_a_chunk_never_waits_for_frames_still_being_made() -> None:
    clock, wire, playout = make_chunked()
    audio = playout.open_segment(1, "t1-s1", "Hello")
    playout.add_frames(audio, frames("a", 1))
    await run_for(clock, playout, 0.1)
    assert [what for _, what in wire.log] == ["a0"]  # the first audio goes at once, alone


async def test_a_cut_inside_a_chunk_counts_the_heard_frames_not_the_messages() -> None:
    clock, wire, playout = make_chunked()
    audio = playout.open_segment(2, "t2-s1", "one two three four five six seven eight nine ten")
    playout.add_frames(audio, frames("b", 50))  # 1 s of audio
    playout.close_segment(audio)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(playout.run())
        await asyncio.sleep(0)
        await clock.advance(0.5)  # 25 frames have played; frames up to b32 went out (b30b31b32)
        wire.floor = Floor.PAUSED
        cut = playout.cut()
        assert cut is not None
        assert cut.heard == "one two three four five"
        assert cut.dropped_s == pytest.approx(0.5)
        playout.on_cleared()
        wire.floor = Floor.SPEAKING
        playout.resume()
        await clock.advance(1.0)
        task.cancel()
    after = [what for _, what in wire.log][[what for _, what in wire.log].index("clear") + 1 :]
    assert after[0] == "b25b26b27"  # the unheard rest, from the frame the caller had reached
    assert after[-2:] == ["b49", "checkpoint:t2-s1~1"]  # 25 frames: 8 chunks of 3, then 1


def test_a_chunk_is_at_least_one_frame() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        make_chunked(0)
