"""``voice-agent personas check|list|show`` and prompt placeholders."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from agents.catalog import ALL_TOOLS
from agents.personas import check_personas, load_persona
from app.cli import cli

ROOT = Path(__file__).resolve().parents[2]
GOOD = "---\ndisplay_name: Good Clinic\nbusiness_hours: Mon-Fri 9-5\n---\nYou answer for {display_name}.\n"


def test_placeholders_are_filled_per_call(tmp_path: Path) -> None:
    path = tmp_path / "clinic.md"
    path.write_text(
        "---\ndisplay_name: Sunrise Clinic\nbusiness_hours: Mon-Fri 9:00-17:00\n---\n"
        "You are {display_name}'s receptionist. Today is {today}. Hours: {business_hours}. "
        "The caller is {caller_number}.\n"
    )
    persona = load_persona(path)
    assert persona.system_prompt(caller_number="+14155550100", today=date(2026, 12, 2)) == (
        "You are Sunrise Clinic's receptionist. Today is Wednesday 2 December 2026. "
        "Hours: Mon-Fri 9:00-17:00. The caller is +14155550100."
    )
    assert "The caller is unknown." in persona.system_prompt(today=date(2026, 12, 2))


def test_check_reports_every_broken_file_with_field_and_hint(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text(GOOD)
    (tmp_path / "typo.md").write_text("---\ndisplay_name: T\ngreting: Hi\n---\nBe kind.\n")
    (tmp_path / "tool.md").write_text("---\ndisplay_name: T\ntools: [end_call, teleport]\n---\nBe kind.\n")
    (tmp_path / "kind.md").write_text("---\ndisplay_name: T\nmin_speech_ms: lots\n---\nBe kind.\n")
    (tmp_path / "hole.md").write_text("---\ndisplay_name: T\n---\nToday is {todya}.\n")
    (tmp_path / "hours.md").write_text("---\ndisplay_name: T\n---\nOpen {business_hours}.\n")
    (tmp_path / "yes.md").write_text("---\ndisplay_name: T\nbackchannels: [okay, yes]\n---\nHi.\n")
    personas, problems = check_personas(tmp_path, frozenset(ALL_TOOLS))
    assert list(personas) == ["good"]
    by_file = {Path(p.split(":", 1)[0]).name: p.split(": ", 1)[1] for p in problems}
    assert by_file == {
        "hole.md": "prompt: unknown placeholder {todya} (known: {caller_number}, {today}, "
        "{business_hours}, {display_name})",
        "hours.md": "business_hours: required when the prompt uses {business_hours}",
        "kind.md": "min_speech_ms: Input should be a valid integer, unable to parse string as an integer",
        "tool.md": "tools: unknown tool 'teleport' (available: book_appointment, collect_digits, end_call, "
        "order_status, reserve_table, send_dtmf, transfer_call)",
        "typo.md": "greting: unknown setting (did you mean 'greeting'?)",
        "yes.md": "backchannels.1: expected text: put it in quotes (YAML reads yes, no, on and off as "
        "true or false)",
    }


def test_the_cli_check_fails_on_a_broken_persona_and_passes_the_shipped_ones(tmp_path: Path) -> None:
    runner = CliRunner()
    shipped = runner.invoke(cli, ["personas", "check", str(ROOT / "prompts")])
    assert shipped.exit_code == 0, shipped.output
    assert "0 with problems" in shipped.output
    (tmp_path / "good.md").write_text(GOOD)
    (tmp_path / "bad.md").write_text("---\ndisplay_name: B\ngreeting: [1, 2]\n---\nHi.\n")
    broken = runner.invoke(cli, ["personas", "check", str(tmp_path)])
    assert broken.exit_code == 1
    assert "bad.md: greeting: Input should be a valid string" in broken.output
    assert "1 persona(s) OK, 1 with problems" in broken.output


def test_list_and_show(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text(GOOD)
    runner = CliRunner()
    listed = runner.invoke(cli, ["personas", "list", "--dir", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert "Good Clinic" in listed.output
    shown = runner.invoke(cli, ["personas", "show", "good", "--dir", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert "display_name: Good Clinic" in shown.output
    assert "min_speech_ms: 80" in shown.output  # defaults filled in
    assert shown.output.rstrip().endswith("You answer for {display_name}.")
    missing = runner.invoke(cli, ["personas", "show", "../etc/passwd", "--dir", str(tmp_path)])
    assert missing.exit_code == 2
    assert "is not a persona name" in missing.output


def test_check_warns_of_a_model_with_a_shutdown_date(tmp_path: Path) -> None:
    (tmp_path / "old.md").write_text("---\ndisplay_name: Old\nllm_model: gpt-4o-mini-2024-07-18\n---\nHi.\n")
    result = CliRunner().invoke(cli, ["personas", "check", str(tmp_path)])
    assert result.exit_code == 0, result.output  # a warning, not an error: it still works today
    assert "llm_model: 'gpt-4o-mini-2024-07-18' shuts down on 2027-01-14" in result.output
    assert "gpt-6-luna" in result.output
    shipped = CliRunner().invoke(cli, ["personas", "check", str(ROOT / "prompts")])
    assert "warning" not in shipped.output  # no shipped persona names a retiring model
