"""Run a real ASGI app under uvicorn on 127.0.0.1 (an ephemeral port) for a test."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from app.api.ws_protocol import MediaWebSocketProtocol

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


@dataclass(frozen=True)
class RunningServer:
    url: str  # http://127.0.0.1:PORT
    loop: asyncio.AbstractEventLoop  # the server's loop (inspect its tasks, never run on it)
    app: Any  # the ASGI app being served
    server: Any = None  # the uvicorn.Server (its ``servers``: the listening sockets, on ``loop``)

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
        ws=MediaWebSocketProtocol,  # as ``voice-agent serve`` runs it
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
        # start-up runs the app's lifespan (migrations; with offline engines, the greetings are
        # rendered): give a loaded machine time, but stop waiting if the server thread died
        deadline = time.monotonic() + 60
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        if not server.started:
            raise RuntimeError("test server did not start")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield RunningServer(f"http://127.0.0.1:{port}", loop, app, server)
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


def serve_in_process(
    command: list[str],
    cwd: Path,
    probe: str,
    while_up: Callable[[str, httpx.Response], T],
    **env: str | None,
) -> tuple[T, list[str]]:
    """Run the service as its own process (``command``: a console script of this venv and its
    arguments, ``{port}`` filled in), wait until ``probe`` (a path) answers, call
    ``while_up(base_url, probe_response)``, stop it; returns that result and the process's output.

    The environment drops every ``*_API_KEY`` and sets the telephony-only agent, a token secret,
    the project's personas and a ``DATA_DIR`` under ``cwd``; ``env`` adds or replaces settings
    (``{port}`` in a value is filled in too; ``None`` removes it).
    """
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    environ.update(
        PUBLIC_URL=f"https://agent.example.com:{port}",
        PROVIDERS="echo",
        STREAM_TOKEN_SECRET="serve-test-secret-0123456789",
        PROMPTS_DIR=str(ROOT / "prompts"),
        DATA_DIR=str(cwd / "data"),
        SIGNATURE_MODE="off",
    )
    environ.update(
        {name: value.replace("{port}", str(port)) for name, value in env.items() if value is not None}
    )
    for name in [name for name, value in env.items() if value is None]:
        environ.pop(name, None)
    argv = [
        str(Path(sys.executable).parent / command[0]),
        *(a.replace("{port}", str(port)) for a in command[1:]),
    ]
    proc = subprocess.Popen(argv, env=environ, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"{base}{probe}", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "the service did not come up in 30 s"
                time.sleep(0.1)
        result = while_up(base, response)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)  # reaps it and closes its output pipe
    return result, out.decode().splitlines()
