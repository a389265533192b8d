"""The two documented ways to start the service really serve: ``voice-agent serve`` and
``uvicorn --factory app.main:create_app``, each in a process of its own, settings from the
environment."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.servers import ROOT, serve_in_process


@pytest.mark.parametrize(
    "command",
    [
        ["voice-agent", "serve", "--host", "127.0.0.1", "--port", "{port}"],
        ["uvicorn", "--factory", "app.main:create_app", "--host", "127.0.0.1", "--port", "{port}"],
    ],
)
def test_the_service_starts_and_answers(command: list[str], tmp_path: Path) -> None:
    def check(base: str, health: httpx.Response) -> None:
        assert health.json() == {"status": "ok", "active_calls": 0}
        answer = httpx.post(f"{base}/vobiz/answer", data={"CallUUID": "c-1", "From": "1", "To": "2"})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/xml")
        # the stream URL is built from PUBLIC_URL, read from the environment
        port = base.rsplit(":", 1)[1]
        assert f">wss://agent.example.com:{port}/vobiz/media/" in answer.text

    serve_in_process(command, ROOT, "/healthz", check, DATA_DIR=str(tmp_path / "data"))
