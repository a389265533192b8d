""":class:`RedisFactStore`: the :class:`~app.facts.FactStore` every process and replica shares,
on Redis (``REDIS_URL``). Each method is one Redis command (compare-and-delete is a short Lua
script, atomic on the server); keys live under a prefix, so one Redis can serve other tenants.

Every Redis or socket error becomes :class:`~app.facts.FactsUnavailable`, whose message names
the error's type only: the URL may carry a password, and a driver's message may quote it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from redis.asyncio import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from app.facts import FactsUnavailable

PREFIX = "voice-agent:"

# KEYS[1] holds ARGV[1]? then delete it. GET and DEL in one step: no other client's value is lost
_COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def redis_client(url: str) -> Redis:
    """A client for ``url`` that gives up quickly: a webhook waits at most a few seconds for an
    unreachable Redis before it answers 503 (Vobiz retries), and a socket is refused as fast.
    No connection is made until the first command."""
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        health_check_interval=15,
    )


@contextlib.contextmanager
def reached(what: str) -> Iterator[None]:
    """Redis failures inside become :class:`FactsUnavailable` (type name only)."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise FactsUnavailable(f"Redis unreachable ({what}): {type(exc).__name__}") from None


def _ms(ttl: float) -> int:
    if ttl <= 0:
        raise ValueError(f"ttl must be positive, got {ttl!r}")
    return max(1, round(ttl * 1000))


class RedisFactStore:
    """Facts in Redis, shared by every process that uses the same server and prefix. Times to
    live are kept by Redis (``PX``, milliseconds), so the processes' clocks play no part."""

    def __init__(self, client: Redis, prefix: str = PREFIX) -> None:
        self.client = client
        self.prefix = prefix

    async def add(self, key: str, value: str, ttl: float) -> bool:
        with reached("SET NX"):
            return bool(await self.client.set(self.prefix + key, value, nx=True, px=_ms(ttl)))

    async def put(self, key: str, value: str, ttl: float) -> None:
        with reached("SET"):
            await self.client.set(self.prefix + key, value, px=_ms(ttl))

    async def get(self, key: str) -> str | None:
        with reached("GET"):
            value = await self.client.get(self.prefix + key)
        return None if value is None else str(value)

    async def remove(self, key: str, value: str) -> bool:
        with reached("compare-and-delete"):
            removed = await self.client.eval(_COMPARE_AND_DELETE, 1, self.prefix + key, value)
        return bool(removed)
