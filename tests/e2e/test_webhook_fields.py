"""Every webhook checks every field it is sent: a signed request with an oversized or malformed
field gets a 400 that names the field (never its value), not a 500 and a traceback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from app.config import Settings
from app.main import create_app

TOKEN = "auth-token-123"
PUBLIC = "https://agent.example.com"
WEBHOOKS = [
    ("POST", "/vobiz/answer"),
    ("GET", "/vobiz/answer"),
    ("POST", "/vobiz/hangup"),
    ("GET", "/vobiz/hangup"),
    ("POST", "/vobiz/stream-status"),
    ("POST", "/vobiz/transfer/default"),
]
_nonces = itertools.count(10**19)
Send = Callable[[str, str, dict[str, str]], Awaitable[httpx.Response]]


def signed(path: str) -> dict[str, str]:
    """V3 headers for the public URL with a fresh nonce (PROTOCOL.md §9)."""
    nonce = str(next(_nonces))
    digest = hmac.new(TOKEN.encode(), f"{PUBLIC}{path}.{nonce}".encode(), hashlib.sha256).digest()
    return {"X-Vobiz-Signature-V3": base64.b64encode(digest).decode(), "X-Vobiz-Signature-V3-Nonce": nonce}


@asynccontextmanager
async def vobiz(make_settings: Callable[..., Settings]) -> AsyncIterator[Send]:
    app = create_app(make_settings(signature_mode="enforce", vobiz_auth_token=TOKEN))
    # app errors come back as a 500, as a real server would send them, instead of raising here
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal:8000") as client:

        async def send(method: str, path: str, fields: dict[str, str]) -> httpx.Response:
            if method == "GET":
                return await client.get(path, params=fields, headers=signed(path))
            return await client.post(path, data=fields, headers=signed(path))

        yield send


HUGE = "a" * 5000
BAD_FIELDS = [
    ({"CallUUID": HUGE}, "CallUUID is too long (5000 characters; at most 128)"),
    ({"CallUUID": "call<script>"}, "CallUUID must be an id"),
    ({"CallUUID": "c", "StreamID": "s\x00"}, "StreamID must be an id"),
    ({"CallUUID": "c", "From": "1" * 300}, "From is too long (300 characters; at most 256)"),
    ({"CallUUID": "c", "To": "+1415\n5550100"}, "To has control characters"),
    ({"CallUUID": "c", "Event": "Hangup" * 20}, "Event is too long"),
    ({"CallUUID": "c", "Duration": "12s"}, "Duration must be a whole number"),
    ({"CallUUID": "c", "X-VH-note": "n" * 3000}, "X-VH-note is too long (3000 characters; at most 2048)"),
    ({"CallUUID": "c", "k" * 65: "v"}, "a field name is longer than 64 characters"),
    ({"CallUUID": "c", "bad name": "v"}, "a field name is longer than 64 characters or has characters other"),
    ({"CallUUID": "c", **{f"f{i}": "v" for i in range(120)}}, "too many fields (121; at most 100)"),
]


@pytest.mark.parametrize(("method", "path"), WEBHOOKS)
@pytest.mark.parametrize(("fields", "message"), BAD_FIELDS)
async def test_a_bad_field_is_a_clear_400_on_every_webhook(
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    fields: dict[str, str],
    message: str,
) -> None:
    async with vobiz(make_settings) as send:
        resp = await send(method, path, fields)
    assert resp.status_code == 400
    detail = resp.json()["detail"]
    assert detail.startswith(message)
    assert HUGE not in detail
    assert len(detail) < 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_an_unsigned_bad_request_is_still_a_403(make_settings: Callable[..., Settings]) -> None:
    """The signature is checked first: a forger learns nothing about the field rules."""
    app = create_app(make_settings(signature_mode="enforce", vobiz_auth_token=TOKEN))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://internal"
    ) as client:
        resp = await client.post("/vobiz/answer", data={"CallUUID": HUGE})
    assert resp.status_code == 403


DOCUMENTED = [
    # PROTOCOL.md §1.1, §7.1, §7.2 example payloads, as Vobiz sends them
    (
        "/vobiz/answer",
        "CallUUID=abc123&From=14155551234&To=14155556789&Direction=inbound&CallStatus=ringing",
        200,
    ),
    (
        "/vobiz/stream-status",
        "From=918071387423&To=919624705678&CallUUID=9a0e0208-d01a-4572-9a04-fe583a05ac53"
        "&Event=StartStream&StreamID=227d997a-0af4-447c-a3f3-b243e902e527"
        "&ServiceURL=ws://stream.vobiz.ai/ws&ParentAuthID=MA_PU0XU668"
        "&status_callback_url=https://yourapp.com/stream-status&status_callback_method=POST"
        "&Timestamp=2025-11-06 09:58:40&X-VH-session_id=abc123",
        204,
    ),
    ("/vobiz/stream-status", "CallUUID=c-1&StreamID=s-1&Event=PlayedStream&Name=t1-s1~2", 204),
    (
        "/vobiz/hangup",
        "CallUUID=abc123&CallStatus=completed&Duration=45&BillDuration=60&HangupCause=NORMAL_CLEARING"
        "&HangupCauseCode=4010&HangupSource=Call recipient&EndTime=2025-11-06 09:59:25"
        "&From=%2B14155551234&To=sip:agent@example.com",
        204,
    ),
    ("/vobiz/transfer/default", "CallUUID=abc123&Event=Transfer&From=14155551234", 200),
]


@pytest.mark.parametrize(("path", "body", "status"), DOCUMENTED)
async def test_documented_callbacks_still_pass(
    make_settings: Callable[..., Settings], path: str, body: str, status: int
) -> None:
    app = create_app(make_settings(signature_mode="enforce", vobiz_auth_token=TOKEN))
    headers = {**signed(path), "Content-Type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://internal"
    ) as client:
        resp = await client.post(path, content=body.replace(" ", "+"), headers=headers)
    assert resp.status_code == status, resp.text
