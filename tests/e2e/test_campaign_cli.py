"""``voice-agent campaign run``: a user's mistake is one line and exit 2, before anything is dialled."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import pytest

from app.clock import SystemClock
from app.main import create_app
from app.simulator.callee import Callee
from app.simulator.caller import HangUp, Silence
from app.simulator.connect import NetworkConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.vobiz_rest import create_fake_rest_app
from app.simulator.vobiz_rest_state import FakeVobizState
from tests.e2e.test_cli_errors import one_line, voice_agent
from tests.servers import free_port, run_server

PERSONA = """---
display_name: Sunrise Finance
variables: {name: "there"}
---
Remind {name} of the payment.
"""


@pytest.mark.parametrize(
    ("contacts", "options", "expected"),
    [
        (None, [], "error: contacts file not found: missing.csv"),
        ("number,first\n+919800000001,Asha\n", [], "error: contacts.csv: the persona uses {name} but"),
        ("name\nAsha\n", [], "error: contacts.csv: no 'number' column"),
        ("number,name\n+919800000001,Asha\n", ["--persona", "nope"], "error: no persona 'nope' in"),
        ("number,name\n+919800000001,Asha\n", ["--hours", "9 to 5"], "error: --hours '9 to 5': use HH:MM"),
        ("number,name\n+919800000001,Asha\n", ["--from", "me"], "error: --from 'me' is not a phone number"),
        ("number,name\n+919800000001,Asha\n", ["--dnc", "none.txt"], "error: do-not-call file not found"),
    ],
)
def test_campaign_mistakes(tmp_path: Path, contacts: str | None, options: list[str], expected: str) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "collector.md").write_text(PERSONA)
    name = "missing.csv"
    if contacts is not None:
        name = "contacts.csv"
        (tmp_path / name).write_text(contacts)
    args = {"--persona": "collector", "--from": "+918071387423"}
    for flag, value in zip(options[::2], options[1::2], strict=True):
        args[flag] = value
    flat = [part for pair in args.items() for part in pair]
    proc = voice_agent("campaign", "run", name, *flat, cwd=tmp_path, env={"PROMPTS_DIR": str(prompts)})
    assert one_line(proc).startswith(expected)
    assert not (tmp_path / "contacts.state.json").exists()  # nothing was dialled


COLLECTOR = """---
display_name: Sunrise Finance
variables: {name: "there"}
voicemail: leave
voicemail_message: "Hello {name}, please call Sunrise Finance back."
---
Remind {name} of the payment.
"""
AUTH_ID, AUTH_TOKEN = "MA_SIMULATOR00000001", "simulator-auth-token"


def test_campaign_command_over_loopback(tmp_path: Path, make_settings: Any) -> None:
    """The real command in its own process, against the service and the fake Vobiz on 127.0.0.1:
    every outcome lands in the results; run again, it dials nobody."""
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "collector.md").write_text(COLLECTOR)
    service_port, vobiz_port = free_port(), free_port()
    service_url, vobiz_url = f"http://127.0.0.1:{service_port}", f"http://127.0.0.1:{vobiz_port}"
    settings = make_settings(
        public_url=service_url,
        signature_mode="enforce",
        vobiz_auth_id=AUTH_ID,
        vobiz_auth_token=AUTH_TOKEN,
        vobiz_api_base_url=f"{vobiz_url}/api/v1",
        prompts_dir=prompts,
        default_persona="collector",
    )
    state = FakeVobizState()
    vobiz = FakeVobiz(NetworkConnector(), SystemClock(), PlatformConfig(auth_token=AUTH_TOKEN))
    vobiz.attach_rest(state)
    person = Callee(steps=(Silence(1.0), HangUp()))
    vobiz.callees = {
        "919800000001": person,
        "919800000002": Callee(answers=("busy", "person"), steps=person.steps, ring_s=0.3),
        "919800000003": Callee(answers=("machine",), greeting_s=1.0, beep_s=0.3, record_s=10.0,
                               detect_after_s=0.5),
        "919800000004": person,
    }  # fmt: skip
    (tmp_path / "contacts.csv").write_text(
        "number,name\n+919800000001,Asha\n+919800000002,Ravi\n+919800000003,Meera\n+919800000004,Dev\nbad,X\n"
    )
    (tmp_path / "dnc.txt").write_text("+919800000004\n")
    env = {
        "PROMPTS_DIR": str(prompts),
        "VOBIZ_AUTH_ID": AUTH_ID,
        "VOBIZ_AUTH_TOKEN": AUTH_TOKEN,
        "VOBIZ_API_BASE_URL": f"{vobiz_url}/api/v1",
        "PUBLIC_URL": service_url,
        "DATA_DIR": str(settings.data_dir),
        "STREAM_TOKEN_SECRET": settings.stream_token_secret.get_secret_value(),
    }
    args = ["campaign", "run", "contacts.csv", "--persona", "collector", "--from", "+918071387423",
            "--max-concurrent", "3", "--dnc", "dnc.txt", "--retries", "1", "--retry-delay", "0.5",
            "--hours", "00:00-24:00", "--poll-interval", "0.2"]  # fmt: skip
    with (
        run_server(create_app(settings), port=service_port),
        run_server(create_fake_rest_app(AUTH_ID, AUTH_TOKEN, state), port=vobiz_port) as fake,
    ):
        stop, _held = asyncio.run_coroutine_threadsafe(_serve_calls(vobiz), fake.loop).result(timeout=10)
        try:
            first = voice_agent(*args, cwd=tmp_path, env=env)
            made = len(state.requests_to("POST", f"/api/v1/Account/{AUTH_ID}/Call/"))
            again = voice_agent(*args, cwd=tmp_path, env=env)
            made_again = len(state.requests_to("POST", f"/api/v1/Account/{AUTH_ID}/Call/"))
        finally:
            fake.loop.call_soon_threadsafe(stop.set)
    assert first.returncode == 0, first.stderr
    assert "skipped: contacts.csv line 6: not a phone number" in first.stderr
    rows = list(csv.DictReader((tmp_path / "contacts.results.csv").read_text().splitlines()))
    assert [(r["number"], r["outcome"], r["attempts"]) for r in rows] == [
        ("+919800000001", "answered", "1"),
        ("+919800000002", "answered", "2"),
        ("+919800000003", "voicemail", "1"),
        ("+919800000004", "dnc", "0"),
        ("bad", "skipped", "0"),
    ]
    assert rows[0]["record_id"]
    assert made == 4  # one each, and the busy number twice
    assert again.returncode == 0, again.stderr
    assert made_again == made  # resumed from the state file: everything was done
    (machine,) = [rec for rec in vobiz.finished if rec.call_id == rows[2]["record_id"]]
    (speak,) = [e for e in machine.events if e.kind == "speak"]
    assert speak.detail["text"] == "Hello Meera, please call Sunrise Finance back."


async def _serve_calls(vobiz: FakeVobiz) -> tuple[asyncio.Event, asyncio.Task[None]]:
    """Keep ``vobiz.serving()`` open on the fake's own loop (it places the calls Make Call asks
    for) until the returned event is set; the task is returned so that it is held."""
    stop = asyncio.Event()
    ready = asyncio.Event()

    async def hold() -> None:
        async with vobiz.serving():
            ready.set()
            await stop.wait()

    task = asyncio.get_running_loop().create_task(hold(), name="fake-vobiz-serving")
    await ready.wait()
    return stop, task
