"""The media WebSocket over a real socket: token refusal, every format, and bad input."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from app.audio.codec import decode, encode
from app.audio.formats import AudioFormat
from app.config import Settings
from app.main import create_app
from app.pipeline.registry import CallRegistry
from app.telephony.token import StreamClaims, issue_token
from tests.servers import RunningServer, run_server

SECRET = b"test-secret-0123456789"
FAR_FUTURE = 4_000_000_000


def token_for(call_id: str, expires_at: int = FAR_FUTURE) -> str:
    return issue_token(SECRET, StreamClaims(call_id=call_id, persona="default", expires_at=expires_at))


def tone(rate: int, ms: int, freq: float = 440.0, start: int = 0) -> npt.NDArray[np.int16]:
    n = np.arange(start, start + rate * ms // 1000)
    return (8000 * np.sin(2 * np.pi * freq * n / rate)).astype(np.int16)


def start_frame(call_id: str, fmt: AudioFormat, stream_id: str = "stream-1") -> str:
    return json.dumps(
        {
            "sequenceNumber": 0,
            "event": "start",
            "start": {
                "callId": call_id,
                "streamId": stream_id,
                "accountId": "500025",
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": fmt.mime, "sampleRate": fmt.sample_rate},
            },
            "extra_headers": "{}",
        }
    )


def media_frame(payload: bytes, seq: int = 1) -> str:
    return json.dumps(
        {
            "sequenceNumber": seq,
            "streamId": "stream-1",
            "event": "media",
            "media": {
                "track": "inbound",
                "timestamp": str(seq * 20),
                "chunk": seq,
                "payload": base64.b64encode(payload).decode(),
            },
        }
    )


@pytest.fixture
def server(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., RunningServer]]:
    """Start the app (with optional setting overrides) under uvicorn on 127.0.0.1."""
    stack: list[Any] = []

    def start(**overrides: Any) -> RunningServer:
        app = create_app(make_settings(**overrides))
        cm = run_server(app)
        stack.append(cm)
        return cm.__enter__()

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


def registry_of(srv: RunningServer) -> CallRegistry:
    registry: CallRegistry = srv.app.state.ctx.registry
    return registry


@asynccontextmanager
async def call(srv: RunningServer, call_id: str = "call-1") -> AsyncIterator[ClientConnection]:
    async with connect(f"{srv.ws_url}/vobiz/media/{token_for(call_id)}", max_size=None) as ws:
        yield ws


async def next_play(ws: ClientConnection) -> dict[str, Any]:
    """The next playAudio command (checkpoints skipped)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 2))
        if message["event"] == "playAudio":
            return dict(message)


async def closed_by_server(ws: ClientConnection) -> int | None:
    """Read until the server closes the socket; its close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 2)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


async def wait_finished(srv: RunningServer, count: int = 1) -> None:
    registry = registry_of(srv)
    for _ in range(200):
        if len(registry.finished) >= count and len(registry) == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the session did not finish")


def loop_tasks(srv: RunningServer) -> set[asyncio.Task[Any]]:
    """Every task on the server's loop (uvicorn's own included)."""
    return set(asyncio.all_tasks(srv.loop))


async def no_task_left(srv: RunningServer, before: set[asyncio.Task[Any]]) -> None:
    """Every task on the server's loop that was not there before the call has finished
    (uvicorn's connection tasks end a moment after their socket closes: wait a bounded while)."""
    for _ in range(200):
        left = loop_tasks(srv) - before
        if not left:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"tasks left on the server's loop: {sorted(t.get_name() for t in left)}")


FORMATS = [
    # (settings overrides, inbound format, expected outbound format)
    ({}, AudioFormat("mulaw", 8000), AudioFormat("mulaw", 8000)),
    ({}, AudioFormat("l16", 8000), AudioFormat("l16", 8000)),
    ({}, AudioFormat("l16", 16000), AudioFormat("l16", 16000)),
    ({"playback_sample_rate": 24000}, AudioFormat("mulaw", 8000), AudioFormat("l16", 24000)),
    ({"playback_sample_rate": 24000}, AudioFormat("l16", 16000), AudioFormat("l16", 24000)),
    ({"l16_byte_order": "big"}, AudioFormat("l16", 16000, "big"), AudioFormat("l16", 16000, "big")),
]


@pytest.mark.parametrize(("overrides", "fmt_in", "fmt_out"), FORMATS)
async def test_echo_in_every_format(
    server: Callable[..., RunningServer],
    overrides: dict[str, Any],
    fmt_in: AudioFormat,
    fmt_out: AudioFormat,
) -> None:
    srv = server(**overrides)
    before = loop_tasks(srv)
    sent = tone(fmt_in.sample_rate, 400)
    frame_len = fmt_in.sample_rate // 50
    received: list[npt.NDArray[np.int16]] = []
    async with call(srv) as ws:
        await ws.send(start_frame("call-1", fmt_in))
        for i in range(20):
            await ws.send(media_frame(encode(sent[i * frame_len : (i + 1) * frame_len], fmt_in), i + 1))
        for _ in range(20):
            play = await next_play(ws)
            assert play["streamId"] == "stream-1"
            assert play["media"]["contentType"] == fmt_out.mime
            assert play["media"]["sampleRate"] == fmt_out.sample_rate
            raw = base64.b64decode(play["media"]["payload"])
            assert len(raw) == fmt_out.frame_bytes(20)
            received.append(decode(raw, fmt_out))
    echoed = np.concatenate(received).astype(np.float64)
    # the echo is the same 440 Hz tone: its spectrum peaks at 440 Hz (a wrong byte order or
    # rate label would move or smear the peak)
    spectrum = np.abs(np.fft.rfft(echoed[len(echoed) // 4 :]))
    freqs = np.fft.rfftfreq(len(echoed) - len(echoed) // 4, 1 / fmt_out.sample_rate)
    assert abs(freqs[int(np.argmax(spectrum))] - 440) < 15
    assert 5000 < np.abs(echoed[len(echoed) // 2 :]).max() < 9000
    await wait_finished(srv)
    assert registry_of(srv).finished[-1].end_reason == "socket-closed"
    await no_task_left(srv, before)


@pytest.mark.parametrize(
    ("path_token", "why"),
    [
        ("not-a-token", "malformed"),
        (token_for("call-1")[:-2] + "AA", "forged"),
        (
            issue_token(b"another-secret-0123456789", StreamClaims("call-1", "default", FAR_FUTURE)),
            "wrong key",
        ),
        (token_for("call-1", expires_at=1_000), "expired"),
    ],
)
async def test_bad_tokens_are_refused_before_any_audio(
    server: Callable[..., RunningServer], path_token: str, why: str
) -> None:
    srv = server()
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"{srv.ws_url}/vobiz/media/{path_token}"):
            pass
    assert info.value.response.status_code == 403, why
    assert len(registry_of(srv).finished) == 0


async def test_missing_token_is_refused(server: Callable[..., RunningServer]) -> None:
    srv = server()
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"{srv.ws_url}/vobiz/media/"):
            pass
    assert info.value.response.status_code == 403


async def test_bad_input_never_ends_the_call(server: Callable[..., RunningServer]) -> None:
    srv = server(stream_content_type="audio/x-l16;rate=8000")
    before = loop_tasks(srv)
    fmt = AudioFormat("l16", 8000)
    good = media_frame(encode(tone(8000, 20), fmt))
    async with call(srv) as ws:
        await ws.send(media_frame(b"\x00" * 320))  # media before start
        await ws.send(start_frame("call-1", fmt))
        junk_frames: list[str | bytes] = [
            "not json",
            "[]",
            '{"event":"media","media":{"payload":"@@@"}}',  # bad base64
            media_frame(b"\x00" * 321),  # odd L16 byte count
            '{"event":"somethingNew","x":1}',  # unknown event
            '{"event":"start","start":{"callId":"call-1","streamId":"again"}}',  # duplicate start
            json.dumps({"event": "media", "media": {"payload": "A" * (10 * 1024 * 1024)}}),  # 10 MB
            b"\xff\xfe binary junk",
        ]
        for junk in junk_frames:
            await ws.send(junk)
            await ws.send(good)
            play = await next_play(ws)  # still echoing after each bad frame
            assert play["event"] == "playAudio"
    await wait_finished(srv)
    stats = registry_of(srv).finished[-1]
    assert stats.end_reason == "socket-closed"
    assert stats.unknown_events == {"somethingNew": 1}
    assert stats.protocol_errors == {
        "media-before-start": 1,
        "bad-frame": 5,
        "duplicate-start": 1,
        "frame-too-large": 1,
    }
    await no_task_left(srv, before)


async def test_a_broken_call_leaves_other_calls_untouched(server: Callable[..., RunningServer]) -> None:
    srv = server()
    fmt = AudioFormat("mulaw", 8000)
    async with call(srv, "healthy") as ok, call(srv, "broken") as bad:
        await ok.send(start_frame("healthy", fmt))
        await bad.send(start_frame("broken", fmt))
        for i in range(10):
            await bad.send("garbage {")
            await ok.send(media_frame(encode(tone(8000, 20, start=160 * i), fmt), i))
            assert (await next_play(ok))["streamId"] == "stream-1"
        await bad.close()
        await ok.send(media_frame(encode(tone(8000, 20), fmt)))
        assert (await next_play(ok))["event"] == "playAudio"
    await wait_finished(srv, 2)


async def test_oversized_message_beyond_the_server_limit_closes_cleanly(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings())
    with run_server(app, ws_max_size=256 * 1024) as srv:
        before = loop_tasks(srv)
        async with call(srv) as ws:
            await ws.send(start_frame("call-1", AudioFormat("mulaw", 8000)))
            await ws.send("x" * (1024 * 1024))
            assert await closed_by_server(ws) == 1009
        registry: CallRegistry = app.state.ctx.registry
        for _ in range(200):
            if registry.finished:
                break
            await asyncio.sleep(0.01)
        assert registry.finished[-1].end_reason == "message-too-big"
        await no_task_left(srv, before)


async def test_hangup_webhook_ends_the_session(server: Callable[..., RunningServer]) -> None:
    import httpx

    srv = server()
    before = loop_tasks(srv)
    async with call(srv, "call-h") as ws:
        await ws.send(start_frame("call-h", AudioFormat("mulaw", 8000)))
        await ws.send(media_frame(b"\xff" * 160))
        await next_play(ws)
        async with httpx.AsyncClient() as client:
            resp = await client.post(
                f"{srv.url}/vobiz/hangup", data={"CallUUID": "call-h", "Event": "Hangup"}
            )
        assert resp.status_code == 204
        assert await closed_by_server(ws) == 1000
    await wait_finished(srv)
    assert registry_of(srv).finished[-1].end_reason == "hangup"
    await no_task_left(srv, before)


async def test_legacy_inbound_stop_ends_the_session(server: Callable[..., RunningServer]) -> None:
    srv = server()
    async with call(srv) as ws:
        await ws.send(start_frame("call-1", AudioFormat("mulaw", 8000)))
        await ws.send('{"event":"stop","streamId":"stream-1","reason":"call_ended"}')
        assert await closed_by_server(ws) == 1000
    await wait_finished(srv)
    assert registry_of(srv).finished[-1].end_reason == "stream-stopped"


async def test_start_for_another_call_is_refused(server: Callable[..., RunningServer]) -> None:
    srv = server()
    async with call(srv, "call-1") as ws:
        await ws.send(start_frame("someone-else", AudioFormat("mulaw", 8000)))
        assert await closed_by_server(ws) == 1000
    await wait_finished(srv)
    assert registry_of(srv).finished[-1].end_reason == "call-id-mismatch"


async def test_checkpoints_and_acks_flow(server: Callable[..., RunningServer]) -> None:
    srv = server()
    fmt = AudioFormat("mulaw", 8000)
    async with call(srv) as ws:
        await ws.send(start_frame("call-1", fmt))
        for i in range(50):
            await ws.send(media_frame(b"\xff" * 160, i))
        names: list[str] = []
        while not names:
            message = json.loads(await asyncio.wait_for(ws.recv(), 2))
            if message["event"] == "checkpoint":
                assert message["streamId"] == "stream-1"
                names.append(message["name"])
        await ws.send(json.dumps({"event": "playedStream", "name": names[0]}))
        await ws.send(json.dumps({"event": "clearedAudio", "streamId": "stream-1"}))
        await ws.send(media_frame(b"\xff" * 160))
        await next_play(ws)
    await wait_finished(srv)
    stats = registry_of(srv).finished[-1]
    assert stats.checkpoints_acked == 1
    assert sum(stats.protocol_errors.values()) == 0


async def test_wrong_l16_byte_order_is_reported_once(
    server: Callable[..., RunningServer], caplog: pytest.LogCaptureFixture
) -> None:
    srv = server()  # L16_BYTE_ORDER=little, but this caller sends big-endian speech-level audio
    fmt_sent = AudioFormat("l16", 8000, "big")
    async with call(srv) as ws:
        await ws.send(start_frame("call-1", AudioFormat("l16", 8000)))
        for i in range(30):
            await ws.send(media_frame(encode(tone(8000, 20, start=160 * i), fmt_sent), i))
            await next_play(ws)
    await wait_finished(srv)
    warnings = [r.getMessage() for r in caplog.records if "L16_BYTE_ORDER" in r.getMessage()]
    assert warnings == ["inbound L16 looks big-endian but L16_BYTE_ORDER=little; check the setting"]


async def test_right_l16_byte_order_raises_no_warning(
    server: Callable[..., RunningServer], caplog: pytest.LogCaptureFixture
) -> None:
    srv = server()
    fmt = AudioFormat("l16", 8000)
    async with call(srv) as ws:
        await ws.send(start_frame("call-1", fmt))
        for i in range(30):
            await ws.send(media_frame(encode(tone(8000, 20, start=160 * i), fmt), i))
            await next_play(ws)
    await wait_finished(srv)
    assert not [r for r in caplog.records if "L16_BYTE_ORDER" in r.getMessage()]
