"""A user's mistake on the command line is one line saying what to do, and exit code 2.

Each test runs ``voice-agent`` in a fresh interpreter, from a scratch folder, the way a person
types it: the line they read is the process's standard error, whole."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[2]
# the embedded engines' packages, made unimportable as if the `embedded` extra were not installed
WITHOUT_EMBEDDED = textwrap.dedent(
    """
    import sys
    for name in ("piper", "faster_whisper", "ctranslate2", "espeakng_loader"):
        sys.modules[name] = None
    """
)


def voice_agent(
    *args: str, cwd: Path, env: Mapping[str, str | None] | None = None, prelude: str = ""
) -> subprocess.CompletedProcess[str]:
    """``voice-agent *args`` in a fresh interpreter (``prelude`` runs first); ``env`` adds settings,
    and a ``None`` value removes one."""
    keep = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_AUTH_TOKEN", "_URL"))}
    given = {"PYTHONPATH": str(ROOT), "PROMPTS_DIR": str(ROOT / "prompts"), **(env or {})}
    environ = {**keep, **{k: v for k, v in given.items() if v is not None}}
    for name in [name for name, value in given.items() if value is None]:
        environ.pop(name, None)
    code = prelude + "\nfrom app.cli import main\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd, env=environ, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The error line; fails unless standard error is exactly one line and the exit code 2."""
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert proc.returncode == 2, proc.stderr
    return lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens on it once closed


def test_a_missing_script_is_named(tmp_path: Path) -> None:
    line = one_line(voice_agent("simulate", "--script", "/missing.txt", cwd=tmp_path))
    assert line == "error: cannot read the caller script /missing.txt: No such file or directory"


def test_nothing_listening_at_the_url_asks_whether_serve_runs(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    line = one_line(voice_agent("simulate", "--url", url, cwd=tmp_path))
    assert line == f"error: nothing answers at {url}; is `voice-agent serve` running?"


def test_a_bad_setting_names_the_setting_the_value_and_the_choices(tmp_path: Path) -> None:
    line = one_line(voice_agent("serve", cwd=tmp_path, env={"PROVIDERS": "nonsense"}))
    assert (
        line == "error: PROVIDERS=nonsense is not allowed; use one of: 'auto', 'cloud', 'offline' or 'echo'"
    )


def test_a_bad_secret_setting_is_named_without_its_value(tmp_path: Path) -> None:
    env = {"STREAM_TOKEN_TTL_SECONDS": "soon", "PROVIDERS": "echo"}
    line = one_line(voice_agent("serve", cwd=tmp_path, env=env))
    assert line.startswith("error: STREAM_TOKEN_TTL_SECONDS: ")
    assert "soon" not in line  # only a choice among fixed words is repeated back


def test_simulate_without_the_embedded_extra_says_what_serve_says(tmp_path: Path) -> None:
    port = str(closed_port())
    serve = voice_agent(
        "serve", "--port", port, cwd=tmp_path, env={"SIGNATURE_MODE": "off"}, prelude=WITHOUT_EMBEDDED
    )
    assert serve.returncode == 2, serve.stderr
    # serve logs its start-up before the error (structured log lines); the error is its own line
    [served] = [line for line in serve.stderr.splitlines() if line.startswith("error:")]
    simulated = one_line(voice_agent("simulate", cwd=tmp_path, prelude=WITHOUT_EMBEDDED))
    assert simulated == served
    assert "pip install -e '.[embedded]'" in simulated


def test_an_unknown_persona_is_named_with_the_valid_ones(tmp_path: Path) -> None:
    line = one_line(voice_agent("simulate", "--persona", "nosuch", cwd=tmp_path))
    valid = sorted(path.stem for path in (ROOT / "prompts").glob("*.md"))
    assert line == f"error: no persona 'nosuch' in {ROOT / 'prompts'}; valid: {', '.join(valid)}"


def test_a_float_wav_as_audacity_saves_it_is_spoken(tmp_path: Path) -> None:
    wav = tmp_path / "hello.wav"
    t = np.arange(int(0.8 * 44100)) / 44100
    soundfile.write(wav, 0.4 * np.sin(2 * np.pi * 440 * t), 44100, subtype="FLOAT")
    script = tmp_path / "call.txt"
    script.write_text(f"say-wav {wav}\nsilence 1\nhangup\n")
    proc = voice_agent("simulate", "--virtual", "--script", str(script), "--out", "out", cwd=tmp_path,
                       env={"PROVIDERS": "echo"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Caller: (hello.wav)" in proc.stdout
    with soundfile.SoundFile(tmp_path / "out" / "call.wav") as call:
        caller = call.read(dtype="int16")[:, 0]
    assert int(np.abs(caller).max()) > 8000  # the tone reached the line at about its level


def test_a_port_in_use_is_named_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"SIGNATURE_MODE": "off", "PROVIDERS": "echo"}
        for command in (
            ["serve", "--host", "127.0.0.1", "--port", str(port)],
            ["playground", "--port", str(port)],
        ):
            proc = voice_agent(*command, cwd=tmp_path, env=env)
            [line] = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
            assert line == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
            assert proc.returncode == 2
            assert "playground: open" not in proc.stdout  # no URL for a service that never started
