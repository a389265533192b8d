"""``Playout``: agent audio to Vobiz at real-time pace, and what the caller actually heard.

Frames (20 ms, already encoded) are sent a small ``lead`` ahead of the caller's ear, so a
``clearAudio`` silences the phone at once instead of after seconds of queued audio. Each
sentence is one ``Segment`` followed by a ``checkpoint``; Vobiz's ``playedStream`` confirms it
was heard. On a cut the played share of the current segment is estimated from elapsed time.

After a cut, new audio is held until ``clearedAudio`` (or a ``backstop_s`` timeout), because
audio sent into an in-flight flush is partly dropped. While the ``TurnTaker``'s floor is
``PAUSED`` (a cut, not yet decided) nothing is sent: the floor is read, never copied.

A held turn (a preemptive reply, prepared before the caller's turn surely ended) keeps its
segments aside: ``hold(turn)`` before its first sentence, ``release(turn)`` queues them to play
at once, ``drop_turn`` forgets them. The pacing loop never sees them, so it costs nothing there.

Pacing and the heard-text arithmetic count 20 ms frames; up to ``chunk`` of them
(of one segment, so a checkpoint still follows its sentence) go out as one ``playAudio``.

The playout writes through one ``AudioSink`` (frame, checkpoint, clear). The first frame of
each segment carries its turn as a ``mark``; the sink reports when the socket writer takes a
marked frame (the moment the turn became audible), so the playout keeps no per-turn state.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from app.clock import Clock
from app.pipeline.turns import Floor

FRAME_S = 0.02


@dataclass(slots=True)
class SegmentAudio:
    """One sentence's encoded frames; the producer appends, segments read from an offset."""

    frames: list[bytes] = field(default_factory=list)
    complete: bool = False  # no more frames will be added


@dataclass(slots=True)
class Segment:
    name: str  # checkpoint name, unique per socket
    turn: int
    text: str
    audio: SegmentAudio = field(default_factory=SegmentAudio)
    offset: int = 0  # first frame of ``audio`` this segment plays (after a cut: the unheard rest)
    sent: int = 0  # frames written to the socket
    first_index: int | None = None  # playout index of its first frame once sent
    ack_due: float | None = None  # once its checkpoint is sent: when a missing ack counts as lost

    @property
    def total(self) -> int:
        return len(self.audio.frames) - self.offset

    @property
    def complete(self) -> bool:
        return self.audio.complete


@dataclass(frozen=True, slots=True)
class Cut:
    turn: int
    heard: str  # what the caller heard of the turn's reply so far
    dropped_s: float  # seconds of audio that were queued but not heard


class AudioSink(Protocol):
    """Where the playout's audio goes (the call's socket, through ``CallIO``)."""

    async def send_frame(self, payload: bytes, mark: int | None = None) -> None:
        """Queue encoded audio (whole 20 ms frames, the playout's ``chunk`` at most) as one
        ``playAudio``. A ``mark`` is reported back to the agent when the socket writer takes
        it, and never if a ``clear`` drops it first."""
        ...

    def checkpoint(self, name: str) -> None:
        """After the audio queued so far; Vobiz acks it with ``playedStream``."""
        ...

    def clear(self) -> None:
        """Drop unsent audio and have Vobiz flush what it queued."""
        ...


class HasFloor(Protocol):
    """Who has the floor (the ``TurnTaker``)."""

    @property
    def floor(self) -> Floor: ...


def heard_part(text: str, fraction: float) -> str:
    """The words of ``text`` heard when ``fraction`` of its audio has played (rounded down)."""
    words = text.split()
    keep = math.floor(len(words) * min(max(fraction, 0.0), 1.0) + 1e-9)
    return " ".join(words[:keep])


class Playout:
    def __init__(
        self,
        *,
        clock: Clock,
        sink: AudioSink,
        turns: HasFloor,
        lead_s: float = 0.16,
        backstop_s: float = 1.0,
        ack_margin_s: float = 2.0,
        chunk: int = 1,
    ) -> None:
        """``sink``: where frames, checkpoints and clears go. ``turns``: whose floor says when
        the audio is paused. ``ack_margin_s``: how long after its audio should have played a
        segment's missing ``playedStream`` is taken as lost (see ``expire_acks``).
        ``chunk``: up to this many 20 ms frames of one segment go out as one
        ``playAudio`` (fewer when fewer are ready: the first audio never waits for more)."""
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1 frame, got {chunk}")
        self.chunk = chunk
        self._clock = clock
        self._sink = sink
        self._turns = turns
        self.lead_s = lead_s
        self.backstop_s = backstop_s
        self.ack_margin_s = ack_margin_s
        self.acks_lost = 0  # segments taken as heard because their ack never came
        self._queue: deque[Segment] = deque()  # not yet fully sent
        self._held: dict[int, list[Segment]] = {}  # held turn -> its segments, not to play yet
        self._unacked: dict[str, Segment] = {}  # sent (at least partly), not yet acknowledged
        self._heard: dict[int, list[str]] = {}  # turn -> texts of segments fully heard
        self._wake = asyncio.Event()
        self._burst_t0 = 0.0
        self._burst_sent = 0
        self._index = 0  # playout index of the next frame sent
        self._burst_first = 0  # playout index of the burst's first frame
        self._hold_until: float | None = None
        self._resumes = 0

    # ── producer side ──

    def open_segment(self, turn: int, name: str, text: str) -> SegmentAudio:
        """Queue a sentence; the caller fills the returned audio as it is synthesized."""
        segment = Segment(name, turn, text)
        held = self._held.get(turn)
        if held is not None:
            held.append(segment)
        else:
            self._queue.append(segment)
        return segment.audio

    def hold(self, turn: int) -> None:
        """Keep ``turn``'s segments (opened from now on) aside until ``release`` or ``drop_turn``."""
        self._held.setdefault(turn, [])

    def release(self, turn: int) -> None:
        """Queue the held ``turn``'s segments (and those opened later) to play now."""
        held = self._held.pop(turn, None)
        if held:
            self._queue.extend(held)
            self._wake.set()

    def add_frames(self, audio: SegmentAudio, frames: list[bytes]) -> None:
        audio.frames.extend(frames)
        self._wake.set()

    def close_segment(self, audio: SegmentAudio) -> None:
        audio.complete = True
        self._wake.set()

    # ── state ──

    def pending(self, turn: int) -> bool:
        """Audio of ``turn`` is queued, or sent and not yet acknowledged."""
        return any(s.turn == turn for s in self._queue) or any(s.turn == turn for s in self._unacked.values())

    def settled(self) -> bool:
        """Everything queued has been sent and acknowledged (the caller heard it all)."""
        return not self._queue and not self._unacked

    def played_index(self, now: float) -> int:
        """How many frames (playout index) the caller has heard by ``now``."""
        elapsed = max(0, math.floor((now - self._burst_t0) / FRAME_S + 1e-9))
        return self._burst_first + min(self._burst_sent, elapsed)

    def backlog_s(self) -> float:
        """Seconds of audio queued or sent that the caller has not heard yet."""
        unsent = sum(max(0, s.total - s.sent) for s in self._queue)
        unsent += sum(s.total for held in self._held.values() for s in held)
        unheard = self._index - self.played_index(self._clock.now())
        return (unsent + unheard) * FRAME_S

    async def drain(self, limit_s: float, stop: Callable[[], bool] = lambda: False) -> None:
        """Return once everything queued was heard (``settled``), ``stop()`` holds, or at ``limit_s``."""
        deadline = self._clock.now() + limit_s
        while not self.settled() and not stop() and self._clock.now() < deadline:
            await self._clock.sleep(FRAME_S)

    def heard_text(self, turn: int) -> str:
        return " ".join(self._heard.get(turn, []))

    # ── Vobiz's answers ──

    def on_played(self, name: str) -> Segment | None:
        """A ``playedStream``: the segment was heard in full."""
        segment = self._unacked.pop(name, None)
        if segment is not None:
            self._heard.setdefault(segment.turn, []).append(segment.text)
        return segment

    def expire_acks(self, now: float) -> list[Segment]:
        """Segments whose ``playedStream`` is overdue at ``now``, taken as heard in full.

        Vobiz may never ack a checkpoint (PROTOCOL.md §3.3); without this backstop the turn
        would never finish, so no reprompt and no hang-up after a goodbye. A segment is due
        ``ack_margin_s`` after its last frame should have played; call this every tick."""
        late = [s for s in self._unacked.values() if s.ack_due is not None and s.ack_due <= now]
        for segment in late:
            self.acks_lost += 1
            self.on_played(segment.name)
        return late

    def on_cleared(self) -> None:
        self._hold_until = None
        self._wake.set()

    # ── barge-in ──

    def cut(self) -> Cut | None:
        """Silence the caller's ear now; the unheard rest stays queued, and waits while the
        floor is ``PAUSED``.

        Follow with ``resume`` (it was not an interruption) or ``drop_turn`` (it was).
        Returns None when nothing was audible or queued.
        """
        live = [*self._unacked.values(), *[s for s in self._queue if s.name not in self._unacked]]
        if not live:
            return None
        now = self._clock.now()
        played = self.played_index(now)
        turn = live[0].turn
        partial: list[str] = []
        rest: list[Segment] = []
        dropped = 0
        for segment in live:
            done = 0
            if segment.first_index is not None:
                done = max(0, min(segment.sent, played - segment.first_index))
            if segment.complete and done >= segment.total:
                self._heard.setdefault(segment.turn, []).append(segment.text)  # played, ack pending
                continue
            if done:
                partial.append(heard_part(segment.text, done / max(segment.total, 1)))
            self._resumes += 1
            name = f"{segment.name.split('~')[0]}~{self._resumes}"
            rest.append(Segment(name, segment.turn, segment.text, segment.audio, segment.offset + done))
            dropped += segment.total - done
        heard = " ".join([*self._heard.get(turn, []), *[p for p in partial if p]])
        self._queue = deque(rest)
        self._unacked.clear()
        self._burst_sent = 0
        self._burst_first = self._index
        self._sink.clear()
        self._hold_until = now + self.backstop_s
        return Cut(turn, heard, dropped * FRAME_S)

    def resume(self) -> None:
        """Play on from the cut (a false interruption; the floor is no longer ``PAUSED``)."""
        self._wake.set()

    def drop_turn(self, turn: int) -> None:
        """Forget all audio of an abandoned turn (already cut, never audible, or held)."""
        self._held.pop(turn, None)
        self._queue = deque(s for s in self._queue if s.turn != turn)
        for name in [n for n, s in self._unacked.items() if s.turn == turn]:
            del self._unacked[name]
        self._wake.set()

    # ── the pacing task ──

    async def run(self) -> None:
        """Send frames as their time comes; never returns (cancel it with the call)."""
        clock, turns = self._clock, self._turns
        while True:
            if self._hold_until is not None:
                if clock.now() < self._hold_until:
                    await clock.sleep(min(FRAME_S, self._hold_until - clock.now()))
                    continue
                self._hold_until = None  # backstop: clearedAudio never came
            segment = None if turns.floor is Floor.PAUSED else self._next_segment()
            if segment is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = clock.now()
            if self._burst_sent == 0 or now >= self._burst_t0 + self._burst_sent * FRAME_S:
                # the caller's buffer ran dry: a new burst starts playing as it arrives
                self._burst_first = self._index
                self._burst_t0 = now
                self._burst_sent = 0
            due = self._burst_t0 + self._burst_sent * FRAME_S - self.lead_s
            if now < due:
                await clock.sleep(due - now)
                continue  # re-check: a cut may have happened while waiting
            await self._send_next(segment)

    def _next_segment(self) -> Segment | None:
        while self._queue:
            head = self._queue[0]
            if head.sent < head.total:
                return head
            if head.complete:
                self._queue.popleft()
                if head.sent:
                    # its last frame plays when the burst's frames so far have played
                    ends = self._burst_t0 + (self._index - self._burst_first) * FRAME_S
                    head.ack_due = max(ends, self._clock.now()) + self.ack_margin_s
                    self._sink.checkpoint(head.name)
                continue  # a segment with no audio (a failed synthesis) was never heard
            return None  # the head is still being synthesized
        return None

    async def _send_next(self, segment: Segment) -> None:
        if segment.first_index is None:
            segment.first_index = self._index
            self._unacked[segment.name] = segment
        sent = segment.sent
        count = min(self.chunk, segment.total - sent)
        start = segment.offset + sent
        frames = segment.audio.frames
        payload = frames[start] if count == 1 else b"".join(frames[start : start + count])
        segment.sent = sent + count
        self._index += count
        self._burst_sent += count
        # a segment's first frame (after a cut: of its unheard rest) tells when its turn is heard
        await self._sink.send_frame(payload, None if sent else segment.turn)
