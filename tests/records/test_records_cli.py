"""``voice-agent calls list|show``: the records read straight from the database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from app.cli import cli
from app.records.record import COMPLETED, IN_PROGRESS, CallRecord
from app.records.store import CallStore

T0 = 1_767_225_600.0
runner = CliRunner()


def records() -> list[CallRecord]:
    booked = CallRecord(
        "call-b", COMPLETED, "restaurant", "14155550100", "14155550199", T0 + 60, T0 + 95.5, "socket-closed",
        agent="Conversation", barge_ins=1, false_interruptions=0, provider_errors=0,
        preemptive_started=3, preemptive_committed=2, preemptive_wasted=1,
        transcript=(
            {"t": 0.1, "speaker": "agent", "text": "Buonasera, Bella Napoli!", "interrupted": False},
            {"t": 4.2, "speaker": "caller", "text": "A table for four on Friday", "interrupted": False},
            {"t": 5.0, "speaker": "agent", "text": "Lovely. And under", "interrupted": True},
        ),
        tool_calls=({"id": "t1", "name": "reserve_table", "arguments": '{"party": "four"}'},),
        latency=(
            {"turn": 1, "speech_end": None, "stt_final": None, "first_play_audio": 0.1, "interrupted": False},
            {"turn": 2, "speech_end": 4.5, "stt_final": 4.75, "first_play_audio": 5.0, "interrupted": True},
        ),
        dtmf=({"t": 3.25, "digits": "2", "purpose": "menu"},),
    )  # fmt: skip
    ringing = CallRecord("call-c", IN_PROGRESS, "default", "", "14155550199", T0 + 120)
    echo = CallRecord("call-a", COMPLETED, "default", "14155550111", "14155550199", T0, T0 + 3, "hangup",
                      agent="EchoAgent")  # fmt: skip
    return [echo, booked, ringing]


@pytest.fixture
def seeded(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The database holds three calls; the CLI's environment points at it."""

    async def seed() -> None:
        store = CallStore(make_url(database_url))
        try:
            for record in records():
                await store.save(record)
        finally:
            await store.aclose()

    asyncio.run(seed())
    monkeypatch.chdir(tmp_path)  # no developer's .env
    return {"DATABASE_URL": database_url}


def run(env: dict[str, str], *args: str) -> Result:
    return runner.invoke(cli, ["calls", *args], env=env)


def test_list_shows_the_newest_first_in_aligned_columns(seeded: dict[str, str]) -> None:
    result = run(seeded, "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["started", "duration", "from", "to", "persona", "status", "end", "call", "id"]
    assert [line.split()[-1] for line in lines[1:]] == ["call-c", "call-b", "call-a"]
    assert "35.5 s    +14155550100  +14155550199  restaurant  completed    socket-closed" in lines[2]
    assert "-             +14155550199  default     in-progress  -" in lines[1]  # no caller number, no end
    assert len({line.index("call-") for line in lines[1:]}) == 1


def test_list_pages_with_before(seeded: dict[str, str]) -> None:
    first = run(seeded, "list", "--limit", "2")
    assert first.stdout.splitlines()[-1] == "more: voice-agent calls list --before call-b"
    rest = run(seeded, "list", "--limit", "2", "--before", "call-b")
    assert [line.split()[-1] for line in rest.stdout.splitlines()[1:]] == ["call-a"]
    unknown = run(seeded, "list", "--before", "nope")
    assert (unknown.exit_code, unknown.stderr) == (1, "error: no call 'nope' (--before)\n")


def test_list_as_json(seeded: dict[str, str]) -> None:
    result = run(seeded, "list", "--json", "--limit", "2")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "calls": [records()[2].summary.to_json(), records()[1].summary.to_json()],
        "next_before": "call-b",
    }


def test_show_gives_the_transcript_tools_and_latency(seeded: dict[str, str]) -> None:
    result = run(seeded, "show", "call-b")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "call call-b  (completed)",
        "  from +14155550100 to +14155550199, persona restaurant, agent Conversation",
        *result.stdout.splitlines()[2:3],  # local times: the machine's time zone
        "  end: socket-closed",
        "  barge-ins 1, false interruptions 0, provider errors 0",
        "  preemptive replies 3: 2 committed, 1 wasted LLM calls",
        "transcript:",
        "     0.10s Agent: Buonasera, Bella Napoli!",
        "     4.20s Caller: A table for four on Friday",
        "     5.00s Agent: Lovely. And under (interrupted)",
        "tool calls:",
        '  reserve_table({"party": "four"})',
        "keys:",
        "     3.25s 2 (menu)",
        "latency (ms after the caller stopped):",
        "  turn 1: greeting or reprompt (no caller speech)",
        "  turn 2: stt_final 250, first_play_audio 500, interrupted",
    ]
    assert result.stdout.splitlines()[2].endswith(", 35.5 s")
    as_json = run(seeded, "show", "call-b", "--json")
    assert json.loads(as_json.stdout) == records()[1].to_json()


def test_show_an_unknown_call_fails(seeded: dict[str, str]) -> None:
    result = run(seeded, "show", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no record of call 'nope' in ")


def test_no_database_yet_is_no_records_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"DATA_DIR": str(tmp_path / "data")}
    result = runner.invoke(cli, ["calls", "list"], env=env)
    assert (result.exit_code, result.stdout) == (
        0,
        f"no call records in sqlite+aiosqlite:///{tmp_path}/data/calls.sqlite3\n",
    )
    assert runner.invoke(cli, ["calls", "show", "x"], env=env).exit_code == 1
    assert not (tmp_path / "data").exists()


def test_bad_or_unreachable_databases_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad = runner.invoke(cli, ["calls", "list"], env={"DATABASE_URL": "mysql://agent:hunter2@db/calls"})
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: DATABASE_URL: driver 'mysql' is not supported")
    gone = "postgresql+asyncpg://agent:hunter2@127.0.0.1:1/calls"  # nothing listens on port 1
    result = runner.invoke(cli, ["calls", "list"], env={"DATABASE_URL": gone})
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: cannot read the call records at postgresql+asyncpg://agent:***@127.0.0.1:1/"
    )
    assert "hunter2" not in result.output
