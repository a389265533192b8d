"""``voice-agent serve`` writes JSON lines by default (its own and uvicorn's), text on request,
and serves ``GET /metrics``."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.servers import serve_in_process


def serve(tmp_path: Path, **env: str) -> tuple[list[str], httpx.Response]:
    """Start ``voice-agent serve``, scrape /metrics once it is up, stop it; its output lines."""
    command = ["voice-agent", "serve", "--host", "127.0.0.1", "--port", "{port}"]
    metrics, lines = serve_in_process(command, tmp_path, "/metrics", lambda _, reply: reply, **env)
    return lines, metrics


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
