"""Keypad input end to end: the fake Vobiz sends ``dtmf`` frames (a caller script's ``press``)
to the real app (scripted zero-latency providers) on the virtual clock.

- a menu key from the persona's ``keypad`` map cuts the greeting and gets its reply, no model;
- ``collect_digits`` gathers an account number: speech meanwhile is ignored, the model gets the
  exact digits as the tool's result; the digits are in the record and in no log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from agents.personas import load_persona
from app.config import Settings
from app.pipeline.call_io import CallStats
from app.pipeline.conversation import Conversation
from app.pipeline.factory import keypad_menu
from app.pipeline.lifecycle import CallInfo, CallOutcome
from app.providers.scripted import Rule, ScriptedLLM
from app.records.listener import ended_record
from app.records.store import CallStore
from app.simulator.caller import HangUp, Press, Silence, Step, WaitForAgent, parse_step
from tests.e2e.test_conversation import GREETING, agent_lines, run_call, times, words

ACCOUNT = "40718293"  # digits no id, port or timestamp of the call contains

PERSONA = """---
display_name: Sunrise Clinic
tools: [end_call, collect_digits]
intents:
  - name: hours
    examples: [when are you open]
    reply: We open at nine.
keypad:
  1: {reply: "Appointments. Which day would suit you?"}
  "2": {intent: hours}
---
You are the receptionist.
"""


def menu_from_persona(tmp_path: Path) -> Callable[[Conversation], None]:
    path = tmp_path / "clinic.md"
    path.write_text(PERSONA)
    menu = keypad_menu(load_persona(path))

    def setup(conversation: Conversation) -> None:
        conversation.keys.keypad.menu = menu

    return setup


async def test_a_menu_key_cuts_the_greeting_and_gets_the_persona_reply(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    llm = ScriptedLLM([])
    steps: list[Step] = [Silence(0.5), parse_step("press 1"), WaitForAgent(), HangUp()]
    call = await run_call(make_settings, steps, [], llm=llm, setup=menu_from_persona(tmp_path))
    rec = call.rec
    pressed = times(rec, "dtmf")
    assert len(pressed) == 1
    assert times(rec, "clear_audio")[0] >= pressed[0]  # the key silenced the greeting
    assert agent_lines(call)[0][1] is True  # ... cut: heard in part
    assert call.conversation.barge_ins == 1
    assert GREETING.startswith(agent_lines(call)[0][0])
    assert agent_lines(call)[1] == ("Appointments. Which day would suit you?", False)
    assert llm.requests == []  # the map answered; the model was not asked
    caller = [(e.speaker, e.text) for e in call.conversation.transcript if e.speaker == "caller"]
    assert caller == [("caller", "The caller pressed 1.")]
    record = call.conversation.keys.keypad.entries
    assert [(e.digits, e.purpose) for e in record] == [("1", "menu")]
    assert record[0].t > 0


async def test_an_intent_key_and_unmapped_keys_reach_the_model_as_text(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    llm = ScriptedLLM([Rule("when are you open", "We open at nine.")], default="You pressed something.")
    steps: list[Step] = [
        WaitForAgent(),
        Press("2"),
        WaitForAgent(),
        Press("59"),  # unmapped: one turn once the keys pause
        WaitForAgent(),
        HangUp(),
    ]
    call = await run_call(make_settings, steps, [], llm=llm, setup=menu_from_persona(tmp_path))
    users = [[m.content for m in request if m.role == "user"][-1] for request in llm.requests]
    assert users == ["The caller pressed 2: when are you open", "The caller pressed 5, 9."]
    assert [text for text, _ in agent_lines(call)[1:]] == ["We open at nine.", "You pressed something."]
    entries = [(e.digits, e.purpose) for e in call.conversation.keys.keypad.entries]
    assert entries == [("2", "menu"), ("59", "llm")]


async def test_collect_digits_gives_the_model_the_exact_account_number_and_logs_none(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    llm = ScriptedLLM(
        [
            Rule(
                r"my account",
                "Sure.",
                tool="collect_digits",
                arguments={"max_digits": 12, "prompt": "Please key in your account number, then hash."},
                after_tool="Thank you, I have your account.",
            )
        ]
    )
    steps: list[Step] = [
        WaitForAgent(),
        words("I want to check my account."),
        WaitForAgent(),
        words("four zero seven one"),  # said aloud while keying: never taken for the number
        parse_step(f"press {ACCOUNT}#"),
        WaitForAgent(),
        HangUp(),
    ]
    heard = ["I want to check my account.", "four zero seven one"]
    with caplog.at_level(logging.DEBUG):
        call = await run_call(make_settings, steps, heard, llm=llm)
    conversation = call.conversation
    # the tool's result, as the model got it: exactly the keys before the terminator
    results = [m for request in llm.requests for m in request if m.role == "tool"]
    assert [m.content for m in results] == [ACCOUNT]
    assert [c.name for c in conversation.tool_ctx.calls] == ["collect_digits"]
    said = [m.content for m in conversation.history if m.role == "user"]
    assert said == ["I want to check my account."]  # the spoken digits made no turn
    assert conversation.barge_ins == 0  # ... and cut nothing
    lines = [text for text, _ in agent_lines(call)]
    assert lines[1] == "Sure. Please key in your account number, then hash. Thank you, I have your account."
    entries = [(e.digits, e.purpose) for e in conversation.keys.keypad.entries]
    assert entries == [(ACCOUNT, "collect")]
    assert len(times(call.rec, "dtmf")) == len(ACCOUNT) + 1  # one frame per key
    # the record keeps them (the post-call webhook reads this); no log line does
    assert conversation.keys.keypad.entries[0].t > 0
    for record in caplog.records:
        text = record.getMessage() + " " + " ".join(str(v) for v in vars(record).values())
        assert ACCOUNT not in text, record.name
        assert ACCOUNT[:4] not in text, record.name


async def test_the_call_record_keeps_the_keys_through_the_store(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    llm = ScriptedLLM([], default="Noted.")
    steps: list[Step] = [WaitForAgent(), Press("1"), WaitForAgent(), Press("7"), WaitForAgent(), HangUp()]
    call = await run_call(make_settings, steps, [], llm=llm, setup=menu_from_persona(tmp_path))
    info = CallInfo(call.rec.call_id, "clinic", "14155550100", "14155550199", 1000.0)
    outcome = CallOutcome("hangup", 1010.0, CallStats(call_id=call.rec.call_id), call.conversation)
    store = CallStore(URL.create("sqlite+aiosqlite", database=str(tmp_path / "calls.sqlite3")))
    try:
        await store.save(ended_record(info, outcome))
        record = await store.get(call.rec.call_id)
    finally:
        await store.aclose()
    assert record is not None
    keys = record.to_json()["dtmf"]
    assert [(k["digits"], k["purpose"]) for k in keys] == [("1", "menu"), ("7", "llm")]
    assert 0 < keys[0]["t"] < keys[1]["t"]
