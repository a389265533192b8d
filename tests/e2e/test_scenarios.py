"""The project's own scenarios pass, and a scenario that expects the wrong thing fails, saying why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings
from app.scenarios import ScenarioError, find_scenarios, load_scenario, run_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = find_scenarios(ROOT / "scenarios")


def test_every_example_persona_has_scenarios() -> None:
    personas = {load_scenario(path).persona for path in SCENARIOS}
    assert {"clinic", "restaurant", "support-hinglish"} <= personas


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_the_projects_scenarios_pass(path: Path, make_settings: Callable[..., Settings]) -> None:
    outcome = await run_scenario(load_scenario(path), make_settings(prompts_dir=ROOT / "prompts"))
    assert outcome.failures == []
    assert outcome.facts is not None
    assert outcome.facts.recording.protocol_errors == []


async def test_wrong_expectations_fail_with_reasons(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    path = tmp_path / "wrong.yaml"
    path.write_text(
        "persona: clinic\ncaller:\n  - wait\n  - say Hi, I would like to book an appointment.\n  - wait\n"
        "expect:\n  - agent_says: We are closed today\n  - tool_called: {name: book_appointment}\n"
        "  - call_ended_by: agent\n  - max_latency: 0.1\n  - agent_never_says: which day\n"
    )
    outcome = await run_scenario(load_scenario(path), make_settings(prompts_dir=ROOT / "prompts"))
    assert outcome.failures[0] == "the agent never said 'We are closed today'"
    assert outcome.failures[1] == "no call of book_appointment({}); calls: none"  # slots still missing
    assert outcome.failures[2].startswith("the call was ended by the caller")
    assert outcome.failures[3].startswith("turn 1 took 0.")
    assert outcome.failures[4] == "the agent said 'which day'"
    assert len(outcome.failures) == 5


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "persona: clinic\ncaller: [wait]\nexpect:\n  - agent_sayz: hi\n",
            "expect.0.agent_sayz: Extra inputs",
        ),
        ("persona: clinic\ncaller: [wait, dance 3]\n", "caller.1: unknown step 'dance'"),
        ("caller: [wait]\nexpect:\n  - {agent_says: a, barge_ins: 1}\n", "one expectation per line"),
        ("caller: [wait]\nexpect:\n  - agent_matches: '(unclosed'\n", "expect.0.agent_matches"),
        ("persona: clinic\n", "caller: Field required"),
        ("caller: [wait\n", "cannot be read as YAML"),
    ],
)
def test_broken_scenario_files_name_the_field(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=r"broken\.yaml: ") as info:
        load_scenario(path)
    assert error in str(info.value)


async def test_a_missing_persona_fails_the_scenario(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    path = tmp_path / "ghost.yaml"
    path.write_text("persona: ghost\ncaller: [wait]\n")
    outcome = await run_scenario(load_scenario(path), make_settings(prompts_dir=ROOT / "prompts"))
    assert outcome.failures == [f"no persona 'ghost' in {ROOT / 'prompts'}"]


def test_the_command_prints_a_table_and_exits_non_zero_on_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTS_DIR", str(ROOT / "prompts"))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "ok.yaml").write_text(
        "persona: restaurant\ncaller:\n  - wait\n  - say Do you have vegetarian options?\n  - wait\n"
        "expect:\n  - agent_says: half our pizzas are vegetarian\n"
    )
    (tmp_path / "bad.yaml").write_text("persona: restaurant\ncaller: [wait]\nexpect:\n  - barge_ins: 3\n")
    result = CliRunner().invoke(cli, ["test-scenarios", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "1 passed, 1 failed" in result.output
    assert "0 barge-in(s), expected 3" in result.output
    one = CliRunner().invoke(cli, ["test-scenarios", str(tmp_path / "ok.yaml")])
    assert one.exit_code == 0, one.output
    assert "1 passed, 0 failed" in one.output
