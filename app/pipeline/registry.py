"""The calls this process is carrying, so a webhook (hang-up) can reach its session."""

from __future__ import annotations

from collections import deque

from app.pipeline.session import CallSession, CallStats


class CallRegistry:
    """Active sessions by call id, plus the stats of the most recent finished calls."""

    def __init__(self, keep_finished: int = 100) -> None:
        self._active: dict[str, CallSession] = {}
        self.finished: deque[CallStats] = deque(maxlen=keep_finished)

    def __len__(self) -> int:
        return len(self._active)

    def sessions(self) -> list[CallSession]:
        """The live sessions, as a list (safe to end them while going through it)."""
        return list(self._active.values())

    def get(self, call_id: str) -> CallSession | None:
        """The live session of ``call_id`` in this process, if any."""
        return self._active.get(call_id)

    def add(self, session: CallSession) -> bool:
        """Register ``session``; False (and nothing changes) if another session holds its call.

        A second stream on a live call (a REST ``start`` with another URL, or a replayed stream
        URL) must never evict the call's session: the caller of ``add`` refuses the newcomer."""
        held = self._active.get(session.call_id)
        if held is not None and held is not session:
            return False
        self._active[session.call_id] = session
        return True

    def remove(self, session: CallSession) -> None:
        self.discard(session)
        self.finished.append(session.stats)

    def discard(self, session: CallSession) -> None:
        """Unregister ``session`` without keeping its stats (its socket never opened)."""
        if self._active.get(session.call_id) is session:
            del self._active[session.call_id]

    def end(self, call_id: str, reason: str) -> bool:
        """End the call's session if this process has it; True if it did."""
        session = self._active.get(call_id)
        if session is None:
            return False
        session.end(reason)
        return True
