"""Run a real ASGI app under uvicorn on 127.0.0.1 (an ephemeral port) for a test."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass(frozen=True)
class RunningServer:
    url: str  # http://127.0.0.1:PORT
    loop: asyncio.AbstractEventLoop  # the server's loop (inspect its tasks, never run on it)
    app: Any  # the ASGI app being served

    @property
    def ws_url(self) -> str:
        return "ws://" + self.url.removeprefix("http://")


@contextmanager
def serve_in_thread(app: Any, *, ws_max_size: int = 16 * 1024 * 1024) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a background thread; yield ``http://127.0.0.1:PORT``.

    A thread of its own (with its own event loop) lets both sync tests (CLI runners)
    and async tests talk to the server over real sockets.
    """
    with run_server(app, ws_max_size=ws_max_size) as server:
        yield server.url


@contextmanager
def run_server(app: Any, *, ws_max_size: int = 16 * 1024 * 1024, port: int = 0) -> Iterator[RunningServer]:
    """Like ``serve_in_thread``, but yields the URL together with the server's event loop."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        ws_max_size=ws_max_size,
    )
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve())

    thread = threading.Thread(target=run, name="test-uvicorn", daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.01)
        if not server.started:
            raise RuntimeError("test server did not start")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield RunningServer(f"http://127.0.0.1:{port}", loop, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        loop.close()


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago (for apps that must know their URL)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
