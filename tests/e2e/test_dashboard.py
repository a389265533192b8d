"""``/dashboard`` through the real app: the login form and its cookie, the calls table with masked
numbers, a call's page with its transcript, cut marks, latency and tool calls."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator, Callable

import httpx
import numpy as np
import pytest
import soundfile

from app.config import Settings
from app.main import create_app
from app.records.record import COMPLETED, CallRecord

KEY = "dashboard-key-0123456789"
RECORD = CallRecord(
    call_id="call-dash-1",
    status=COMPLETED,
    persona="restaurant",
    caller="+919876543210",
    called="+14155550199",
    started_at=1_764_000_000.0,
    ended_at=1_764_000_042.0,
    end_reason="caller-hangup",
    barge_ins=1,
    transcript=(
        {"t": 0.4, "speaker": "agent", "text": "Bella Napoli, how can I help?", "interrupted": False},
        {"t": 2.1, "speaker": "caller", "text": "A table for four <b>tonight</b>", "interrupted": False},
        {"t": 3.0, "speaker": "agent", "text": "Of course, for what", "interrupted": True},
    ),
    tool_calls=({"id": "t1", "name": "reserve_table", "arguments": '{"party": 4}'},),
    latency=(
        {
            "turn": 0,
            "speech_end": None,
            "stt_final": None,
            "turn_end": None,
            "llm_first_token": None,
            "tts_first_audio": 0.2,
            "first_play_audio": 0.3,
            "interrupted": False,
        },
        {
            "turn": 1,
            "speech_end": 2.5,
            "stt_final": 2.6,
            "turn_end": 2.7,
            "llm_first_token": 2.9,
            "tts_first_audio": 3.0,
            "first_play_audio": 3.05,
            "interrupted": True,
        },
    ),
)

RECORDING = dataclasses.replace(RECORD, call_id="call-dash-rec", recording="call-dash-rec.wav", transcript=())


@pytest.fixture
async def client(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(calls_api_key=KEY)
    app = create_app(settings)
    recordings = settings.data_dir / "recordings"
    recordings.mkdir(parents=True, exist_ok=True)
    tone = (3000 * np.sin(np.arange(8000) / 8000 * 2 * np.pi * 440)).astype(np.int16)
    soundfile.write(
        recordings / f"{RECORDING.call_id}.wav", np.stack([tone, tone], axis=1), 8000, subtype="PCM_16"
    )
    async with app.router.lifespan_context(app):
        await app.state.call_records.save(RECORD)
        await app.state.call_records.save(RECORDING)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://agent") as http:
            yield http


async def sign_in(client: httpx.AsyncClient, key: str = KEY) -> httpx.Response:
    return await client.post("/dashboard/login", data={"key": key})


async def test_without_a_key_configured_the_dashboard_does_not_exist(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://agent") as client:
        assert (await client.get("/dashboard")).status_code == 404
        assert (await client.get("/dashboard/login")).status_code == 404
        assert (await client.post("/dashboard/login", data={"key": "x"})).status_code == 404


async def test_signed_out_pages_send_to_the_login_form(client: httpx.AsyncClient) -> None:
    for path in ("/dashboard", f"/dashboard/calls/{RECORD.call_id}"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/login"
    form = await client.get("/dashboard/login")
    assert 'type="password"' in form.text


async def test_a_wrong_key_is_refused_and_sets_no_cookie(client: httpx.AsyncClient) -> None:
    response = await sign_in(client, "not-the-key")
    assert response.status_code == 401
    assert "That key is not right" in response.text
    assert "set-cookie" not in response.headers
    assert (await client.get("/dashboard")).status_code == 303


async def test_the_cookie_is_not_the_key_and_is_locked_down(client: httpx.AsyncClient) -> None:
    response = await sign_in(client)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert KEY not in cookie
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert "Secure" in cookie  # PUBLIC_URL is https
    assert "Path=/;" in cookie
    # the cookie does not open the JSON API (which wants the key itself)
    assert (await client.get("/calls")).status_code == 401


async def test_the_table_masks_numbers_until_asked(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    page = (await client.get("/dashboard")).text
    assert "+••••••••3210" in page
    assert "+919876543210" not in page
    assert "restaurant" in page
    assert "42 s" in page
    assert "caller-hangup" in page
    shown = (await client.get("/dashboard?numbers=shown")).text
    assert "+919876543210" in shown


async def test_a_call_page_shows_the_transcript_cut_marks_latency_and_tools(
    client: httpx.AsyncClient,
) -> None:
    await sign_in(client)
    response = await client.get(f"/dashboard/calls/{RECORD.call_id}")
    assert response.status_code == 200
    page = response.text
    assert "Bella Napoli, how can I help?" in page
    assert "A table for four &lt;b&gt;tonight&lt;/b&gt;" in page  # escaped, never markup
    assert page.count("✂ cut") == 1  # the one interrupted line
    assert "reserve_table" in page
    assert "<td>100</td>" in page  # stt_final 100 ms after the caller stopped
    assert "<td>550</td>" in page  # first playAudio 550 ms after
    assert "<td>0</td>" not in page  # the greeting answers nobody: no row
    assert "+•••••••0199" in page
    assert (await client.get("/dashboard/calls/nosuch")).status_code == 404


async def test_sign_out_forgets_the_cookie(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    assert (await client.get("/dashboard")).status_code == 200
    response = await client.post("/dashboard/logout")
    assert response.status_code == 303
    assert (await client.get("/dashboard")).status_code == 303


async def test_a_recorded_call_has_a_player_that_plays_for_a_signed_in_user(
    client: httpx.AsyncClient,
) -> None:
    player = f'src="/dashboard/calls/{RECORDING.call_id}/recording"'
    assert (await client.get(f"/dashboard/calls/{RECORDING.call_id}/recording")).status_code == 401
    await sign_in(client)
    assert player in (await client.get(f"/dashboard/calls/{RECORDING.call_id}")).text
    assert "<audio" not in (await client.get(f"/dashboard/calls/{RECORD.call_id}")).text  # not recorded
    response = await client.get(f"/dashboard/calls/{RECORDING.call_id}/recording")
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    with soundfile.SoundFile(io.BytesIO(response.content)) as wav:
        assert (wav.channels, wav.samplerate, wav.frames) == (2, 8000, 8000)
    assert (await client.get(f"/dashboard/calls/{RECORD.call_id}/recording")).status_code == 404
