"""The container files, checked without a Docker engine (none runs here): the Dockerfile, the
build context (.dockerignore), docker-compose.yml against the compose-spec schema, the Caddyfile;
and .env.example."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
import yaml

from app.config import Settings
from app.drain import Drain

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")  # exact patch and Debian release


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def dockerignored(path: str) -> bool:
    """Whether the build context leaves ``path`` out (.dockerignore: the last matching line wins,
    ``!`` keeps, a pattern matching a folder leaves out what is inside)."""
    ignored = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        parts = path.split("/")
        # patterns are anchored at the context's root; "**/" matches any folders before
        starts = range(len(parts)) if pattern.startswith("**/") else range(1)
        pattern = pattern.removeprefix("**/")
        candidates = ["/".join(parts[s : e + 1]) for s in starts for e in range(s, len(parts))]
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            ignored = not keep
    return ignored


def seconds(duration: str) -> int:
    """A compose duration ("630s", "10m30s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([hms])", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_dockerfile_runs_non_root_with_healthcheck() -> None:
    instructions = dockerfile_instructions()
    keywords = [k for k, _ in instructions]
    final_stage = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    users = [rest for k, rest in final_stage if k == "USER"]
    assert users, "the final stage must switch to a non-root user"
    assert users[-1] == "10001"  # numeric: Kubernetes' runAsNonRoot can check it (deploy/k8s)
    health = [rest for k, rest in final_stage if k == "HEALTHCHECK"]
    assert len(health) == 1
    assert "/healthz" in health[0]
    assert ("EXPOSE", "8000") in final_stage
    cmd = [rest for k, rest in final_stage if k == "CMD"][-1]
    assert '"voice-agent", "serve"' in cmd
    assert keywords.count("FROM") == 2


def test_dockerfile_pins_the_base_and_installs_from_the_lock() -> None:
    instructions = dockerfile_instructions()
    bases = [rest.split()[0] for k, rest in instructions if k == "FROM"]
    assert len(set(bases)) == 1
    assert BASE_IMAGE.match(bases[0]), bases[0]
    runs = " ".join(rest for k, rest in instructions if k == "RUN")
    assert '--require-hashes -r "requirements${EXTRAS:+-$EXTRAS}.lock"' in runs
    assert "pip install --no-deps ." in runs  # the project alone: nothing outside the lock
    for extras in ("", "embedded"):  # the two values the EXTRAS build argument takes
        assert (ROOT / f"requirements{'-' + extras if extras else ''}.lock").is_file()


def test_dockerfile_copies_only_paths_that_exist_and_are_in_the_context() -> None:
    for keyword, rest in dockerfile_instructions():
        if keyword != "COPY" or "--from=" in rest:
            continue
        args = [a for a in shlex.split(rest) if not a.startswith("--")]
        for source in args[:-1]:
            assert (ROOT / source).exists(), f"COPY source {source} is missing"
            assert not dockerignored(source), f"COPY source {source} is left out by .dockerignore"


@pytest.mark.parametrize(
    "path", [".venv", ".venv/lib/x.py", ".git", "data", "sim-out", ".env", "tests", "app/__pycache__/a.pyc"]
)
def test_dockerignore_keeps_the_context_small_and_secret_free(path: str) -> None:
    assert dockerignored(path)


def test_dockerignore_keeps_what_the_image_needs() -> None:
    for path in ("app/main.py", "agents", "prompts/default.md", "pyproject.toml", "requirements.lock"):
        assert not dockerignored(path), path


def test_compose_file_matches_the_compose_spec_schema() -> None:
    # the compose-spec JSON schema as check-jsonschema vendors it in its wheel: no network
    text = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    schema = json.loads(text)
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [e.message for e in validator.iter_errors(compose())] == []
    broken = compose()
    broken["services"]["redis"]["stop_grace_period"] = 630  # a number, not a duration
    assert list(validator.iter_errors(broken))


def test_compose_runs_two_replicas_behind_caddy_with_postgres_and_redis() -> None:
    services = compose()["services"]
    assert set(services) == {"agent-1", "agent-2", "caddy", "postgres", "redis"}
    agent = services["agent-1"]
    assert services["agent-2"] == agent  # one definition (a YAML anchor), two replicas
    assert agent["build"]["context"] == "."
    assert "EXTRAS" in agent["build"]["args"]  # the same build argument the Dockerfile takes
    assert agent["env_file"] == [".env"]  # the secrets
    assert "ports" not in agent  # reached only through Caddy
    env = agent["environment"]
    assert env["PUBLIC_URL"].startswith("https://${DOMAIN")
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://voice:${POSTGRES_PASSWORD")
    assert env["DATABASE_URL"].endswith("@postgres:5432/voice")
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert set(env) <= {n.upper() for n in Settings.model_fields}
    # SIGTERM to SIGKILL covers the longest drain the service's own schedule allows
    assert seconds(agent["stop_grace_period"]) >= Drain(timeout_s=float(env["DRAIN_TIMEOUT"])).deadline_s
    assert agent["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    mount = agent["volumes"][0]
    assert mount.split(":")[0] == "./prompts"
    assert env["PROMPTS_DIR"] == mount.split(":")[1]
    for name, service in services.items():
        assert service["healthcheck"]["test"][0] == "CMD", name
    assert "/healthz" in " ".join(agent["healthcheck"]["test"])
    assert {"80:80", "443:443"} <= set(services["caddy"]["ports"])


def test_caddy_routes_public_paths_to_both_replicas_and_checks_readyz() -> None:
    caddy = compose()["services"]["caddy"]
    mount = next(v for v in caddy["volumes"] if v.endswith(":/etc/caddy/Caddyfile:ro"))
    text = (ROOT / mount.split(":")[0]).read_text()
    assert "{$DOMAIN} {" in text  # automatic HTTPS for the domain: the wss:// Vobiz needs
    assert re.search(r"^\s*reverse_proxy agent-1:8000 agent-2:8000 \{$", text, re.M)
    assert re.search(r"^\s*health_uri /readyz$", text, re.M)
    assert re.search(r"^\s*@public path /vobiz/\* /calls /calls/\*$", text, re.M)
    assert text.count("{") == text.count("}")


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
