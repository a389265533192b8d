"""How the fake Vobiz reaches the app: over the network, or in-process through ASGI.

``NetworkConnector`` uses real HTTP (httpx) and a real WebSocket client (websockets), for
people and benchmarks. ``AsgiConnector`` calls the ASGI app directly on the same event loop,
so a call on the virtual clock is deterministic: nothing leaves the loop. ``TapConnector``
wraps either and keeps every request and frame that crossed it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    content_type: str
    text: str


class SocketRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"WebSocket refused with HTTP {status}")
        self.status = status


class MediaSocket(Protocol):
    close_code: int | None

    async def send(self, text: str) -> None:
        """Send one text frame; raises ``ConnectionError`` if the socket is closed."""
        ...

    async def recv(self) -> str | bytes | None:
        """The next frame, or None once the socket is closed."""
        ...

    async def close(self, code: int = 1000) -> None: ...


class Connector(Protocol):
    async def request(
        self, method: str, url: str, data: dict[str, str], headers: dict[str, str]
    ) -> HttpReply: ...

    async def open_socket(self, url: str) -> MediaSocket:
        """Open the media WebSocket; raises ``SocketRefused`` when the app refuses it."""
        ...

    async def aclose(self) -> None: ...


def _reply(resp: httpx.Response) -> HttpReply:
    return HttpReply(resp.status_code, resp.headers.get("content-type", ""), resp.text)


async def _request(
    client: httpx.AsyncClient, method: str, url: str, data: dict[str, str], headers: dict[str, str]
) -> HttpReply:
    if method.upper() == "GET":
        return _reply(await client.get(url, params=data, headers=headers))
    return _reply(await client.post(url, data=data, headers=headers))


# --- network ------------------------------------------------------------------------------------


class _NetworkSocket:
    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self.close_code: int | None = None

    async def send(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except ConnectionClosed as exc:
            raise ConnectionError("socket closed") from exc

    async def recv(self) -> str | bytes | None:
        try:
            return await self._ws.recv()
        except ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd is not None else 1006
            return None

    async def close(self, code: int = 1000) -> None:
        await self._ws.close(code)
        self.close_code = self.close_code or code


class NetworkConnector:
    def __init__(
        self,
        timeout: float = 10.0,
        *,
        compression: str | None = "deflate",
        limits: httpx.Limits | None = None,
    ) -> None:
        """``compression``: the WebSocket extension offered (``"deflate"``: permessage-deflate,
        as the ``websockets`` client does by default; None: no compression). ``limits``: the
        webhook client's connection pool (httpx's defaults when None)."""
        self._http = httpx.AsyncClient(timeout=timeout, limits=limits or httpx.Limits())
        self._compression = compression

    async def request(
        self, method: str, url: str, data: dict[str, str], headers: dict[str, str]
    ) -> HttpReply:
        return await _request(self._http, method, url, data, headers)

    async def open_socket(self, url: str) -> MediaSocket:
        try:
            ws = await connect(url, max_size=None, open_timeout=10, compression=self._compression)
        except InvalidStatus as exc:
            raise SocketRefused(exc.response.status_code) from exc
        return _NetworkSocket(ws)

    async def aclose(self) -> None:
        await self._http.aclose()


# --- in-process ASGI ----------------------------------------------------------------------------


class _AsgiSocket:
    """A WebSocket client speaking the ASGI websocket protocol to an app on this loop."""

    def __init__(self, app: Any, url: str) -> None:
        parts = urlsplit(url)
        self._scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "wss" if parts.scheme == "wss" else "ws",
            "http_version": "1.1",
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "query_string": parts.query.encode(),
            "root_path": "",
            "headers": [(b"host", (parts.netloc or "localhost").encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
            "subprotocols": [],
            "state": {},
        }
        self._app = app
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.close_code: int | None = None

    async def _run_app(self) -> None:
        try:
            await self._app(self._scope, self._to_app.get, self._from_app.put)
        finally:
            await self._from_app.put({"type": "websocket.close", "code": 1006})

    async def open(self) -> None:
        # the app runs as this socket's own task, ended by ``close`` (like a server's connection task)
        self._task = asyncio.ensure_future(self._run_app())
        await self._to_app.put({"type": "websocket.connect"})
        first = await self._from_app.get()
        if first["type"] == "websocket.accept":
            return
        await self._finish()
        if first["type"] == "websocket.http.response.start":
            raise SocketRefused(int(first.get("status", 403)))
        raise SocketRefused(403)

    async def send(self, text: str) -> None:
        if self.close_code is not None:
            raise ConnectionError("socket closed")
        await self._to_app.put({"type": "websocket.receive", "text": text})

    async def recv(self) -> str | bytes | None:
        if self.close_code is not None:
            return None
        message = await self._from_app.get()
        if message["type"] == "websocket.send":
            text: str | None = message.get("text")
            return text if text is not None else bytes(message.get("bytes") or b"")
        self.close_code = int(message.get("code", 1000))
        await self._finish()
        return None

    async def close(self, code: int = 1000) -> None:
        if self.close_code is None:
            self.close_code = code
            await self._to_app.put({"type": "websocket.disconnect", "code": code})
        await self._finish()

    async def _finish(self) -> None:
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), 5)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class AsgiConnector:
    """Talks to ASGI apps in-process: ``app`` for every host except those named in ``hosts``."""

    def __init__(self, app: Any, hosts: dict[str, Any] | None = None) -> None:
        self._apps: dict[str, Any] = {"": app, **(hosts or {})}
        self._http: dict[str, httpx.AsyncClient] = {}

    def _app(self, url: str) -> tuple[str, Any]:
        host = urlsplit(url).hostname or ""
        key = host if host in self._apps else ""
        return key, self._apps[key]

    async def request(
        self, method: str, url: str, data: dict[str, str], headers: dict[str, str]
    ) -> HttpReply:
        key, app = self._app(url)
        client = self._http.get(key)
        if client is None:
            transport = httpx.ASGITransport(app=app)
            client = self._http[key] = httpx.AsyncClient(transport=transport, base_url="http://app")
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return await _request(client, method, path, data, headers)

    async def open_socket(self, url: str) -> MediaSocket:
        sock = _AsgiSocket(self._app(url)[1], url)
        await sock.open()
        return sock

    async def aclose(self) -> None:
        for client in self._http.values():
            await client.aclose()


# --- tap -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TappedRequest:
    method: str
    url: str
    form: dict[str, str]
    status: int


class MediaSocketWrapper:
    """A ``MediaSocket`` around another that passes everything through; subclasses watch frames."""

    def __init__(self, inner: MediaSocket) -> None:
        self._inner = inner

    @property
    def close_code(self) -> int | None:
        return self._inner.close_code

    @close_code.setter
    def close_code(self, code: int | None) -> None:
        self._inner.close_code = code

    async def send(self, text: str) -> None:
        await self._inner.send(text)

    async def recv(self) -> str | bytes | None:
        return await self._inner.recv()

    async def close(self, code: int = 1000) -> None:
        await self._inner.close(code)


class TappedSocket(MediaSocketWrapper):
    """A ``MediaSocket`` that keeps every frame: ``sent`` (Vobiz → app) and ``received``."""

    def __init__(self, url: str, inner: MediaSocket) -> None:
        super().__init__(inner)
        self.url = url
        self.sent: list[str] = []
        self.received: list[str | bytes] = []

    async def send(self, text: str) -> None:
        await self._inner.send(text)
        self.sent.append(text)

    async def recv(self) -> str | bytes | None:
        frame = await self._inner.recv()
        if frame is not None:
            self.received.append(frame)
        return frame


class TapConnector:
    """Wraps a connector and keeps what crossed it, in order: each webhook request with its
    reply status, and each media socket's frames. For tests and debugging."""

    def __init__(self, inner: Connector) -> None:
        self.inner = inner
        self.requests: list[TappedRequest] = []
        self.sockets: list[TappedSocket] = []

    async def request(
        self, method: str, url: str, data: dict[str, str], headers: dict[str, str]
    ) -> HttpReply:
        reply = await self.inner.request(method, url, data, headers)
        self.requests.append(TappedRequest(method, url, dict(data), reply.status))
        return reply

    async def open_socket(self, url: str) -> MediaSocket:
        sock = TappedSocket(url, await self.inner.open_socket(url))
        self.sockets.append(sock)
        return sock

    async def aclose(self) -> None:
        await self.inner.aclose()
