"""The throwaway Redis the scale-out tests rely on is a real server that speaks the commands used."""

from __future__ import annotations

import redis.asyncio as aioredis


async def test_the_test_redis_is_a_real_server(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.set("probe", "1", nx=True, px=5000) is True
        assert await client.set("probe", "2", nx=True, px=5000) is None  # SET NX refuses a held key
        info = await client.info("server")
        assert int(str(info["redis_version"]).split(".")[0]) >= 6
    finally:
        await client.aclose()
