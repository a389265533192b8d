"""A call's start listeners (the call record's insert, metrics) run beside the call's start: the
caller is answered while a slow database is still writing the start, and the call's end is
written only after its start."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from app.audio.formats import AudioFormat
from app.config import Settings
from app.main import create_app
from tests.e2e.test_media_socket import call, media_frame, next_play, start_frame, wait_finished
from tests.servers import run_server


class SlowStart:
    """A listener whose start takes until the test releases it (a database that hangs)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.order: list[str] = []

    async def call_started(self, call: Any) -> None:
        await asyncio.to_thread(self.release.wait, 30)
        self.order.append("started")

    async def call_ended(self, call: Any, outcome: Any) -> None:
        self.order.append("ended")


async def test_the_caller_is_answered_while_the_start_is_still_being_written(
    make_settings: Callable[..., Settings],
) -> None:
    slow = SlowStart()
    with run_server(create_app(make_settings(), listeners=[slow])) as srv:
        try:
            async with call(srv, "slow-start") as ws:
                await ws.send(start_frame("slow-start", AudioFormat("mulaw", 8000)))
                await ws.send(media_frame(b"\x10" * 160))
                await next_play(ws)  # the echo answers; the start has not been written yet
                assert slow.order == []
                await ws.send(media_frame(b"\x10" * 160, seq=2))
                await next_play(ws)
        finally:
            slow.release.set()
        await wait_finished(srv)
        for _ in range(200):  # the end's listeners run just after the session is unregistered
            if len(slow.order) == 2:
                break
            await asyncio.sleep(0.01)
    assert slow.order == ["started", "ended"]  # the caller hung up first; the end waited for the start
