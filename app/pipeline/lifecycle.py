"""Who hears about each call's start and end: call records, metrics.

The media socket calls every :class:`CallListener` once when a call's session starts and once
when it has ended, however it ended (hang-up, ``stop``, a dropped socket, an error). A listener
must not raise; one that does is logged and the others still run. ``call_ended`` is awaited
shielded from cancellation, so a record is written even while the server shuts down.

A listener that is also a :class:`HangupListener` hears of a signed hang-up callback for a call
no session of this process carries (its process died, or another replica holds it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from app.pipeline.session import Agent, CallStats

log = logging.getLogger("app.lifecycle")


@dataclass(frozen=True, slots=True)
class CallInfo:
    call_id: str
    persona: str
    caller: str  # the caller's number, digits only ("" if unknown)
    called: str  # the number called, digits only ("" if unknown)
    started_at: float  # unix seconds (wall clock)


@dataclass(frozen=True, slots=True)
class CallOutcome:
    reason: str  # the session's end reason: "socket-closed", "hangup", "stream-stopped", "agent-hangup", ...
    ended_at: float  # unix seconds (wall clock)
    stats: CallStats
    agent: Agent  # a ``Conversation`` for real calls: transcript, tool calls, latency


class CallListener(Protocol):
    async def call_started(self, call: CallInfo) -> None: ...

    async def call_ended(self, call: CallInfo, outcome: CallOutcome) -> None: ...


@runtime_checkable
class HangupListener(Protocol):
    async def hangup_reported(self, call_id: str, cause: str, duration_s: float | None) -> None:
        """Vobiz reported the call's end (``HangupCause``, ``Duration`` in seconds if given)."""
        ...


async def notify_hangup(
    listeners: Sequence[object], call_id: str, cause: str, duration_s: float | None
) -> None:
    for listener in listeners:
        if isinstance(listener, HangupListener):
            try:
                await asyncio.shield(listener.hangup_reported(call_id, cause, duration_s))
            except Exception:  # logged; the callback is still answered
                log.exception("call listener failed at the hang-up callback", extra={"call_id": call_id})


async def notify_started(listeners: Sequence[CallListener], call: CallInfo) -> None:
    for listener in listeners:
        try:
            await listener.call_started(call)
        except Exception:  # a broken listener must not take the call down; it is logged
            log.exception("call listener failed at start", extra={"call_id": call.call_id})


async def notify_ended(listeners: Sequence[CallListener], call: CallInfo, outcome: CallOutcome) -> None:
    async def run_all() -> None:
        for listener in listeners:
            try:
                await listener.call_ended(call, outcome)
            except Exception:  # as above: logged, the other listeners still run
                log.exception("call listener failed at end", extra={"call_id": call.call_id})

    await asyncio.shield(run_all())
