"""The media WebSocket protocol's flow control, driven byte by byte (a recording transport, the
real uvicorn protocol and a real websockets client protocol for the bytes on the wire)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from app.api.ws_protocol import HIGH_WATER, MediaWebSocketProtocol


class RecordingTransport(asyncio.Transport):
    """What the protocol asked of its socket."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.pauses = 0
        self.resumes = 0
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def pause_reading(self) -> None:
        self.pauses += 1

    def resume_reading(self) -> None:
        self.resumes += 1

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class App:
    """Accepts, then takes messages only when told to."""

    def __init__(self) -> None:
        self.take = asyncio.Queue[int]()
        self.got: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            for _ in range(await self.take.get()):
                message = await receive()
                if message["type"] != "websocket.receive":
                    return
                self.got.append(message["text"])


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def connected() -> tuple[MediaWebSocketProtocol, RecordingTransport, ClientProtocol, App]:
    app = App()
    config = Config(app, ws=MediaWebSocketProtocol, lifespan="off", ws_ping_interval=None)
    config.load()
    protocol = MediaWebSocketProtocol(config, ServerState(), {})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    client = ClientProtocol(parse_uri("ws://127.0.0.1:8000/vobiz/media/t"))
    client.send_request(client.connect())
    for chunk in client.data_to_send():
        protocol.data_received(chunk)
    await settle()
    assert transport.written.startswith(b"HTTP/1.1 101")
    client.receive_data(bytes(transport.written))
    return protocol, transport, client, app


async def hang_up(protocol: MediaWebSocketProtocol, app: App) -> None:
    protocol.connection_lost(None)
    app.take.put_nowait(2 * HIGH_WATER)  # the app reads on to the disconnect and returns
    await settle()
    assert not protocol.tasks


def send(protocol: MediaWebSocketProtocol, client: ClientProtocol, text: str) -> None:
    client.send_text(text.encode())
    for chunk in client.data_to_send():
        protocol.data_received(chunk)  # one socket read per message, as 20 ms frames arrive


async def test_reading_goes_on_while_messages_wait_for_the_app() -> None:
    protocol, transport, client, app = await connected()
    for i in range(HIGH_WATER - 1):
        send(protocol, client, f"m{i}")
    assert (transport.pauses, protocol.queue.qsize()) == (0, HIGH_WATER - 1)  # uvicorn paused at m0
    app.take.put_nowait(HIGH_WATER - 1)
    await settle()
    assert app.got == [f"m{i}" for i in range(HIGH_WATER - 1)]
    assert (transport.pauses, transport.resumes) == (0, 0)
    await hang_up(protocol, app)


async def test_a_stalled_app_stops_reading_at_the_high_water_mark_and_resumes_once_drained() -> None:
    protocol, transport, client, app = await connected()
    for i in range(HIGH_WATER):
        send(protocol, client, f"m{i}")
    assert (transport.pauses, protocol.read_paused) == (1, True)
    app.take.put_nowait(HIGH_WATER - 1)
    await settle()
    assert transport.resumes == 0  # one message still waits
    app.take.put_nowait(1)
    await settle()
    assert (transport.resumes, protocol.read_paused) == (1, False)
    assert len(app.got) == HIGH_WATER
    await hang_up(protocol, app)
