"""The two documented ways to start the service really serve: ``voice-agent serve`` and
``uvicorn --factory app.main:create_app``, each in a process of its own, settings from the
environment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(
        PUBLIC_URL=f"https://agent.example.com:{port}",
        PROVIDERS="echo",  # the telephony alone: no models to load
        STREAM_TOKEN_SECRET="serve-test-secret-0123456789",
        PROMPTS_DIR=str(ROOT / "prompts"),
        SIGNATURE_MODE="off",
    )
    return env


@pytest.mark.parametrize(
    "command",
    [
        ["voice-agent", "serve", "--host", "127.0.0.1", "--port", "{port}"],
        ["uvicorn", "--factory", "app.main:create_app", "--host", "127.0.0.1", "--port", "{port}"],
    ],
)
def test_the_service_starts_and_answers(command: list[str]) -> None:
    port = free_port()
    argv = [str(BIN / command[0]), *(a.replace("{port}", str(port)) for a in command[1:])]
    proc = subprocess.Popen(argv, env=_env(port), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "the service did not come up in 30 s"
                time.sleep(0.1)
        assert health.json() == {"status": "ok", "active_calls": 0}
        answer = httpx.post(f"{base}/vobiz/answer", data={"CallUUID": "c-1", "From": "1", "To": "2"})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/xml")
        # the stream URL is built from PUBLIC_URL, read from the environment
        assert f">wss://agent.example.com:{port}/vobiz/media/" in answer.text
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # reaps it and closes its output pipe
