"""``voice-agent campaign run``: a user's mistake is one line and exit 2, before anything is dialled."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli_errors import one_line, voice_agent

PERSONA = """---
display_name: Sunrise Finance
variables: {name: "there"}
---
Remind {name} of the payment.
"""


@pytest.mark.parametrize(
    ("contacts", "options", "expected"),
    [
        (None, [], "error: contacts file not found: missing.csv"),
        ("number,first\n+919800000001,Asha\n", [], "error: contacts.csv: the persona uses {name} but"),
        ("name\nAsha\n", [], "error: contacts.csv: no 'number' column"),
        ("number,name\n+919800000001,Asha\n", ["--persona", "nope"], "error: no persona 'nope' in"),
        ("number,name\n+919800000001,Asha\n", ["--hours", "9 to 5"], "error: --hours '9 to 5': use HH:MM"),
        ("number,name\n+919800000001,Asha\n", ["--from", "me"], "error: --from 'me' is not a phone number"),
        ("number,name\n+919800000001,Asha\n", ["--dnc", "none.txt"], "error: do-not-call file not found"),
    ],
)
def test_campaign_mistakes(tmp_path: Path, contacts: str | None, options: list[str], expected: str) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "collector.md").write_text(PERSONA)
    name = "missing.csv"
    if contacts is not None:
        name = "contacts.csv"
        (tmp_path / name).write_text(contacts)
    args = {"--persona": "collector", "--from": "+918071387423"}
    for flag, value in zip(options[::2], options[1::2], strict=True):
        args[flag] = value
    flat = [part for pair in args.items() for part in pair]
    proc = voice_agent("campaign", "run", name, *flat, cwd=tmp_path, env={"PROMPTS_DIR": str(prompts)})
    assert one_line(proc).startswith(expected)
    assert not (tmp_path / "contacts.state.json").exists()  # nothing was dialled
