"""The container files, checked without a Docker engine (none runs here), and .env.example."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_runs_non_root_with_healthcheck() -> None:
    instructions = dockerfile_instructions()
    keywords = [k for k, _ in instructions]
    final_stage = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    users = [rest for k, rest in final_stage if k == "USER"]
    assert users, "the final stage must switch to a non-root user"
    assert users[-1] not in ("root", "0")
    health = [rest for k, rest in final_stage if k == "HEALTHCHECK"]
    assert len(health) == 1
    assert "/healthz" in health[0]
    assert ("EXPOSE", "8000") in final_stage
    cmd = [rest for k, rest in final_stage if k == "CMD"][-1]
    assert '"voice-agent", "serve"' in cmd
    assert keywords.count("FROM") == 2


def test_dockerfile_copies_only_paths_that_exist() -> None:
    for keyword, rest in dockerfile_instructions():
        if keyword != "COPY" or "--from=" in rest:
            continue
        args = [a for a in shlex.split(rest) if not a.startswith("--")]
        for source in args[:-1]:
            assert (ROOT / source).exists(), f"COPY source {source} is missing"


def test_compose_file_is_valid_and_matches_the_image() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    agent = compose["services"]["agent"]
    assert agent["build"]["context"] == "."
    assert "EXTRAS" in agent["build"]["args"]  # the same build argument the Dockerfile takes
    assert "ARG EXTRAS" in (ROOT / "Dockerfile").read_text()
    assert agent["env_file"] == [".env"]
    assert "8000:8000" in agent["ports"]
    assert "/healthz" in " ".join(agent["healthcheck"]["test"])
    mount = agent["volumes"][0]
    assert mount.split(":")[0] == "./prompts"
    assert agent["environment"]["PROMPTS_DIR"] == mount.split(":")[1]


def test_env_example_documents_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    names = re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)
    assert sorted(names) == sorted(n.upper() for n in Settings.model_fields)
    for name in names:  # a comment right above each setting (or its group)
        assert re.search(rf"#[^\n]*\n(?:#[^\n]*\n|[A-Z_]+=[^\n]*\n)*{name}=", text), name


def test_env_example_loads_as_settings() -> None:
    settings = Settings(_env_file=str(ROOT / ".env.example"))
    assert settings.stream_content_type == "audio/x-mulaw;rate=8000"
    assert settings.signature_mode.value == "enforce"


def test_bad_playback_rate_is_a_clear_error() -> None:
    with pytest.raises(pydantic.ValidationError, match="PLAYBACK_SAMPLE_RATE"):
        Settings(_env_file=None, playback_sample_rate=44100)
