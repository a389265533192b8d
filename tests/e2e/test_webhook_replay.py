"""A captured signed webhook is good once: its nonces are remembered and a repeat is refused,
even with its body changed or one of its signature headers dropped (the body is unsigned).
An answer for a call that already has a live socket, or has ended, mints no stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

import httpx
import pytest
from websockets.asyncio.client import connect

from app.audio.formats import AudioFormat
from app.config import Settings
from app.main import create_app
from app.telephony.signature import V2_HEADER, V2_NONCE_HEADER, sign_headers
from tests.e2e.test_media_socket import media_frame, next_play, start_frame, token_for
from tests.servers import RunningServer, run_server

AUTH_TOKEN = "replay-test-auth-token"
PUBLIC = "https://agent.example.com"


def signed(path: str) -> dict[str, str]:
    """The V2 and V3 headers Vobiz would send for a callback to ``path``."""
    return sign_headers(PUBLIC + path, AUTH_TOKEN)


def enforcing(make_settings: Callable[..., Settings], mode: str = "enforce") -> Settings:
    return make_settings(signature_mode=mode, vobiz_auth_token=AUTH_TOKEN)


def client_for(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)), base_url=PUBLIC)


@pytest.fixture
def srv(make_settings: Callable[..., Settings]) -> Iterator[RunningServer]:
    with run_server(create_app(enforcing(make_settings))) as running:
        yield running


@pytest.mark.parametrize("path", ["/vobiz/answer", "/vobiz/hangup", "/vobiz/stream-status"])
async def test_a_replayed_webhook_is_refused(make_settings: Callable[..., Settings], path: str) -> None:
    headers = signed(path)
    form = {"CallUUID": "c-1", "From": "14155550100", "To": "14155550199"}
    async with client_for(enforcing(make_settings)) as client:
        first = await client.post(path, data=form, headers=headers)
        again = await client.post(path, data=form, headers=headers)
        # the same capture with another body: the body is not signed, the nonce is
        other_body = await client.post(path, data={**form, "CallUUID": "c-2"}, headers=headers)
        # only the V2 half of the capture (its nonce differs from the V3 one)
        v2_only = {k: v for k, v in headers.items() if k in (V2_HEADER, V2_NONCE_HEADER)}
        half = await client.post(path, data={**form, "CallUUID": "c-3"}, headers=v2_only)
        fresh = await client.post(path, data={**form, "CallUUID": "c-4"}, headers=signed(path))
    assert first.status_code in (200, 204)
    assert (again.status_code, other_body.status_code, half.status_code) == (403, 403, 403)
    assert "replayed" in again.text
    assert fresh.status_code in (200, 204)


async def test_log_mode_serves_a_replay_but_logs_it(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    headers = signed("/vobiz/answer")
    async with client_for(enforcing(make_settings, "log")) as client:
        await client.post("/vobiz/answer", data={"CallUUID": "c-1"}, headers=headers)
        again = await client.post("/vobiz/answer", data={"CallUUID": "c-2"}, headers=headers)
    assert again.status_code == 200
    assert [r.getMessage() for r in caplog.records if r.name == "app.webhooks"].count(
        "webhook signature replayed"
    ) == 1


async def test_a_replayed_hangup_cannot_end_a_live_call(srv: RunningServer) -> None:
    captured = signed("/vobiz/hangup")
    async with connect(f"{srv.ws_url}/vobiz/media/{token_for('live')}") as ws:
        await ws.send(start_frame("live", AudioFormat("mulaw", 8000)))
        await ws.send(media_frame(b"\xff" * 160))
        await next_play(ws)
        async with httpx.AsyncClient(base_url=srv.url) as client:
            original = await client.post("/vobiz/hangup", data={"CallUUID": "old"}, headers=captured)
            replay = await client.post("/vobiz/hangup", data={"CallUUID": "live"}, headers=captured)
        assert (original.status_code, replay.status_code) == (204, 403)
        await ws.send(media_frame(b"\xff" * 160, 2))
        assert (await next_play(ws))["event"] == "playAudio"  # the live call goes on


async def test_no_answer_for_a_call_with_a_live_socket_or_one_that_ended(srv: RunningServer) -> None:
    async def answer(client: httpx.AsyncClient, call_id: str) -> httpx.Response:
        return await client.post("/vobiz/answer", data={"CallUUID": call_id}, headers=signed("/vobiz/answer"))

    async with httpx.AsyncClient(base_url=srv.url) as client:
        assert (await answer(client, "call-1")).status_code == 200  # before its socket opens
        async with connect(f"{srv.ws_url}/vobiz/media/{token_for('call-1')}") as ws:
            await ws.send(start_frame("call-1", AudioFormat("mulaw", 8000)))
            await ws.send(media_frame(b"\xff" * 160))
            await next_play(ws)
            live = await answer(client, "call-1")
            other = await answer(client, "call-2")
            hangup = await client.post(
                "/vobiz/hangup", data={"CallUUID": "call-1"}, headers=signed("/vobiz/hangup")
            )
        ended = await answer(client, "call-1")
    assert (live.status_code, other.status_code, hangup.status_code) == (409, 200, 204)
    assert "<Stream" not in live.text
    assert ended.status_code == 409


def test_the_log_names_no_nonce(
    caplog: pytest.LogCaptureFixture, make_settings: Callable[..., Settings]
) -> None:
    """The refusal is logged by reason; the nonce (a capture's key) is not written out."""
    caplog.set_level(logging.DEBUG)
    headers = signed("/vobiz/stream-status")

    async def twice() -> None:
        async with client_for(enforcing(make_settings)) as client:
            for _ in range(2):
                await client.post("/vobiz/stream-status", data={"CallUUID": "c"}, headers=headers)

    asyncio.run(twice())
    nonces = [v for k, v in headers.items() if k.endswith("Nonce")]
    assert any("replayed" in r.getMessage() for r in caplog.records)
    assert not any(n in r.getMessage() or n in str(r.__dict__) for r in caplog.records for n in nonces)
