"""The two documented ways to start the service really serve: ``voice-agent serve`` and
``uvicorn --factory app.main:create_app``, each in a process of its own, settings from the
environment; and they are secure by default (signatures enforced, no start without the token)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.config import Settings, SignatureMode
from app.main import create_app
from tests.servers import ROOT, free_port, serve_in_process


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


def test_serve_without_a_vobiz_token_refuses_to_start_in_one_line(tmp_path: Path) -> None:
    """Secure by default: SIGNATURE_MODE is enforce unless set, and enforce needs the token."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    env |= {
        "PROMPTS_DIR": str(ROOT / "prompts"),
        "DATA_DIR": str(tmp_path / "data"),
        "PROVIDERS": "echo",
    }
    serve = str(Path(sys.executable).parent / "voice-agent")
    proc = subprocess.run(
        [serve, "serve", "--host", "127.0.0.1", "--port", str(free_port())],
        capture_output=True, text=True, timeout=60, check=False, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    assert "VOBIZ_AUTH_TOKEN" in errors[0]
    assert "SIGNATURE_MODE=off" in errors[0]
    assert "Traceback" not in proc.stderr


async def test_an_unsigned_hangup_is_refused_by_default(tmp_path: Path) -> None:
    """With the token set and SIGNATURE_MODE left alone, an unsigned webhook gets 403."""
    settings = Settings(
        _env_file=None,
        vobiz_auth_token="default-mode-token",
        stream_token_secret="test-secret-0123456789",
        providers="echo",
        data_dir=tmp_path / "data",
        prompts_dir=ROOT / "prompts",
    )
    assert settings.signature_mode is SignatureMode.ENFORCE
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        hangup = await client.post("/vobiz/hangup", data={"CallUUID": "c-1", "Event": "Hangup"})
        answer = await client.post("/vobiz/answer", data={"CallUUID": "c-1"})
    assert (hangup.status_code, answer.status_code) == (403, 403)


def test_without_public_url_serve_advertises_the_port_it_listens_on(tmp_path: Path) -> None:
    def advertised(base: str, _: httpx.Response) -> tuple[str, str]:
        answer = httpx.post(f"{base}/vobiz/answer", data={"CallUUID": "c-1", "From": "1", "To": "2"})
        return base, answer.text

    command = ["voice-agent", "serve", "--host", "127.0.0.1", "--port", "{port}"]
    (base, xml), _ = serve_in_process(command, tmp_path, "/healthz", advertised, PUBLIC_URL=None)
    port = base.rsplit(":", 1)[1]
    assert port != "8000"
    assert f">ws://127.0.0.1:{port}/vobiz/media/" in xml


async def test_docs_are_served_from_the_package_without_a_cdn(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, signature_mode=SignatureMode.OFF, providers="echo")
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert "/openapi.json" in page.text
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        assert assets  # the script, the stylesheet and the icon
        assert all(url.startswith("/docs/assets/") for url in assets), assets
        for url in assets:
            response = await client.get(url)
            assert response.status_code == 200, url
            assert response.content, url
        assert (await client.get("/openapi.json")).json()["info"]["title"] == app.title


def test_version_is_printed() -> None:
    proc = subprocess.run([str(Path(sys.executable).parent / "voice-agent"), "--version"],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"voice-agent \d+\.\d+\.\d+\S*\n", proc.stdout)
