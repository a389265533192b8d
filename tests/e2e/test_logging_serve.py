"""``voice-agent serve`` writes JSON lines by default (its own and uvicorn's), text on request,
and serves ``GET /metrics``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def serve(tmp_path: Path, **env: str) -> tuple[list[str], httpx.Response]:
    """Start ``voice-agent serve``, scrape /metrics once it is up, stop it; its output lines."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    environ.update(
        PUBLIC_URL=f"https://agent.example.com:{port}",
        PROVIDERS="echo",
        STREAM_TOKEN_SECRET="serve-test-secret-0123456789",
        PROMPTS_DIR=str(ROOT / "prompts"),
        DATA_DIR=str(tmp_path / "data"),
        SIGNATURE_MODE="off",
        **env,
    )
    argv = [str(BIN / "voice-agent"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(argv, env=environ, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "the service did not come up in 30 s"
                time.sleep(0.1)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    return out.decode().splitlines(), metrics


def test_serve_logs_json_lines_and_serves_metrics(tmp_path: Path) -> None:
    lines, metrics = serve(tmp_path)
    entries = [json.loads(line) for line in lines if line.strip()]
    assert {"app", "uvicorn.error"} <= {e["logger"] for e in entries}  # uvicorn's lines are JSON too
    assert any(e["message"].startswith("PROVIDERS=echo") for e in entries)
    assert not any("color_message" in e for e in entries)
    assert metrics.status_code == 200
    assert "voice_agent_active_calls 0.0" in metrics.text


def test_text_logs_and_no_metrics_on_request(tmp_path: Path) -> None:
    lines, metrics = serve(tmp_path, LOG_FORMAT="text", METRICS_ENABLED="false")
    assert any(" WARNING app: PROVIDERS=echo" in line for line in lines)
    assert not any(line.startswith("{") for line in lines)
    assert metrics.status_code == 404
