"""Nothing of a call reaches the service's output: a whole call through the service as its own
process (``voice-agent serve`` at DEBUG, and ``uvicorn --factory`` with uvicorn's access log on),
then no line holds the stream token or a phone number. uvicorn prints every request path
(``"WebSocket /vobiz/media/<token>" [accepted]``); the token opens the call's stream."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from app.audio.formats import AudioFormat
from app.telephony.signature import sign_headers
from app.telephony.xml import parse_stream_xml
from tests.e2e.test_media_socket import media_frame, next_play, start_frame
from tests.servers import serve_in_process

AUTH_TOKEN = "private-urls-auth-token"
CALLER, CALLED = "14155550123", "919812345678"


async def one_call(base: str) -> str:
    """A signed answer, the call's socket (echoed audio), a refused second socket, a stray GET
    of the stream URL, the signed hang-up; the stream token the answer gave."""
    async with httpx.AsyncClient(base_url=base) as client:
        answer = await client.post(
            "/vobiz/answer",
            data={"CallUUID": "call-private", "From": f"+{CALLER}", "To": CALLED, "Direction": "inbound"},
            headers=sign_headers(f"{base}/vobiz/answer", AUTH_TOKEN),
        )
        assert answer.status_code == 200, answer.text
        url = parse_stream_xml(answer.text).url
        token = url.rsplit("/", 1)[1]
        async with connect(url) as ws:
            await ws.send(start_frame("call-private", AudioFormat("mulaw", 8000)))
            await ws.send(media_frame(b"\xff" * 160))
            await next_play(ws)
            with contextlib.suppress(InvalidStatus):  # refused (test_stream_reuse.py): one more line
                async with connect(url):
                    pass
        assert (await client.get(f"/vobiz/media/{token}")).status_code in (403, 404)
        hangup = await client.post(
            "/vobiz/hangup",
            data={"CallUUID": "call-private", "From": CALLER, "To": CALLED, "HangupCause": "NORMAL_CLEARING"},
            headers=sign_headers(f"{base}/vobiz/hangup", AUTH_TOKEN),
        )
        assert hangup.status_code == 204
        for _ in range(200):  # the call's end is logged before the service stops
            if (await client.get("/healthz")).json()["active_calls"] == 0:
                break
            await asyncio.sleep(0.02)
    return token


@pytest.mark.parametrize(
    ("command", "env"),
    [
        (["voice-agent", "serve", "--host", "127.0.0.1", "--port", "{port}"], {"LOG_LEVEL": "DEBUG"}),
        (["uvicorn", "--factory", "app.main:create_app", "--host", "127.0.0.1", "--port", "{port}"], {}),
    ],
)
def test_no_stream_token_or_phone_number_in_the_output(
    command: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    token, lines = serve_in_process(
        command,
        tmp_path,
        "/healthz",
        lambda base, _: asyncio.run(one_call(base)),
        PUBLIC_URL="http://127.0.0.1:{port}",
        SIGNATURE_MODE="enforce",
        VOBIZ_AUTH_TOKEN=AUTH_TOKEN,
        **env,
    )
    output = "\n".join(lines)
    for secret in (token, token[:12], token[-12:], CALLER, CALLED, CALLER[-10:], CALLED[-10:], AUTH_TOKEN):
        assert secret not in output
    assert "/vobiz/media/<redacted>" in output  # the lines are there, and redacted
    assert output.count("/vobiz/media/") == output.count("/vobiz/media/<redacted>")
