"""The command works from any folder: the example personas ship inside the package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.e2e.test_cli_errors import ROOT, voice_agent

EXAMPLES = sorted(path.name for path in (ROOT / "prompts").glob("*.md"))


def test_simulate_and_personas_list_work_outside_the_checkout(tmp_path: Path) -> None:
    env: dict[str, str | None] = {"PROMPTS_DIR": None, "PROVIDERS": "echo"}
    listed = voice_agent("personas", "list", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "default (default)" in listed.stdout
    proc = voice_agent("simulate", "--virtual", "--say", "Hello there", "--out", "out", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "report.json").is_file()


def test_prompts_dir_overrides_the_shipped_personas(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "default.md").write_text((ROOT / "prompts" / "default.md").read_text())
    (mine / "front-desk.md").write_text((ROOT / "prompts" / "default.md").read_text())
    listed = voice_agent("personas", "list", cwd=tmp_path, env={"PROMPTS_DIR": str(mine)})
    assert listed.returncode == 0, listed.stderr
    assert "front-desk" in listed.stdout
    assert "restaurant" not in listed.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)]
    subprocess.run([sys.executable, "-m", "pip", *build], check=True, capture_output=True, timeout=300)
    [built] = out.glob("*.whl")
    return built


def test_the_wheel_carries_the_example_personas_and_finds_them(wheel: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(Path(name).name for name in archive.namelist() if name.startswith("app/prompts/"))
        archive.extractall(tmp_path / "site")
    assert shipped == EXAMPLES
    # imported from the unpacked wheel, in a folder with no prompts/: the shipped ones are found
    code = "from app.config import Settings; print(Settings(_env_file=None).prompts_dir)"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "site")}
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = run.stdout.strip()
    assert Path(found) == tmp_path / "site" / "app" / "prompts"
