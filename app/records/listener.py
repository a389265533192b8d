"""``CallRecorder``: the ``CallListener`` that keeps a record of every call.

At the start it inserts the call's row as in progress, so a process that dies mid-call leaves
it; at the end, however the call ended, it writes the whole record. Those are its only writes:
nothing on the per-frame path. A write that fails or takes too long is raised to the lifecycle
notifier, which logs it with the call id and goes on; the error names no value of the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from app.clock import Clock
from app.pipeline.conversation import Conversation
from app.pipeline.latency import STAGES, TurnStamps
from app.pipeline.lifecycle import CallInfo, CallOutcome
from app.pipeline.usage import Prices, usage_summary
from app.records.owner import this_process
from app.records.record import (
    COMPLETED,
    IN_PROGRESS,
    CallRecord,
    DtmfEntry,
    ToolUse,
    TranscriptLine,
    TurnLatency,
    failover_entry,
)
from app.records.store import CallStore

START_TIMEOUT_S = 3.0  # the caller waits for this insert: a stuck database must not hold the call
END_TIMEOUT_S = 30.0  # the call is over; this only bounds a shutdown waiting for a dead database


class WebhookQueue(Protocol):
    """The post-call webhook (``app.postcall``), as the recorder sees it: when an ended call's
    delivery is due (unix seconds, on the webhook's own clock), and a nudge once it is queued."""

    def due_at(self, end_reason: str | None) -> float: ...

    def wake(self) -> None: ...


class RecordNotWritten(RuntimeError):
    """A call's record could not be written. Only the cause's type is kept: a driver's message
    may quote the row (numbers, transcript), and this error is logged."""


@dataclass(slots=True)
class _Turn:
    """A call's turn to write its record: held by one socket's session at a time."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # holding or waiting; the turn is forgotten at 0


class CallRecorder:
    """The writes of one call are serialised: a socket's session holds its call's turn from its
    start until its end is written, so a reconnect's socket (let in as soon as the dropped one
    has released its slot) writes its start only after the dropped socket's end, and its own end
    continues that record (``records.segments``)."""

    def __init__(
        self,
        store: CallStore,
        clock: Clock,
        prices: Prices | None = None,
        webhook: WebhookQueue | None = None,
    ) -> None:
        self.store = store
        self._clock = clock
        self._prices = prices if prices is not None else Prices()  # for the usage's cost estimate
        self._webhook = webhook  # queued with the record it sends, in the same transaction
        self._turns: dict[str, _Turn] = {}  # by call id
        self._holding: dict[int, CallInfo] = {}  # by id(): the sessions holding their call's turn

    async def call_started(self, call: CallInfo) -> None:
        with self._writing("start"):
            async with asyncio.timeout(START_TIMEOUT_S):  # the turn included: the caller waits
                await self._take_turn(call.call_id)
                self._holding[id(call)] = call  # the object is kept, so its id() stays its own
                await self.store.insert_started(started_record(call))

    async def call_ended(self, call: CallInfo, outcome: CallOutcome) -> None:
        held = self._holding.pop(id(call), None) is call  # False if the start gave up waiting
        try:
            with self._writing("end"):
                async with asyncio.timeout(END_TIMEOUT_S):
                    if not held:
                        await self._take_turn(call.call_id)
                        held = True
                    due = self._webhook.due_at(outcome.reason) if self._webhook else None
                    await self.store.save(ended_record(call, outcome, self._prices), webhook_due=due)
        finally:
            if held:
                self._give_turn(call.call_id)
        if self._webhook is not None:
            self._webhook.wake()

    async def _take_turn(self, call_id: str) -> None:
        turn = self._turns.setdefault(call_id, _Turn())
        turn.users += 1
        try:
            await turn.lock.acquire()
        except BaseException:  # timed out or cancelled while waiting: not holding it
            self._forget(call_id, turn)
            raise

    def _give_turn(self, call_id: str) -> None:
        turn = self._turns[call_id]
        turn.lock.release()
        self._forget(call_id, turn)

    def _forget(self, call_id: str, turn: _Turn) -> None:
        turn.users -= 1
        if turn.users == 0:
            del self._turns[call_id]

    async def hangup_reported(self, call_id: str, cause: str, duration_s: float | None) -> None:
        """An orphaned call's record is completed from Vobiz's hang-up callback."""
        with self._writing("hang-up"):
            async with asyncio.timeout(START_TIMEOUT_S):
                due = self._webhook.due_at("hangup") if self._webhook else None
                await self.store.complete_from_hangup(
                    call_id, cause, duration_s, self._clock.wall(), webhook_due=due
                )
        if self._webhook is not None:
            self._webhook.wake()

    @contextlib.contextmanager
    def _writing(self, when: str) -> Iterator[None]:
        """The write is held on the clock: on a virtual clock it takes no call time, as it takes
        little real time (the driver's work is off the loop, where virtual time would otherwise
        jump ahead)."""
        try:
            with self._clock.hold():
                yield
        except (SQLAlchemyError, OSError) as exc:  # OSError: the server cannot be reached
            raise RecordNotWritten(f"call record not written at the {when}: {type(exc).__name__}") from None


def started_record(call: CallInfo) -> CallRecord:
    """The row inserted when the call starts: held by this process (``records.owner``)."""
    return CallRecord(
        call.call_id,
        IN_PROGRESS,
        call.persona,
        call.caller,
        call.called,
        call.started_at,
        owner=this_process(),
    )


def ended_record(call: CallInfo, outcome: CallOutcome, prices: Prices | None = None) -> CallRecord:
    """The whole record of an ended call; a ``Conversation`` adds its transcript, tools, latency
    and usage (its cost estimated with ``prices``; none known: no cost)."""
    stats = outcome.stats
    origin = stats.started_at  # the call clock's reading when the session began
    base = dataclasses.replace(
        started_record(call),
        status=COMPLETED,
        owner="",  # no process holds an ended call
        ended_at=outcome.ended_at,
        end_reason=outcome.reason,
        agent=type(outcome.agent).__name__,
        recording=stats.recording,
        stats={
            "sockets": 1,  # summed when a reconnect continues the record (``records.segments``)
            "frames_in": stats.frames_in,
            "frames_out": stats.frames_out,
            "inbound_dropped": stats.inbound_dropped,
            "checkpoints_acked": stats.checkpoints_acked,
            "protocol_errors": dict(stats.protocol_errors),
            "unknown_events": dict(stats.unknown_events),
        },
    )
    agent = outcome.agent
    if not isinstance(agent, Conversation):
        return base
    tool_ctx = getattr(agent, "tool_ctx", None)  # made when the conversation starts running
    calls = tool_ctx.calls if tool_ctx is not None else []
    return dataclasses.replace(
        base,
        barge_ins=agent.barge_ins,
        false_interruptions=agent.false_interruptions,
        provider_errors=agent.provider_errors,
        preemptive_started=agent.preemptive_started,
        preemptive_committed=agent.preemptive_committed,
        preemptive_wasted=agent.preemptive_wasted,
        transcript=tuple(
            TranscriptLine(
                t=round(e.t - origin, 4), speaker=e.speaker, text=e.text, interrupted=e.interrupted
            )
            for e in agent.transcript
        ),
        tool_calls=tuple(ToolUse(id=c.id, name=c.name, arguments=c.arguments) for c in calls),
        latency=tuple(_turn_latency(stamps, origin) for _, stamps in sorted(agent.latency.turns.items())),
        failovers=tuple(
            failover_entry(round(f.t - origin, 4), f.stage, f.from_, f.to, f.reason)
            for f in agent.providers.failovers.events
        ),
        dtmf=tuple(
            DtmfEntry(t=round(e.t - origin, 4), digits=e.digits, purpose=e.purpose)
            for e in agent.keys.keypad.entries
        ),
        usage=usage_summary(agent.usage, prices or Prices(), agent.preemptive_wasted),
    )


def _turn_latency(stamps: TurnStamps, origin: float) -> TurnLatency:
    found: TurnLatency = {"turn": stamps.turn}
    for stage in STAGES:
        t: float | None = getattr(stamps, stage)
        found[stage] = None if t is None else round(t - origin, 4)
    found["interrupted"] = stamps.interrupted
    return found
