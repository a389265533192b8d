"""The call bus: an end request (a hang-up, a stream stopped, an operator's hang-up) reaches the
process that holds the call, wherever it landed.

- :class:`LocalBus` (no ``REDIS_URL``): one process alone; the call is here or nowhere.
- :class:`RedisBus`: each process subscribes to a Redis channel of its own, named by its bus id
  (its owner id, ``records.owner``, plus a suffix per app). The call's live-socket fact names
  that id (``CallGuard``), so ``end`` ends a session of this process directly, else publishes
  to the holder's channel; the holder ends its session and writes the call's record.

``end`` returns True when a process holds the call (it was told), False when none does: no live
socket, or a holder that no longer listens (PUBLISH reached no subscriber: it died). Only then
does the caller complete the call's record itself, so a call gets exactly one completed record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.api.guard import CallGuard
from app.facts_redis import PREFIX, reached
from app.pipeline.registry import CallRegistry
from app.records.owner import this_process

log = logging.getLogger("app.bus")

MAX_REASON = 40  # an end reason is a short word ("hangup", "stream-stopped", "operator-hangup")
MAX_CALL_ID = 128
BACKOFF_S = (0.1, 5.0)  # the listener's first and longest wait before it subscribes again


class CallBus(Protocol):
    async def end(self, call_id: str, reason: str) -> bool:
        """End the call's session wherever it is; True if a process holds the call.
        Raises ``FactsUnavailable`` when the shared store cannot be reached."""
        ...

    async def reclaim(self, call_id: str) -> bool:
        """The call's live socket is held by a process that is gone: drop its lease (a socket
        may open again for the call: Vobiz reconnects to another replica); True if dropped.
        Raises ``FactsUnavailable`` when the shared store cannot be reached."""
        ...


class LocalBus:
    """The calls of this process only (today's behaviour without ``REDIS_URL``)."""

    def __init__(self, registry: CallRegistry) -> None:
        self._registry = registry

    async def end(self, call_id: str, reason: str) -> bool:
        return self._registry.end(call_id, reason)

    async def reclaim(self, call_id: str) -> bool:
        return False  # the one process is the holder, and it is alive


def bus_id() -> str:
    """This app's bus id: the process's owner id and a suffix, so two apps in one process (the
    tests) each get their own channel."""
    return f"{this_process()}/{secrets.token_hex(3)}"


class RedisBus:
    """``listen`` (a task the app's lifespan owns) carries end requests to this process's
    sessions; ``end`` sends them. ``node`` is this app's bus id, also the guard's ``holder``."""

    def __init__(
        self, client: Redis, registry: CallRegistry, guard: CallGuard, node: str, prefix: str = PREFIX
    ) -> None:
        self._client = client
        self._registry = registry
        self._guard = guard
        self.node = node
        self._prefix = prefix
        self.subscribed = asyncio.Event()  # set while the listener is subscribed

    def channel(self, node: str) -> str:
        return f"{self._prefix}bus:{node}"

    async def end(self, call_id: str, reason: str) -> bool:
        if self._registry.end(call_id, reason):
            return True
        lease = await self._guard.live_socket(call_id)
        if lease is None:
            return False
        if lease.holder == self.node:
            # ours, but its session has not registered yet or has just ended: it writes the record
            return True
        message = json.dumps({"call_id": call_id, "reason": reason[:MAX_REASON]})
        with reached("PUBLISH"):
            receivers = int(await self._client.publish(self.channel(lease.holder), message))
        if receivers:
            return True
        # nobody listens on the holder's channel: that process is gone; its lease goes with it
        log.warning("call bus: the process holding the call is gone", extra={"call_id": call_id})
        await self._guard.forget(lease)
        return False

    async def reclaim(self, call_id: str) -> bool:
        lease = await self._guard.live_socket(call_id)
        if lease is None or lease.holder == self.node or not lease.holder:
            return False
        with reached("PUBSUB NUMSUB"):
            counts = await self._client.pubsub_numsub(self.channel(lease.holder))
        if counts and int(counts[0][1]):
            return False  # its holder listens: the call is live there
        log.warning("media socket: the process holding the call is gone; its lease is dropped",
                    extra={"call_id": call_id})  # fmt: skip
        return await self._guard.forget(lease)

    async def listen(self) -> None:
        """Subscribe to this app's channel and deliver what arrives, until cancelled. If Redis
        drops, subscribe again after a back-off (one warning when it drops, one when back)."""
        backoff, down = BACKOFF_S[0], False
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel(self.node))
                    self.subscribed.set()
                    if down:
                        log.warning("call bus: subscribed again")
                    backoff, down = BACKOFF_S[0], False
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                        if message is not None and message.get("type") == "message":
                            self._deliver(message.get("data"))
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                if not down:
                    log.warning("call bus: Redis unreachable (%s); subscribing again", type(exc).__name__)
                    down = True
            await asyncio.sleep(backoff)  # not the call clock: this is infrastructure, not a call
            backoff = min(backoff * 2, BACKOFF_S[1])

    def _deliver(self, data: object) -> None:
        try:
            request = json.loads(data) if isinstance(data, str | bytes) else None
        except ValueError:
            request = None
        call_id = request.get("call_id") if isinstance(request, dict) else None
        reason = request.get("reason") if isinstance(request, dict) else None
        if not (isinstance(call_id, str) and isinstance(reason, str)) or len(call_id) > MAX_CALL_ID:
            log.warning("call bus: malformed message ignored")
            return
        reason = reason[:MAX_REASON]
        ended = self._registry.end(call_id, reason)
        log.info("call bus: end request", extra={"call_id": call_id, "reason": reason, "ended": ended})
