"""A second stream on a live call (a REST ``start`` to another URL of this service) never
replaces the call's session: it is refused, and the first stream talks on to the end."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from app.config import Settings
from app.pipeline.registry import CallRegistry
from app.simulator.caller import HangUp, Silence
from tests.e2e.test_emulator_rest import ANSWER, world


async def test_a_rest_stream_to_the_same_call_does_not_evict_its_session(
    make_settings: Callable[..., Settings],
) -> None:
    async with world(make_settings) as w:
        registry: CallRegistry = w.app.state.ctx.registry

        async def operate() -> Any:
            await w.clock.sleep(0.5)
            first = registry.get("call-two")
            # the same call's stream URL, made different by a query string: the fake REST
            # refuses a second stream at the very same URL (PROTOCOL.md §6.1)
            url = w.tap.sockets[0].url + "?fork=2"
            started = await w.client.start_stream("call-two", url, content_type="audio/x-mulaw;rate=8000")
            assert started.stream_id is not None
            await w.clock.sleep(1.0)
            assert registry.get("call-two") is first  # still the call's session, not ended
            return first

        async def both() -> tuple[Any, Any]:
            async with asyncio.TaskGroup() as tg:
                call = tg.create_task(w.vobiz.dial(ANSWER, [Silence(3), HangUp()], {}, call_id="call-two"))
                ops = tg.create_task(operate())
            return call.result(), ops.result()

        rec, first = await w.clock.run(both())
    assert first is not None
    assert [v.rule for v in rec.protocol_errors] == ["fork-socket-refused"]  # and got a 403
    assert rec.end_reason == "caller hung up"  # the first stream lasted the whole call
    assert first.stats.end_reason != "replaced"
    assert [s.call_id for s in registry.finished] == ["call-two"]  # one record: the real call's
    assert registry.finished[0] is first.stats
