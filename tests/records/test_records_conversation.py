"""A real conversation (the embedded engines, on the virtual clock) leaves its whole record:
transcript with heard/interrupted marks, tool calls and per-turn latency, readable through
``GET /calls/{id}`` and ``voice-agent calls show``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings
from app.main import create_app
from app.pipeline.latency import STAGES
from app.scenarios import load_scenario
from app.simulator.simulate import AgentView, SimulateOptions, run_simulation
from tests.records.conftest import API_KEY
from tests.records.test_records_calls import AUTH, running

ROOT = Path(__file__).resolve().parents[2]


async def test_a_conversation_leaves_transcript_tools_and_latency(
    database_url: str,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the caller asks about the menu, talks over the answer, books a table, says goodbye
    scenario = load_scenario(ROOT / "scenarios" / "restaurant-reservation.yaml")
    settings = make_settings(
        prompts_dir=ROOT / "prompts", providers="offline", database_url=database_url, calls_api_key=API_KEY
    )
    view = AgentView()
    options = SimulateOptions(virtual=True, persona="restaurant")
    rec = await run_simulation(options, settings, lambda _: None, view=view, steps=scenario.steps)
    assert rec.protocol_errors == []
    [conversation] = view.ended

    reader = create_app(make_settings(database_url=database_url, calls_api_key=API_KEY))  # another process
    async with running(reader) as api:
        reply = await api.get(f"/calls/{rec.call_id}", headers=AUTH)
    assert reply.status_code == 200
    record = reply.json()
    assert (record["status"], record["persona"], record["agent"]) == (
        "completed",
        "restaurant",
        "Conversation",
    )
    assert (record["caller"], record["called"]) == (options.from_number, options.to_number)
    assert record["end_reason"] == "agent-hangup"  # the agent said goodbye and sent stop

    # the transcript is the conversation's, on one time axis starting at the call
    lines = record["transcript"]
    assert [(x["speaker"], x["text"], x["interrupted"]) for x in lines] == [
        (e.speaker, e.text, e.interrupted) for e in conversation.transcript
    ]
    offsets = {round(e.t - x["t"], 3) for e, x in zip(conversation.transcript, lines, strict=True)}
    assert len(offsets) == 1
    assert 0 <= lines[0]["t"] < 1.0  # the greeting, at the start
    assert any(x["interrupted"] and x["speaker"] == "agent" for x in lines)  # cut by the caller
    assert (record["barge_ins"], record["false_interruptions"]) == (1, conversation.false_interruptions)
    assert record["provider_errors"] == 0
    # every turn of the call was prepared early, and each preparation was used
    started, committed = conversation.preemptive_started, conversation.preemptive_committed
    assert started > 0
    assert (record["preemptive_started"], record["preemptive_committed"]) == (started, committed)
    assert record["preemptive_wasted"] == conversation.preemptive_wasted

    calls = conversation.tool_ctx.calls
    assert record["tool_calls"] == [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]
    booked = [json.loads(c["arguments"]) for c in record["tool_calls"] if c["name"] == "reserve_table"]
    assert booked
    assert booked[-1]["name"] == "Kim"

    turns = record["latency"]
    assert [t["turn"] for t in turns] == sorted(conversation.latency.turns)
    for turn in turns:
        stamps = conversation.latency.turns[turn["turn"]]
        assert turn["interrupted"] == stamps.interrupted
        assert set(turn) == {"turn", "interrupted", *STAGES}
        for stage, seconds in stamps.since_speech_end().items():  # the same gaps as the pipeline saw
            assert turn[stage] - turn["speech_end"] == pytest.approx(seconds, abs=1e-3)
    answered = [t for t in turns if t["speech_end"] is not None and t["first_play_audio"] is not None]
    assert len(answered) >= 3
    for t in answered:
        assert t["speech_end"] <= t["stt_final"] <= t["turn_end"] <= t["first_play_audio"]

    # the same record from the terminal
    monkeypatch.chdir(tmp_path)  # no developer's .env
    env = {"DATABASE_URL": database_url}
    shown = await asyncio.to_thread(CliRunner().invoke, cli, ["calls", "show", rec.call_id], env=env)
    assert shown.exit_code == 0, shown.output
    assert f"call {rec.call_id}  (completed)" in shown.output
    assert "from +14155550100 to +14155550199, persona restaurant" in shown.output
    assert "(interrupted)" in shown.output
    assert "reserve_table(" in shown.output
    assert "turn 2: stt_final" in shown.output
    as_json = await asyncio.to_thread(
        CliRunner().invoke, cli, ["calls", "show", rec.call_id, "--json"], env=env
    )
    assert json.loads(as_json.stdout) == record
