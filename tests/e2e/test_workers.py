"""``voice-agent serve --workers N``: workers on one port under a supervisor that replaces a worker
that dies, forwards SIGTERM (each worker drains) and exits when they have; more than one worker
needs ``REDIS_URL``."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from app.config import Settings
from tests.e2e.processes import Service, alive, children, echoed, service, start_call
from tests.servers import ROOT, free_port


def workers_seen(svc: Service, within: float = 60.0) -> set[int]:
    """The worker pids that answer ``/readyz`` on fresh connections, until two have (or
    ``within`` seconds pass: a worker may still be starting, slowly on a busy machine)."""
    seen: set[int] = set()
    deadline = time.monotonic() + within
    while len(seen) < 2 and time.monotonic() < deadline:
        seen.add(svc.get("/readyz").json()["worker"])
        time.sleep(0.01)
    return seen


def answered_stream_path(svc: Service, call_id: str) -> str:
    """The media path of the answer webhook's ``<Stream>`` (its token made by whichever worker
    took the request)."""
    with httpx.Client(timeout=5) as client:
        answer = client.post(f"{svc.base}/vobiz/answer", data={"CallUUID": call_id, "From": "1", "To": "2"})
    match = re.search(r">wss://[^/<]+(/vobiz/media/[^<]+)<", answer.text)
    assert match is not None, answer.text
    return match.group(1)


def replaced(svc: Service, dead: int) -> None:
    """Wait until two workers serve again, ``dead`` not among them."""
    deadline = time.monotonic() + 60  # a new interpreter and app: slow on a busy machine
    while time.monotonic() < deadline:
        serving = set(children(svc.proc.pid)) & workers_seen(svc, within=0.5)
        if len(serving) == 2 and dead not in serving:
            return
    raise AssertionError("the dead worker was not replaced")


async def test_two_workers_serve_one_port_share_tokens_and_drain_on_sigterm(
    tmp_path: Path, redis_url: str
) -> None:
    # no STREAM_TOKEN_SECRET: the supervisor makes one for both workers
    with service(tmp_path, "--workers", "2", REDIS_URL=redis_url, STREAM_TOKEN_SECRET="") as svc:
        pids = workers_seen(svc)
        assert len(pids) == 2
        assert pids <= set(children(svc.proc.pid))  # the supervisor's own workers
        # a token made by either worker opens a socket on either: every call goes through
        for i in range(6):
            async with connect(f"{svc.ws}{answered_stream_path(svc, f'c-{i}')}") as ws:
                await start_call(ws, f"c-{i}")
                assert (await echoed(ws, 1))["event"] == "playAudio"
        # a worker that dies is replaced (one start-up serves both checks: workers start slowly)
        dead = min(pids)
        os.kill(dead, signal.SIGKILL)
        await asyncio.to_thread(replaced, svc, dead)
        async with connect(f"{svc.ws}{answered_stream_path(svc, 'c-live')}") as ws:
            await start_call(ws, "c-live")
            await echoed(ws, 1)
            svc.signal(signal.SIGTERM)
            svc.until("/readyz", 503)
            for seq in range(2, 20):  # the live call goes on
                await echoed(ws, seq)
            assert svc.proc.poll() is None
        assert svc.exited(within=30) == 0
        assert not [pid for pid in pids if alive(pid)]


def test_more_than_one_worker_without_redis_refuses_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env |= {"PROMPTS_DIR": str(ROOT / "prompts"), "DATA_DIR": str(tmp_path / "data"), "PROVIDERS": "echo"}
    serve = str(Path(sys.executable).parent / "voice-agent")
    proc = subprocess.run(
        [serve, "serve", "--host", "127.0.0.1", "--port", str(free_port()), "--workers", "2"],
        capture_output=True, text=True, timeout=60, check=False, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: --workers 2 needs REDIS_URL (the workers share calls through Redis); "
        "set REDIS_URL or run one worker"
    ]
