"""Persona files: a broken one is reported with file, field and hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.catalog import ALL_TOOLS
from agents.personas import PersonaError, load_persona, load_personas
from app.pipeline.factory import conversation_config

TOOLS = frozenset(ALL_TOOLS)
ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.md"
    path.write_text(text)
    return path


def test_the_shipped_personas_load() -> None:
    personas = load_personas(ROOT / "prompts", TOOLS)
    assert "default" in personas
    assert personas["default"].prompt.startswith("You are")


def test_settings_reach_the_conversation(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "clinic",
        "---\ndisplay_name: Clinic\ngreeting: Hi there.\nmin_speech_ms: 120\n"
        "backchannels: [okay, achha]\nidle_reprompt_seconds: 5\ntemperature: 0.2\n---\nBe kind.\n",
    )
    config = conversation_config(load_persona(path, TOOLS))
    assert (config.greeting, config.system_prompt) == ("Hi there.", "Be kind.")
    assert config.policy.min_speech_s == pytest.approx(0.12)
    assert config.policy.backchannels == frozenset({"okay", "achha"})
    assert config.policy.idle_reprompt_s == 5
    assert config.llm.temperature == 0.2


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "a",
            "---\ndisplay_name: A\ngreetng: hi\n---\nx",
            r"a\.md: greetng: unknown setting \(did you mean 'greeting'\?\)",
        ),
        (
            "b",
            "---\ndisplay_name: B\nmin_speech_ms: lots\n---\nx",
            r"b\.md: min_speech_ms: Input should be a valid integer",
        ),
        ("c", "---\ngreeting: hi\n---\nx", r"c\.md: display_name: required"),
        (
            "d",
            "---\ndisplay_name: D\ntools: [end_call, launch_rocket]\n---\nx",
            r"d\.md: tools: unknown tool 'launch_rocket'",
        ),
        (
            "e",
            "---\ndisplay_name: E\ntools: [transfer_call]\n---\nx",
            r"e\.md: transfer_number: required when",
        ),
        ("f", "no front matter here", r"f\.md: no front matter"),
        ("g", "---\ndisplay_name: G\n---\n", r"g\.md: the system prompt .* is empty"),
        ("h", "---\n: : :\n---\nx", r"h\.md: front matter is not valid YAML"),
        ("Bad.Name", "---\ndisplay_name: X\n---\nx", r"file name: use lower-case"),
    ],
)
def test_broken_personas_are_precise(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(PersonaError, match=message):
        load_persona(write(tmp_path, name, text), TOOLS)


def test_intent_slots_are_checked(tmp_path: Path) -> None:
    bad_pattern = write(
        tmp_path,
        "a",
        "---\ndisplay_name: A\ntools: [end_call, book_appointment]\nintents:\n  - name: book\n"
        "    examples: [book]\n    tool: book_appointment\n    slots:\n"
        "      - name: day\n        ask: Which day?\n        pattern: '(monday'\n---\nHi.\n",
    )
    with pytest.raises(
        PersonaError, match=r"intents\.0\.slots\.0\.pattern: .*not a valid regular expression"
    ):
        load_persona(bad_pattern, frozenset(ALL_TOOLS))
    no_tool = write(
        tmp_path,
        "b",
        "---\ndisplay_name: B\nintents:\n  - name: book\n    examples: [book]\n"
        "    slots:\n      - name: day\n        ask: Which day?\n---\nHi.\n",
    )
    with pytest.raises(PersonaError, match=r"intents\.0: .*slots and done need a tool to call"):
        load_persona(no_tool, frozenset(ALL_TOOLS))


def test_end_of_turn_settings_reach_the_turn_taker_and_must_be_in_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "patient",
        "---\ndisplay_name: P\nlanguage: hi-IN\nend_of_turn_complete_ms: 400\n"
        "end_of_turn_incomplete_ms: 3000\npreemptive_replies: false\nresume_after_ms: 500\n---\nHi.\n",
    )
    policy = conversation_config(load_persona(path)).policy
    assert (policy.eot.complete_s, policy.eot.unsure_s, policy.eot.incomplete_s) == (0.4, 0.7, 3.0)
    assert policy.eot.decide_after_s == 0.15
    assert not policy.eot.preemptive
    assert policy.eot.languages == {"en", "hi"}  # Hindi cues for a Hindi line
    assert policy.resume_after_s == 0.5
    backwards = write(tmp_path, "rushed", "---\ndisplay_name: R\nend_of_turn_complete_ms: 900\n---\nHi.\n")
    with pytest.raises(PersonaError, match=r"end_of_turn_decide_ms ≤ .*; got 150, 900, 700, 2000"):
        load_persona(backwards)
