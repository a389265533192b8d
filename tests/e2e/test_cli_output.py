"""Output that is not a terminal (a pipe, a CI log) is not hard-wrapped at 80 columns."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_cli_errors import voice_agent

LONG = (
    "Hello, I would like to book a table for four people this Saturday evening at half past seven, "
    "somewhere near the window if you have one"
)


def test_a_long_transcript_line_stays_one_line_in_a_pipe(tmp_path: Path) -> None:
    assert len(LONG) > 120
    proc = voice_agent("simulate", "--virtual", "--say", LONG, "--out", "out", cwd=tmp_path,
                       env={"PROVIDERS": "echo"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert any(line.endswith(f"Caller: {LONG}") for line in proc.stdout.splitlines()), proc.stdout
