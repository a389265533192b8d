"""``voice-agent simulate`` end to end: the live transcript, the output files, the exit code."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI, Response, WebSocket
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from app.cli import cli
from app.simulator.accuracy import word_error_rate, words
from tests.servers import serve_in_thread

OUTPUTS = {"call.wav", "events.json", "transcript.txt", "transcript.json", "report.json", "timeline.png"}


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run from a scratch folder that has the project's prompts (as a user's checkout would)."""
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROMPTS_DIR", str(root / "prompts"))
    return tmp_path


def test_virtual_call_with_spoken_lines(in_repo: Path) -> None:
    script = in_repo / "call.txt"
    script.write_text("say Hello, is anyone there?\nsilence 1.5\nsay Goodbye\nsilence 1\nhangup\n")
    result = CliRunner().invoke(cli, ["simulate", "--virtual", "--script", str(script), "--out", "out"])
    assert result.exit_code == 0, result.output
    assert "Caller: Hello, is anyone there?" in result.output
    assert "Caller: Goodbye" in result.output
    out = in_repo / "out"
    assert {p.name for p in out.iterdir()} >= OUTPUTS
    report = json.loads((out / "report.json").read_text())
    assert report["ok"] is True
    assert report["protocol_errors"] == []
    with wave.open(str(out / "call.wav")) as wav:
        assert wav.getnchannels() == 2
        assert wav.getframerate() == 16000
        # the whole call is on the tracks: 1.5 s + 1 s of silence plus two spoken lines
        assert wav.getnframes() / 16000 > 3.0
    transcript = (out / "transcript.txt").read_text()
    assert "Caller: Hello, is anyone there?" in transcript


def test_say_lines_make_the_caller_script(in_repo: Path) -> None:
    """--say, repeated: the caller waits for the greeting, says each line in turn, then hangs up."""
    result = CliRunner().invoke(
        cli, ["simulate", "--virtual", "--say", "Hello, is anyone there?", "--say", "Goodbye", "--out", "o"]
    )
    assert result.exit_code == 0, result.output
    transcript = (in_repo / "o" / "transcript.txt").read_text().splitlines()
    said = [line.split("] ", 1)[1] for line in transcript]
    callers = [line for line in said if line.startswith("Caller: ")]
    assert callers == ["Caller: Hello, is anyone there?", "Caller: Goodbye"]
    assert said[0].startswith("Agent: ")  # the greeting came first: the script waited for it
    events = json.loads((in_repo / "o" / "events.json").read_text())["events"]
    assert [e["kind"] for e in events].count("hangup") == 1


def test_url_with_virtual_is_a_one_line_error(in_repo: Path) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--virtual", "--url", "http://127.0.0.1:9", "--say", "Hi"])
    assert result.exit_code == 2
    assert result.output == "error: --virtual runs the app in-process; it cannot be combined with --url\n"
    assert not (in_repo / "sim-out").exists()  # refused before anything ran


def test_bad_script_is_a_clear_error(in_repo: Path) -> None:
    script = in_repo / "bad.txt"
    script.write_text("say hi\ndance 3\n")
    result = CliRunner().invoke(cli, ["simulate", "--virtual", "--script", str(script)])
    assert result.exit_code == 2
    assert "line 2: unknown step 'dance'" in result.output


def wrong_service() -> FastAPI:
    """A service that answers correctly but sends playAudio in a format nobody negotiated."""
    app = FastAPI()

    @app.post("/vobiz/answer")
    async def answer() -> Response:
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Stream bidirectional="true" '
            'keepCallAlive="true" contentType="audio/x-mulaw;rate=8000">ws://127.0.0.1:{port}/ws</Stream>'
            "</Response>"
        )
        return Response(xml.replace("{port}", str(app.state.port)), media_type="application/xml")

    @app.post("/vobiz/hangup")
    async def hangup() -> Response:
        return Response(status_code=204)

    @app.websocket("/ws")
    async def ws(socket: WebSocket) -> None:
        await socket.accept()
        start = json.loads(await socket.receive_text())
        sid = start["start"]["streamId"]
        await socket.send_text(
            json.dumps(
                {
                    "event": "playAudio",
                    "streamId": sid,
                    "media": {"contentType": "audio/x-l16", "sampleRate": 16000, "payload": "AAAA"},
                }
            )
        )
        try:
            while True:
                await socket.receive_text()
        except WebSocketDisconnect:
            return

    return app


def test_protocol_errors_make_a_non_zero_exit(in_repo: Path) -> None:
    app = wrong_service()
    script = in_repo / "s.txt"
    script.write_text("silence 0.3\nhangup\n")
    with serve_in_thread(app) as url:
        app.state.port = int(url.rsplit(":", 1)[1])
        result = CliRunner().invoke(cli, ["simulate", "--url", url, "--script", str(script), "--out", "o"])
    assert result.exit_code == 1, result.output
    assert "playaudio-format-mismatch" in result.output
    report = json.loads((in_repo / "o" / "report.json").read_text())
    assert [e["rule"] for e in report["protocol_errors"]] == ["playaudio-format-mismatch"]


def test_real_time_in_process_call(in_repo: Path) -> None:
    script = in_repo / "s.txt"
    script.write_text("wait 10\nsay Hi\nsilence 0.5\nhangup\n")
    result = CliRunner().invoke(cli, ["simulate", "--script", str(script), "--out", "rt"])
    assert result.exit_code == 0, result.output
    events = json.loads((in_repo / "rt" / "events.json").read_text())["events"]
    kinds = [e["kind"] for e in events]
    assert kinds[:2] == ["call_started", "socket_open"]
    assert "agent_audio_start" in kinds  # the offline agent greeted over the real socket
    assert "Agent: Hello, Sunrise Bakery! How can I help you today?" in result.output
    assert kinds.count("hangup") == 1


def test_the_demo_is_a_spoken_conversation_with_no_keys(in_repo: Path) -> None:
    """The README's first command: the caller's lines spoken by the offline TTS, heard by the
    offline STT, answered from the persona's intents and spoken back, on the virtual clock."""
    result = CliRunner().invoke(cli, ["simulate", "--virtual", "--out", "demo"])
    assert result.exit_code == 0, result.output
    assert "offline speech recognition ready" in result.output  # loaded at start-up, said so
    out = in_repo / "demo"
    transcript = (out / "transcript.txt").read_text().splitlines()
    said = [line.split("] ", 1)[1] for line in transcript]
    heard = [line.removeprefix("  (agent heard): ") for line in said if line.startswith("  (agent heard): ")]
    assert [line for line in said if not line.startswith("  (agent heard): ")] == [
        "Agent: Hello, Sunrise Bakery! How can I help you today?",
        "Caller: Hello, what time do you open tomorrow?",
        "Agent: We open at seven in the morning and close at six, every day except Monday.",
        "Caller: Thanks, that is all. Goodbye.",
        "Agent: You're welcome. Have a lovely day, goodbye!",
    ]
    # each right after the line it heard; Whisper may slip on a word, not on the meaning
    spoken = ["Hello, what time do you open tomorrow?", "Thanks, that is all. Goodbye."]
    assert word_error_rate(zip(spoken, heard, strict=True)) <= 0.25, heard
    assert said[2].startswith("  (agent heard)")
    assert said[5].startswith("  (agent heard)")
    report = json.loads((out / "report.json").read_text())
    accuracy = report["word_accuracy"]
    assert accuracy["words"] == sum(len(words(line)) for line in spoken) == 12
    assert accuracy["errors"] <= 3
    assert accuracy["word_error_rate"] == pytest.approx(accuracy["errors"] / 12)
    assert accuracy["accuracy"] == pytest.approx(1 - accuracy["word_error_rate"])
    assert report["end_reason"].startswith("app")  # the goodbye intent ended the call
    assert f"word accuracy of the agent's speech recognition: {accuracy['accuracy']:.0%}" in result.output
    with wave.open(str(out / "call.wav")) as wav:
        frames = wav.readframes(wav.getnframes())
    stereo = np.frombuffer(frames, dtype="<i2").reshape(-1, 2)
    # the agent's channel carries its three replies, about 5 s of samples above the floor (the
    # rest of each reply is pauses and soft sounds); one reply alone would be under 2.5 s
    loud = np.abs(stereo[:, 1].astype(np.int32)) > 500
    assert loud.sum() / 16000 > 4.0
