"""Input a peer controls stays bounded: only documented media formats, a capped count of
unknown event names, and no backlog of control events an agent does not read. Real sockets."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from app.audio.formats import AudioFormat
from app.audio.resample import _design
from app.config import Settings
from app.main import create_app
from app.pipeline.session import MAX_UNKNOWN_EVENT_NAMES
from tests.e2e.test_media_socket import (
    call,
    closed_by_server,
    loop_tasks,
    media_frame,
    next_play,
    no_task_left,
    registry_of,
    start_frame,
    token_for,
    wait_finished,
)
from tests.servers import RunningServer, run_server


@pytest.fixture
def srv(make_settings: Callable[..., Settings]) -> Iterator[RunningServer]:
    with run_server(create_app(make_settings())) as running:
        yield running


def raw_start(call_id: str, encoding: str, rate: Any) -> str:
    media_format = {"encoding": encoding, "sampleRate": rate}
    return json.dumps(
        {"event": "start", "start": {"callId": call_id, "streamId": "s-1", "mediaFormat": media_format}}
    )


@pytest.mark.parametrize(
    ("encoding", "rate"),
    [
        ("audio/x-l16", 47999),  # the 2.18M-tap filter
        ("audio/x-l16", 44100),
        ("audio/x-l16", 11025),
        ("audio/x-l16", 48000),
        ("audio/x-l16", 32000),
        ("audio/x-mulaw", 16000),
    ],
)
async def test_an_undocumented_format_ends_the_call_cleanly_before_any_filter_is_built(
    srv: RunningServer, encoding: str, rate: int
) -> None:
    designs_before = _design.cache_info().misses
    before = loop_tasks(srv)
    async with call(srv) as ws:
        await ws.send(raw_start("call-1", encoding, rate))
        await ws.send(media_frame(b"\x00" * 320))
        assert await closed_by_server(ws) == 1000  # a clean close, not 1011 (error)
    await wait_finished(srv)
    stats = registry_of(srv).finished[-1]
    assert stats.end_reason == "unsupported-media-format"
    assert stats.protocol_errors == {"bad-media-format": 1}
    assert (stats.frames_in, stats.frames_out) == (0, 0)
    # no resampler was designed for the peer's rate (at 47999 Hz: 2.18M taps, ~1 s on the loop)
    assert _design.cache_info().misses == designs_before
    await no_task_left(srv, before)


async def test_every_documented_inbound_format_is_accepted(srv: RunningServer) -> None:
    for i, fmt in enumerate(
        [AudioFormat("mulaw", 8000), *(AudioFormat("l16", r) for r in (8000, 16000, 24000))]
    ):
        async with call(srv, f"call-{i}") as ws:
            await ws.send(start_frame(f"call-{i}", fmt))
            await ws.send(media_frame(b"\x00" * fmt.frame_bytes()))
            assert (await next_play(ws))["media"]["sampleRate"] == fmt.sample_rate
        await wait_finished(srv, i + 1)
        assert registry_of(srv).finished[-1].end_reason == "socket-closed"


async def test_a_flood_of_unknown_event_names_is_counted_in_a_bounded_table(
    srv: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.call")
    flood = 2000
    async with call(srv) as ws:
        await ws.send(start_frame("call-1", AudioFormat("mulaw", 8000)))
        for i in range(flood):
            await ws.send(json.dumps({"event": f"made-up-{i}-" + "x" * 30}))
        await ws.send(json.dumps({"event": "made-up-0-" + "x" * 30}))  # a kept name, again
        await ws.send(media_frame(b"\xff" * 160))
        await next_play(ws)  # the call goes on
    await wait_finished(srv)
    counts = registry_of(srv).finished[-1].unknown_events
    assert len(counts) == MAX_UNKNOWN_EVENT_NAMES + 1
    assert counts["other"] == flood - MAX_UNKNOWN_EVENT_NAMES
    assert sum(counts.values()) == flood + 1
    assert max(len(name) for name in counts) <= 40
    lines = [r for r in caplog.records if r.getMessage() == "unknown event ignored"]
    assert len(lines) == MAX_UNKNOWN_EVENT_NAMES + 1  # each counted kind once, "other" once


async def test_the_echo_agent_reads_its_control_events(srv: RunningServer) -> None:
    """Acks pile up in a bounded queue unless the agent reads them: at one checkpoint a second
    the echo agent's queue overflowed after about four minutes of call."""
    async with connect(f"{srv.ws_url}/vobiz/media/{token_for('call-1')}") as ws:
        await ws.send(start_frame("call-1", AudioFormat("mulaw", 8000)))
        for i in range(600):  # ten minutes of acks, in a burst
            await ws.send(json.dumps({"event": "playedStream", "name": f"echo-{i}"}))
            if i % 100 == 0:
                await asyncio.sleep(0.01)
        await ws.send(media_frame(b"\xff" * 160))
        await next_play(ws)
    await wait_finished(srv)
    stats = registry_of(srv).finished[-1]
    assert stats.checkpoints_acked == 600
    assert "events-overflow" not in stats.protocol_errors
