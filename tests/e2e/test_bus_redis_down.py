"""Redis going away mid-call never takes a call down: the call plays on and ends, its release is
logged (not raised), its record is written; the bus's listener subscribes again once Redis is
back, and shuts down cleanly with the app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import ExitStack

import pytest
from redis.asyncio import Redis

from app.api.bus import RedisBus
from app.config import Settings
from app.main import create_app
from app.records.record import COMPLETED
from app.records.store import CallStore
from tests.e2e.test_call_bus import live_call
from tests.e2e.test_media_socket import media_frame, next_play, wait_finished
from tests.redis_server import redis_server
from tests.servers import free_port, run_server


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not so after 10 s: {what}")


async def test_a_call_outlives_redis_and_the_bus_subscribes_again(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    caplog.set_level(logging.WARNING)
    app = create_app(make_settings(redis_url=f"redis://127.0.0.1:{port}/0"))
    bus = app.state.ctx.bus
    records: CallStore = app.state.call_records
    assert isinstance(bus, RedisBus)
    with ExitStack() as first_redis:
        first_redis.enter_context(redis_server(port=port))
        with run_server(app) as srv:
            assert bus.subscribed.is_set()  # start-up waited for the subscription
            ws = await live_call(srv, "call-outlives")
            first_redis.close()  # Redis goes away mid-call
            await until(lambda: not bus.subscribed.is_set(), "the listener saw Redis go")
            await ws.send(media_frame(b"\xff" * 160, seq=2))
            await next_play(ws)  # the call plays on
            await ws.close()
            await wait_finished(srv)
            for _ in range(200):
                record = await records.get("call-outlives")
                if record is not None and record.status == COMPLETED:
                    break
                await asyncio.sleep(0.01)
            assert record is not None
            assert record.status == COMPLETED  # written although the release could not be
            with redis_server(port=port) as url:  # Redis is back
                await until(bus.subscribed.is_set, "the listener subscribed again")
                redis = Redis.from_url(url, decode_responses=True)
                try:
                    assert await redis.pubsub_numsub(bus.channel(bus.node)) == [(bus.channel(bus.node), 1)]
                finally:
                    await redis.aclose()
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("media socket release not recorded: Redis unreachable") for m in messages) == 1
    bus_lines = [m for m in messages if m.startswith("call bus:")]
    # one line when Redis went, one when back (the last: the second Redis stops before the app)
    assert bus_lines[:2] == [
        "call bus: Redis unreachable (ConnectionError); subscribing again",
        "call bus: subscribed again",
    ]
    assert len(bus_lines) <= 3
