"""The playground's routes through the real app: off by default, tokens for this machine only
(or a dashboard session), and a call's feed for the page that started it alone."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.config import Settings
from app.main import create_app
from app.telephony.token import verify_token

KEY = "playground-dashboard-key-0123"


def client(app: object, base: str = "http://127.0.0.1:8000", **kwargs: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, **kwargs), base_url=base)  # type: ignore[arg-type]


async def test_off_by_default_there_is_no_playground(make_settings: Callable[..., Settings]) -> None:
    async with client(create_app(make_settings())) as http:
        assert (await http.get("/playground")).status_code == 404
        assert (await http.post("/playground/calls", json={})).status_code == 404


async def test_a_browser_on_this_machine_gets_a_stream_token_for_the_persona(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(playground=True))
    async with client(app) as http:
        page = await http.get("/playground")
        assert page.status_code == 200
        assert '<option value="restaurant"' in page.text
        made = (await http.post("/playground/calls", json={"persona": "restaurant"})).json()
    token = made["media_path"].removeprefix("/vobiz/media/")
    claims = verify_token(app.state.ctx.token_secret, token, now=app.state.ctx.wall_time())
    assert claims.persona == "restaurant"
    assert claims.call_id == made["call_id"]
    assert made["events_path"].startswith(f"/playground/events/{made['call_id']}/")


@pytest.mark.parametrize(
    ("base", "headers", "peer"),
    [
        ("http://agent.example.com", {}, "127.0.0.1"),  # a public Host name, as through a proxy
        ("http://127.0.0.1:8000", {"X-Forwarded-For": "198.51.100.7"}, "127.0.0.1"),
        ("http://127.0.0.1:8000", {"Forwarded": "for=198.51.100.7"}, "127.0.0.1"),
        ("http://127.0.0.1:8000", {}, "198.51.100.7"),  # a peer elsewhere
    ],
)
async def test_anyone_else_is_refused(
    make_settings: Callable[..., Settings], base: str, headers: dict[str, str], peer: str
) -> None:
    app = create_app(make_settings(playground=True))
    async with client(app, base, client=(peer, 5000)) as http:
        response = await http.post("/playground/calls", json={}, headers=headers)
    assert response.status_code == 403


async def test_a_signed_in_dashboard_user_may_use_it_from_elsewhere(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(playground=True, calls_api_key=KEY, public_url="http://agent.example.com"))
    async with client(app, "http://agent.example.com", client=("198.51.100.7", 5000)) as http:
        assert (await http.post("/playground/calls", json={})).status_code == 403
        assert (await http.post("/dashboard/login", data={"key": KEY})).status_code == 303
        assert (await http.post("/playground/calls", json={})).status_code == 200


async def test_an_unknown_persona_is_refused(make_settings: Callable[..., Settings]) -> None:
    async with client(create_app(make_settings(playground=True))) as http:
        for persona in ("nosuch", "../etc"):
            assert (await http.post("/playground/calls", json={"persona": persona})).status_code == 400


def test_the_feed_is_for_the_page_with_the_secret(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(playground=True))
    with TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 5000)) as http:
        made = http.post("/playground/calls", json={}).json()
        wrong = made["events_path"].rsplit("/", 1)[0] + "/not-the-secret"
        with pytest.raises(WebSocketDisconnect) as refused, http.websocket_connect(wrong) as socket:
            socket.receive_json()
        assert refused.value.code == 1008
