"""``RedisFactStore`` keeps the ``FactStore`` contract on Redis: the same tests run against
fakeredis and against a real redis-server. An unreachable Redis is a ``FactsUnavailable`` that
never names the URL (it may carry a password)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import fakeredis
import pytest
from redis.asyncio import Redis

from app.facts import FactsUnavailable
from app.facts_redis import RedisFactStore, redis_client
from tests.servers import free_port


@pytest.fixture(params=["fakeredis", "redis-server"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[RedisFactStore]:
    if request.param == "fakeredis":
        client: Redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    else:
        client = redis_client(request.getfixturevalue("redis_url"))
    try:  # a prefix of its own: tests sharing the session's server never see each other's keys
        yield RedisFactStore(client, prefix=f"test-{secrets.token_hex(4)}:")
    finally:
        await client.aclose()


async def test_add_stores_only_what_is_absent(store: RedisFactStore) -> None:
    assert await store.add("nonce:a", "1", 60)
    assert not await store.add("nonce:a", "2", 60)
    assert await store.get("nonce:a") == "1"
    assert await store.get("nonce:b") is None


async def test_put_replaces_value_and_time_to_live(store: RedisFactStore) -> None:
    await store.put("ended:c", "hangup", 3600)
    await store.put("ended:c", "stop", 30)
    assert await store.get("ended:c") == "stop"
    ttl_ms = await store.client.pttl(store.prefix + "ended:c")
    assert 0 < ttl_ms <= 30_000


async def test_keys_live_under_the_prefix_with_their_time_to_live(store: RedisFactStore) -> None:
    assert await store.add("live:c", "s1@node", 2.5)
    assert await store.client.get(store.prefix + "live:c") == "s1@node"
    assert await store.client.get("live:c") is None
    assert 0 < await store.client.pttl(store.prefix + "live:c") <= 2500


async def test_remove_only_what_it_holds(store: RedisFactStore) -> None:
    await store.put("live:c", "socket-1", 60)
    assert not await store.remove("live:c", "socket-2")
    assert await store.get("live:c") == "socket-1"
    assert await store.remove("live:c", "socket-1")
    assert await store.get("live:c") is None
    assert not await store.remove("live:c", "socket-1")


async def test_a_time_to_live_must_be_positive(store: RedisFactStore) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await store.add("k", "v", 0)


@pytest.mark.parametrize("call", ["add", "put", "get", "remove"])
async def test_an_unreachable_redis_is_facts_unavailable_without_the_url(call: str) -> None:
    client = redis_client(f"redis://:pa55word-xyz@127.0.0.1:{free_port()}/0")  # nothing listens
    store = RedisFactStore(client)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "add": lambda: store.add("k", "v", 1),
        "put": lambda: store.put("k", "v", 1),
        "get": lambda: store.get("k"),
        "remove": lambda: store.remove("k", "v"),
    }
    try:
        with pytest.raises(FactsUnavailable) as caught:
            await calls[call]()
    finally:
        await client.aclose()
    assert "pa55word" not in str(caught.value)
    assert "127.0.0.1" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
