"""Short-lived facts the webhooks and media sockets must agree on: the webhook nonces already
accepted, the live media socket of each call, the calls that have ended.

:class:`FactStore` is shaped like the few Redis commands it will map to (``SET NX EX``, ``SET EX``,
``GET``, compare-and-delete), so a Redis-backed store shared by every replica can replace
:class:`MemoryFactStore`, which holds the facts of this process only. Every fact has a time to
live; the memory store is also bounded in entries.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Protocol

#: default bound of :class:`MemoryFactStore` (about 200 bytes an entry)
MAX_FACTS = 100_000


class FactsUnavailable(RuntimeError):
    """A shared store could not be reached (Redis down, a timeout). The message names the
    error's type only: never the store's URL, which may hold a password."""


class FactStore(Protocol):
    """Keys and values are short strings; ``ttl`` is seconds (> 0). A shared store raises
    :class:`FactsUnavailable` when it cannot answer."""

    async def add(self, key: str, value: str, ttl: float) -> bool:
        """Store ``key`` only if it holds nothing now; True if it was stored (``SET NX EX``)."""
        ...

    async def put(self, key: str, value: str, ttl: float) -> None:
        """Store ``key``, replacing any value and time to live (``SET EX``)."""
        ...

    async def get(self, key: str) -> str | None:
        """The value of ``key``, or None once it expired or was removed."""
        ...

    async def remove(self, key: str, value: str) -> bool:
        """Remove ``key`` only if it holds ``value`` (compare-and-delete); True if removed."""
        ...


class MemoryFactStore:
    """A :class:`FactStore` in this process's memory, for one replica.

    Expired facts are dropped as new ones arrive. At ``max_entries`` the fact closest to expiry
    is forgotten first (under a flood, a nonce of hours ago goes before a call's live socket);
    ``now`` is monotonic seconds (the app's clock). Methods never suspend: each is atomic on the
    event loop.
    """

    def __init__(self, now: Callable[[], float], max_entries: int = MAX_FACTS) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._now = now
        self._max = max_entries
        self._facts: dict[str, tuple[str, float]] = {}  # key -> (value, expires at)
        self._expiry: list[tuple[float, str]] = []  # heap; an entry is stale once its key moved on

    def __len__(self) -> int:
        return len(self._facts)

    async def add(self, key: str, value: str, ttl: float) -> bool:
        self._sweep()
        if key in self._facts:
            return False
        self._store(key, value, ttl)
        return True

    async def put(self, key: str, value: str, ttl: float) -> None:
        self._sweep()
        self._store(key, value, ttl)

    async def get(self, key: str) -> str | None:
        fact = self._facts.get(key)
        if fact is None or fact[1] <= self._now():
            return None
        return fact[0]

    async def remove(self, key: str, value: str) -> bool:
        fact = self._facts.get(key)
        if fact is None or fact[0] != value:
            return False
        del self._facts[key]
        return True

    def _store(self, key: str, value: str, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl!r}")
        if key not in self._facts:
            while len(self._facts) >= self._max:
                self._pop_soonest()
        expires = self._now() + ttl
        self._facts[key] = (value, expires)
        heapq.heappush(self._expiry, (expires, key))
        if len(self._expiry) > 2 * self._max + 64:  # stale entries of removed or replaced keys
            self._expiry = [(expires, k) for k, (_, expires) in self._facts.items()]
            heapq.heapify(self._expiry)

    def _sweep(self) -> None:
        now = self._now()
        while self._expiry and self._expiry[0][0] <= now:
            self._pop_soonest()

    def _pop_soonest(self) -> None:
        expires, key = heapq.heappop(self._expiry)
        fact = self._facts.get(key)
        if fact is not None and fact[1] == expires:
            del self._facts[key]
