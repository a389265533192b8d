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

    def add(self, session: CallSession) -> None:
        previous = self._active.get(session.call_id)
        if previous is not None and previous is not session:
            # a reconnect (maxRetries) opens a new socket for the same call: the old one is done
            previous.end("replaced")
        self._active[session.call_id] = session

    def remove(self, session: CallSession) -> None:
        if self._active.get(session.call_id) is session:
            del self._active[session.call_id]
        self.finished.append(session.stats)

    def end(self, call_id: str, reason: str) -> bool:
        """End the call's session if this process has it; True if it did."""
        session = self._active.get(call_id)
        if session is None:
            return False
        session.end(reason)
        return True
