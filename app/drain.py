"""Graceful drain: what a process that was asked to stop (SIGTERM) does, and when.

A pure state machine: time comes in as an argument (seconds on a monotonic clock), so the
schedule is tested with plain numbers; ``app.server`` polls it and acts on each phase.

1. ``begin``: the process stops being ready (``/readyz`` answers 503, the load balancer stops
   sending calls) but serves on: live calls, their webhooks, and any call still routed here.
2. No call live: the process exits.
3. ``timeout_s`` after ``begin``, calls still live end politely (``CLOSE``): the agent cuts what
   it was saying, says its shutdown line and hangs up.
4. ``closing_s`` later, calls still live end at once (``END``): a closing line that cannot be
   synthesized or heard never holds the process.
5. ``finish_s`` after that the process exits whatever is left (a call's end is bounded by the
   session's own end grace; this is the last backstop).

So a process exits at most ``timeout_s + closing_s + finish_s`` after SIGTERM: an orchestrator's
kill deadline (Kubernetes ``terminationGracePeriodSeconds``) should be at least ``deadline_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

CLOSING_S = 15.0  # for a closing line to be synthesized, heard, and the call hung up
FINISH_S = 5.0  # for the sessions to finish once ended (their end grace is 2 s)


class DrainPhase(Enum):
    SERVE = "serve"  # not draining: ready
    WAIT = "wait"  # draining: live calls go on
    CLOSE = "close"  # drain timed out: each live call says its closing line and hangs up
    END = "end"  # the closing lines had their time: calls still live end now
    EXIT = "exit"  # nothing left to wait for: the process stops


@dataclass(slots=True)
class Drain:
    """The drain schedule of one process. ``timeout_s``: how long live calls may go on after
    ``begin`` (``DRAIN_TIMEOUT``)."""

    timeout_s: float = 300.0
    closing_s: float = CLOSING_S
    finish_s: float = FINISH_S
    started_at: float | None = None

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    @property
    def deadline_s(self) -> float:
        """The longest a drain takes, from ``begin`` to ``EXIT``."""
        return self.timeout_s + self.closing_s + self.finish_s

    def begin(self, now: float) -> bool:
        """Start draining at ``now``; False if it had already begun (a second request)."""
        if self.started_at is not None:
            return False
        self.started_at = now
        return True

    def phase(self, now: float, live_calls: int) -> DrainPhase:
        """What to do at ``now`` with ``live_calls`` calls still live. ``CLOSE`` and ``END`` hold
        from their time on: a call that started after them is closed or ended too."""
        if self.started_at is None:
            return DrainPhase.SERVE
        if live_calls == 0:
            return DrainPhase.EXIT
        elapsed = now - self.started_at
        if elapsed >= self.deadline_s:
            return DrainPhase.EXIT
        if elapsed >= self.timeout_s + self.closing_s:
            return DrainPhase.END
        if elapsed >= self.timeout_s:
            return DrainPhase.CLOSE
        return DrainPhase.WAIT
