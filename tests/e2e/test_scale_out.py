"""Done when (issue 13): two service processes share a real Redis and one call-record database.

- The answer webhook goes to A, the media socket to B, the signed hang-up to A: B's call ends at
  once with reason ``hangup``, and exactly one completed record exists.
- SIGTERM to B during a live call (a rolling deploy): the call plays on to its end, B's
  ``/readyz`` answers 503, and a new call answered by A works; B exits once its call is over."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.audio.formats import AudioFormat
from app.config import Settings
from app.telephony.signature import sign_headers
from tests.e2e.processes import echoed, service
from tests.e2e.test_media_socket import media_frame, next_play, start_frame
from tests.servers import ROOT, free_port

PUBLIC = "https://agent.example.com"  # both processes behind one public name, as behind a balancer
AUTH_TOKEN = "scale-out-auth-token"
API_KEY = "scale-out-api-key"
STREAM_URL = re.compile(r">wss://agent\.example\.com(/vobiz/media/[^<]+)</Stream>")


@contextmanager
def services(count: int, env: dict[str, str], log_path: Path) -> Iterator[list[str]]:
    """``count`` service processes (``uvicorn --factory app.main:create_app``) on free ports of
    127.0.0.1, started together, up once each ``/healthz`` answers; killed on the way out."""
    procs: list[tuple[subprocess.Popen[bytes], str]] = []
    log = log_path.open("wb")
    try:
        for _ in range(count):
            port = free_port()
            argv = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app"]
            argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
            proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            procs.append((proc, f"http://127.0.0.1:{port}"))
        deadline = time.monotonic() + 30
        for proc, base in procs:
            while not _healthy(base):
                if proc.poll() is not None:
                    log.flush()
                    raise AssertionError(
                        f"{base} exited with {proc.returncode}: {log_path.read_text()[-2000:]}"
                    )
                assert time.monotonic() < deadline, "the services did not come up in 30 s"
                time.sleep(0.05)
        yield [base for _, base in procs]
    finally:
        for proc, _ in procs:
            proc.kill()
            proc.wait(10)
        log.close()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


async def fresh_database(postgres_url: str) -> str:
    """A new, empty database on the test PostgreSQL (the services migrate it as they start; its
    advisory lock lets two start at once, where SQLite would race)."""
    name = f"scale_out_{secrets.token_hex(4)}"
    server = make_url(postgres_url)
    engine = create_async_engine(server, isolation_level="AUTOCOMMIT")  # CREATE DATABASE: no transaction
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f"CREATE DATABASE {name}"))
    finally:
        await engine.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


def environment(redis_url: str, database_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env.update(
        PYTHONPATH=str(ROOT),
        PUBLIC_URL=PUBLIC,
        REDIS_URL=redis_url,
        STREAM_TOKEN_SECRET="scale-out-stream-secret-0123456789",
        SIGNATURE_MODE="enforce",
        VOBIZ_AUTH_TOKEN=AUTH_TOKEN,
        DATABASE_URL=database_url,
        DATA_DIR=str(tmp_path / "data"),
        PROMPTS_DIR=str(ROOT / "prompts"),
        PROVIDERS="echo",
        CALLS_API_KEY=API_KEY,
    )
    return env


async def signed_post(base: str, path: str, form: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        return await client.post(path, data=form, headers=sign_headers(PUBLIC + path, AUTH_TOKEN))


async def test_a_hangup_on_one_process_ends_the_call_on_the_other(
    redis_url: str, postgres_url: str, tmp_path: Path
) -> None:
    env = environment(redis_url, await fresh_database(postgres_url), tmp_path)
    call_id = "scale-out-call-1"
    with ExitStack() as stack:
        a, b = stack.enter_context(services(2, env, tmp_path / "services.log"))
        answer = await signed_post(
            a, "/vobiz/answer", {"CallUUID": call_id, "From": "14155550100", "To": "1"}
        )
        assert answer.status_code == 200
        found = STREAM_URL.search(answer.text)
        assert found is not None, answer.text
        ws_b = "ws://" + b.removeprefix("http://") + found.group(1)  # the stream lands on B
        async with connect(ws_b, max_size=None) as ws:
            await ws.send(start_frame(call_id, AudioFormat("mulaw", 8000)))
            await ws.send(media_frame(b"\xff" * 160))
            await next_play(ws)  # B carries the call
            hangup = {"CallUUID": call_id, "Event": "Hangup", "HangupCause": "NORMAL_CLEARING"}
            assert (await signed_post(a, "/vobiz/hangup", hangup)).status_code == 204
            code = await asyncio.wait_for(closed_by_b(ws), 1.0)  # B ends the call within 1 s
        assert code == 1000
        record = await completed_record(a, call_id)
        assert record["end_reason"] == "hangup"
        # written by B, the holder (its session's counters), not completed by A from the callback
        assert record["hangup_cause"] is None
        assert record["stats"]["frames_in"] >= 1
        async with httpx.AsyncClient(base_url=a, headers={"X-API-Key": API_KEY}) as client:
            listed = (await client.get("/calls")).json()["calls"]
        assert [c["call_id"] for c in listed if c["status"] == "completed"] == [call_id]
        assert [c["call_id"] for c in listed] == [call_id]  # exactly one record


async def closed_by_b(ws: Any) -> int | None:
    try:
        while True:
            await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


async def completed_record(base: str, call_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": API_KEY}) as client:
        for _ in range(200):
            record: dict[str, Any] = (await client.get(f"/calls/{call_id}")).json()
            if record.get("status") == "completed":
                return record
            await asyncio.sleep(0.02)
    raise AssertionError(f"no completed record: {record}")


async def test_sigterm_to_b_lets_its_call_play_to_the_end_while_a_takes_new_calls(
    redis_url: str, postgres_url: str, tmp_path: Path
) -> None:
    env = environment(redis_url, await fresh_database(postgres_url), tmp_path)
    with ExitStack() as stack:
        # ``voice-agent serve``, as deployed: its first SIGTERM drains
        a = stack.enter_context(service(tmp_path, "--workers", "1", **env))
        b = stack.enter_context(service(tmp_path, "--workers", "1", **env))
        async with connect(b.ws + await stream_path(a.base, "deploy-live"), max_size=None) as live:
            await live.send(start_frame("deploy-live", AudioFormat("mulaw", 8000)))
            assert (await echoed(live, 1))["event"] == "playAudio"
            b.signal(signal.SIGTERM)  # a rolling deploy replaces B
            assert b.until("/readyz", 503).json()["status"] == "draining"
            assert a.get("/readyz").status_code == 200
            # a new call: the balancer sends it to A, which answers and carries it
            async with connect(a.ws + await stream_path(a.base, "deploy-new"), max_size=None) as new:
                await new.send(start_frame("deploy-new", AudioFormat("mulaw", 8000)))
                for seq in range(1, 26):
                    assert (await echoed(new, seq))["event"] == "playAudio"
                    assert (await echoed(live, seq + 1))["event"] == "playAudio"  # B's call goes on
            assert b.proc.poll() is None  # its call still holds B
            for seq in range(27, 77):  # another second of B's call, every frame heard and echoed
                assert (await echoed(live, seq))["event"] == "playAudio"
                await asyncio.sleep(0.02)
            assert b.proc.poll() is None
        # the caller hung up: B has nothing live and exits by itself, cleanly
        assert b.exited(within=15) == 0
        assert a.proc.poll() is None
        finished = await completed_record(a.base, "deploy-live")
        assert finished["end_reason"] == "socket-closed"  # ended by the caller, not by the deploy
        assert finished["stats"]["frames_in"] >= 76
        assert (await completed_record(a.base, "deploy-new"))["end_reason"] == "socket-closed"


async def stream_path(base: str, call_id: str) -> str:
    """Answer ``call_id`` at ``base``: the media socket's path from the returned XML."""
    answer = await signed_post(base, "/vobiz/answer", {"CallUUID": call_id, "From": "14155550100", "To": "1"})
    assert answer.status_code == 200
    found = STREAM_URL.search(answer.text)
    assert found is not None, answer.text
    return found.group(1)
