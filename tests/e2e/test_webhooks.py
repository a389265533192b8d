"""The answer, hang-up and stream-status webhooks through the real app (httpx ASGI transport)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.main import ConfigurationError, create_app
from app.telephony.token import verify_token
from app.telephony.xml import parse_stream_xml

TOKEN = "auth-token-123"


def client_for(settings: Settings) -> httpx.AsyncClient:
    app = create_app(settings)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal:8000")


def v3_header(url: str, nonce: str, token: str = TOKEN) -> dict[str, str]:
    """Signature computed here, independently of app.telephony.signature (PROTOCOL.md §9)."""
    digest = hmac.new(token.encode(), f"{url}.{nonce}".encode(), hashlib.sha256).digest()
    return {"X-Vobiz-Signature-V3": base64.b64encode(digest).decode(), "X-Vobiz-Signature-V3-Nonce": nonce}


async def test_answer_post_returns_bidirectional_stream(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(stream_content_type="audio/x-l16;rate=16000")
    async with client_for(settings) as client:
        resp = await client.post(
            "/vobiz/answer",
            data={"CallUUID": "call-1", "From": "14155551234", "To": "14155556789", "Direction": "inbound"},
        )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/xml")
    assert resp.text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    stream = parse_stream_xml(resp.text)
    assert stream.bidirectional is True
    assert stream.audio_track == "inbound"
    assert stream.keep_call_alive is True
    assert stream.content_type == "audio/x-l16;rate=16000"
    assert stream.status_callback_url is None  # no HTTP twin of every checkpoint ack unless asked for
    prefix = "wss://agent.example.com/vobiz/media/"
    assert stream.url.startswith(prefix)
    claims = verify_token(b"test-secret-0123456789", stream.url.removeprefix(prefix), now=0)
    assert (claims.call_id, claims.persona) == ("call-1", "default")


async def test_answer_asks_for_status_callbacks_only_when_configured(
    make_settings: Callable[..., Settings],
) -> None:
    async with client_for(make_settings(stream_status_callbacks=True)) as client:
        resp = await client.post("/vobiz/answer", data={"CallUUID": "call-cb"})
    stream = parse_stream_xml(resp.text)
    assert stream.status_callback_url == "https://agent.example.com/vobiz/stream-status"


async def test_answer_get_uses_query_string(make_settings: Callable[..., Settings]) -> None:
    async with client_for(make_settings()) as client:
        resp = await client.get("/vobiz/answer", params={"CallUUID": "call-get", "persona": "default"})
    assert resp.status_code == 200
    token = parse_stream_xml(resp.text).url.rsplit("/", 1)[1]
    assert verify_token(b"test-secret-0123456789", token, now=0).call_id == "call-get"


@pytest.mark.parametrize("persona", ["../../etc/passwd", "nope", "DEFAULT", "a/b"])
async def test_unknown_or_unsafe_persona_falls_back_to_default(
    make_settings: Callable[..., Settings], persona: str
) -> None:
    async with client_for(make_settings()) as client:
        resp = await client.post(f"/vobiz/answer?persona={persona}", data={"CallUUID": "c"})
    token = parse_stream_xml(resp.text).url.rsplit("/", 1)[1]
    assert verify_token(b"test-secret-0123456789", token, now=0).persona == "default"


async def test_answer_without_call_uuid_is_400(make_settings: Callable[..., Settings]) -> None:
    async with client_for(make_settings()) as client:
        resp = await client.post("/vobiz/answer", data={"From": "1"})
    assert resp.status_code == 400
    assert "CallUUID" in resp.text


async def test_hangup_delivered_to_answer_url_is_not_answered_with_xml(
    make_settings: Callable[..., Settings],
) -> None:
    async with client_for(make_settings()) as client:
        resp = await client.post("/vobiz/answer", data={"CallUUID": "c", "HangupCause": "NORMAL_CLEARING"})
    assert resp.status_code == 204


@pytest.mark.parametrize("path", ["/vobiz/hangup", "/vobiz/stream-status"])
async def test_callbacks_accept_forms(make_settings: Callable[..., Settings], path: str) -> None:
    async with client_for(make_settings()) as client:
        resp = await client.post(path, data={"CallUUID": "c", "Event": "Hangup", "StreamID": "s"})
    assert resp.status_code == 204


@pytest.mark.parametrize("path", ["/vobiz/answer", "/vobiz/hangup", "/vobiz/stream-status"])
async def test_enforce_rejects_missing_and_bad_signatures(
    make_settings: Callable[..., Settings], path: str
) -> None:
    settings = make_settings(signature_mode="enforce", vobiz_auth_token=TOKEN)
    public = "https://agent.example.com" + path
    async with client_for(settings) as client:
        missing = await client.post(path, data={"CallUUID": "c"})
        bad = await client.post(path, data={"CallUUID": "c"}, headers=v3_header(public, "1", "wrong"))
        # signed for the URL the app saw, not the public one Vobiz called: refused
        internal = await client.post(
            path, data={"CallUUID": "c"}, headers=v3_header("http://internal:8000" + path, "1")
        )
        good = await client.post(
            path + "?x=1", data={"CallUUID": "c"}, headers=v3_header(public, "12345678901234567890")
        )
    assert (missing.status_code, bad.status_code, internal.status_code) == (403, 403, 403)
    assert good.status_code in (200, 204)


async def test_v2_signature_accepted(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(signature_mode="enforce", vobiz_auth_token=TOKEN)
    url = "https://agent.example.com/vobiz/answer"
    digest = hmac.new(TOKEN.encode(), (url + "98765").encode(), hashlib.sha256).digest()
    headers = {
        "X-Vobiz-Signature-V2": base64.b64encode(digest).decode(),
        "X-Vobiz-Signature-V2-Nonce": "98765",
    }
    async with client_for(settings) as client:
        resp = await client.post("/vobiz/answer", data={"CallUUID": "c"}, headers=headers)
    assert resp.status_code == 200


async def test_log_mode_serves_unsigned_requests(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(signature_mode="log", vobiz_auth_token=TOKEN)
    async with client_for(settings) as client:
        resp = await client.post("/vobiz/answer", data={"CallUUID": "c"})
    assert resp.status_code == 200
    assert any("signature missing" in r.getMessage() for r in caplog.records)
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


def test_enforce_without_token_refuses_to_start(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigurationError, match="VOBIZ_AUTH_TOKEN"):
        create_app(make_settings(signature_mode="enforce"))


def test_missing_default_persona_refuses_to_start(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigurationError, match="DEFAULT_PERSONA"):
        create_app(make_settings(default_persona="nobody"))


async def test_healthz(make_settings: Callable[..., Settings]) -> None:
    async with client_for(make_settings()) as client:
        resp = await client.get("/healthz")
    assert resp.json() == {"status": "ok", "active_calls": 0}


def test_short_token_secret_refuses_to_start(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigurationError, match="STREAM_TOKEN_SECRET"):
        create_app(make_settings(stream_token_secret="short"))


async def test_transfer_dials_the_personas_number(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    (tmp_path / "default.md").write_text("---\ndisplay_name: D\n---\nHello.\n")
    (tmp_path / "clinic.md").write_text(
        "---\ndisplay_name: C\ntools: [end_call, transfer_call]\ntransfer_number: '+14155550123'\n---\nHi.\n"
    )
    app = create_app(make_settings(), prompts_dir=tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
        dial = await client.post("/vobiz/transfer/clinic", data={"CallUUID": "c", "Event": "Transfer"})
        none = await client.post("/vobiz/transfer/default", data={"CallUUID": "c"})
        bad = await client.post("/vobiz/transfer/..%2Fetc", data={"CallUUID": "c"})
    assert dial.text.endswith("<Response><Dial><Number>+14155550123</Number></Dial></Response>")
    assert "<Speak>" in none.text
    assert "<Hangup/>" in none.text
    assert bad.status_code in (200, 404)
    assert "<Dial>" not in bad.text


def test_a_broken_persona_refuses_to_start(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    (tmp_path / "default.md").write_text("---\ndisplay_name: D\nvoice_speed: 2\n---\nHello.\n")
    with pytest.raises(ConfigurationError, match=r"default\.md: voice_speed: unknown setting"):
        create_app(make_settings(), prompts_dir=tmp_path)


async def test_persona_by_the_number_called(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    (tmp_path / "default.md").write_text("---\ndisplay_name: D\n---\nHello.\n")
    (tmp_path / "clinic.md").write_text("---\ndisplay_name: C\n---\nHi.\n")
    settings = make_settings(persona_by_number={"+1 (415) 555-0199": "clinic"})
    app = create_app(settings, prompts_dir=tmp_path)

    async def persona_for(query: str, to: str) -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
            resp = await client.post(f"/vobiz/answer{query}", data={"CallUUID": "c", "To": to})
        token = parse_stream_xml(resp.text).url.rsplit("/", 1)[1]
        return verify_token(b"test-secret-0123456789", token, now=0).persona

    assert await persona_for("", "14155550199") == "clinic"  # digits match, however written
    assert await persona_for("", "+14155550100") == "default"  # another number
    assert await persona_for("?persona=default", "14155550199") == "default"  # the URL comes first
    assert await persona_for("?persona=nope", "14155550199") == "clinic"  # then the number


def test_a_number_mapped_to_a_missing_persona_refuses_to_start(
    make_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(ConfigurationError, match=r"PERSONA_BY_NUMBER: 14155550199 maps to 'ghost'"):
        create_app(make_settings(persona_by_number={"+14155550199": "ghost"}))
    with pytest.raises(ValueError, match="is not a phone number"):
        make_settings(persona_by_number={"reception": "default"})
