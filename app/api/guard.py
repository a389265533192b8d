"""Which media sockets a call may open, and which webhooks are replays.

The rules (README "Security model"; PROTOCOL.md §2 and §3.6 on ``maxRetries``):

- **One live socket per call.** A second socket for a call whose socket is live is refused
  before ``accept()`` (HTTP 403); the live call goes on untouched.
- **An ended call stays ended.** A call ends when the hang-up callback arrives, or when its
  socket ends for a reason that ends the call: Vobiz's ``stop``, the agent hanging up, the
  service refusing the stream (wrong call id, unsupported format). Its stream URL is refused
  from then on, so its record never changes again.
- **A dropped socket may come back.** A socket that merely dropped (:data:`RECONNECTABLE`: the
  peer closed it without ``stop``, the frame limit, a failure on our side) does not end the call:
  with ``maxRetries`` Vobiz opens a new socket (new ``streamId``, same ``callId``) to the same
  URL. It is let in while the token is valid and the hang-up callback has not come.
- **A webhook nonce is good once.** The nonces of accepted signed webhooks are remembered for
  ``REPLAY_WINDOW_SECONDS``; a request that carries one again is a replay.

The facts live in a :class:`~app.facts.FactStore`: this process's memory, or Redis shared by
every process and replica (``REDIS_URL``; the same keys, the same rules). A live socket's fact
also names the process that holds it (``holder``), so the call bus can reach its session.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from app.facts import FactStore

#: end reasons of a socket that dropped without ending its call (see the module's rules)
RECONNECTABLE = frozenset({"socket-closed", "message-too-big", "error"})

CallState = Literal["new", "live", "ended"]


@dataclass(frozen=True, slots=True)
class SocketLease:
    """The right of one socket to carry its call, from ``open_socket`` until ``socket_ended``;
    ``holder`` is the process that carries it (its call-bus id)."""

    call_id: str
    socket_id: str
    holder: str = ""

    @property
    def value(self) -> str:
        """The live fact's value: ``socket_id@holder``."""
        return f"{self.socket_id}@{self.holder}"

    @classmethod
    def parse(cls, call_id: str, value: str) -> SocketLease:
        socket_id, _, holder = value.partition("@")
        return cls(call_id, socket_id, holder)


class CallGuard:
    """``replay_window``: seconds a nonce and an ended call are remembered; ``socket_ttl``: the
    longest a live socket is believed without being released (a stream's ``streamTimeout``)."""

    def __init__(
        self, store: FactStore, *, replay_window: float, socket_ttl: float, holder: str = ""
    ) -> None:
        self.store = store
        self.holder = holder
        self.replay_window = replay_window
        self.socket_ttl = socket_ttl

    async def first_use(self, nonces: Sequence[str]) -> bool:
        """True, and the nonces are remembered, unless one of them was accepted before."""
        for nonce in nonces:
            if await self.store.get(f"nonce:{nonce}") is not None:
                return False
        fresh = True
        for nonce in nonces:
            fresh &= await self.store.add(f"nonce:{nonce}", "1", self.replay_window)
        return fresh

    async def call_state(self, call_id: str) -> CallState:
        if await self.store.get(f"ended:{call_id}") is not None:
            return "ended"
        if await self.store.get(f"live:{call_id}") is not None:
            return "live"
        return "new"

    async def open_socket(self, call_id: str) -> SocketLease | CallState:
        """A lease for a new socket of ``call_id``, or why not: ``"live"`` or ``"ended"``."""
        if await self.store.get(f"ended:{call_id}") is not None:
            return "ended"
        lease = SocketLease(call_id, secrets.token_hex(8), self.holder)
        if not await self.store.add(f"live:{call_id}", lease.value, self.socket_ttl):
            return "live"
        return lease

    async def live_socket(self, call_id: str) -> SocketLease | None:
        """The lease of the call's live socket (which process holds it), if one is live."""
        value = await self.store.get(f"live:{call_id}")
        return None if value is None else SocketLease.parse(call_id, value)

    async def forget(self, lease: SocketLease) -> bool:
        """Drop a lease whose holder is gone (no process answers for it); True if dropped."""
        return await self.store.remove(f"live:{lease.call_id}", lease.value)

    async def socket_ended(self, lease: SocketLease, reason: str) -> None:
        """The leased socket is over; unless it merely dropped, so is its call."""
        if reason not in RECONNECTABLE:
            await self.call_ended(lease.call_id, reason)
        await self.store.remove(f"live:{lease.call_id}", lease.value)

    async def call_ended(self, call_id: str, reason: str) -> None:
        """No socket may open for ``call_id`` any more (its hang-up callback, or a final end)."""
        await self.store.put(f"ended:{call_id}", reason, self.replay_window)
