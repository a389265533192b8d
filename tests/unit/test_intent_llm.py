"""The offline responder: persona intents matched by shared words, tools only when allowed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agents.builtin import BUILTIN_TOOLS
from agents.personas import load_persona
from app.pipeline.factory import intent_llm
from app.providers.base import (
    Finished,
    LLMOptions,
    Message,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
)
from app.providers.intent_llm import Intent, IntentLLM, Slot

ROOT = Path(__file__).resolve().parents[2]


async def reply(llm: IntentLLM, text: str, tools: list[ToolSpec] | None = None) -> tuple[str, list[str]]:
    said, calls = [], []
    async for event in llm.stream([Message("user", text)], tools or [], LLMOptions()):
        match event:
            case TextDelta(text=delta):
                said.append(delta)
            case ToolCallRequest(call=call):
                calls.append(call.name)
            case Finished():
                pass
    return "".join(said), calls


@pytest.mark.parametrize(
    ("caller", "intent"),
    [
        ("Hello, what time do you open tomorrow?", "hours"),
        ("Are you open on Sundays?", "hours"),
        ("What's your address?", "location"),
        ("I'd like to order a birthday cake", "order"),
        ("Thanks, that is all. Goodbye.", "goodbye"),
        ("Bye!", "goodbye"),
        ("Tell me about quantum physics", None),
    ],
)
def test_the_default_persona_understands_its_demo(caller: str, intent: str | None) -> None:
    llm = intent_llm(load_persona(ROOT / "prompts" / "default.md", frozenset(BUILTIN_TOOLS)))
    found = llm.match(caller)
    assert (found.name if found else None) == intent


async def test_a_tool_is_called_only_when_the_conversation_allows_it() -> None:
    llm = IntentLLM([Intent("bye", ("goodbye",), "Goodbye!", tool="end_call")])
    end_call = ToolSpec("end_call", "End the call.")
    assert await reply(llm, "ok goodbye", [end_call]) == ("Goodbye!", ["end_call"])
    assert await reply(llm, "ok goodbye") == ("Goodbye!", [])


async def test_fallback_and_caller_placeholder() -> None:
    llm = IntentLLM([Intent("echo", ("repeat after me",), "You said: {caller}")], fallback="Pardon?")
    assert await reply(llm, "something else") == ("Pardon?", [])
    assert await reply(llm, "repeat after me") == ("You said: repeat after me", [])


async def test_after_a_tool_round_it_says_nothing_more() -> None:
    llm = IntentLLM([])
    events = [e async for e in llm.stream([Message("tool", "done", tool_call_id="c1")], [], LLMOptions())]
    assert events == [Finished("stop")]


BOOK = Intent(
    "book",
    ("I'd like to book an appointment", "can I see a doctor"),
    "Certainly.",
    tool="book_appointment",
    slots=(
        Slot("day", "Which day suits you?", re.compile(r"\b(monday|tuesday|friday|tomorrow)\b", re.I)),
        Slot(
            "time", "What time?", re.compile(r"\b(\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)|noon)", re.I)
        ),
        Slot("patient", "And the patient's name?"),
    ),
    done="Done: {patient}, {day} at {time}. {result}.",
)
HOURS = Intent("hours", ("what time do you open",), "We open at nine.")
BOOK_TOOL = ToolSpec("book_appointment", "Book.")


async def turn(llm: IntentLLM, history: list[Message], said: str) -> tuple[str, list[ToolCall]]:
    """The caller says ``said``; run the responder as the conversation would (tools answered)."""
    history.append(Message("user", said))
    spoken: list[str] = []
    while True:
        text, calls = "", []
        async for event in llm.stream(history, [BOOK_TOOL], LLMOptions()):
            match event:
                case TextDelta(text=delta):
                    text += delta
                case ToolCallRequest(call=call):
                    calls.append(call)
        spoken.append(text)
        if not calls:
            history.append(Message("assistant", text))
            return " ".join(s for s in spoken if s), CALLS
        history.append(Message("assistant", text, tool_calls=tuple(calls)))
        for call in calls:
            CALLS.append(call)
            history.append(Message("tool", "reference A7", tool_call_id=call.id))


CALLS: list[ToolCall] = []


async def test_slots_are_asked_for_one_by_one_then_the_tool_is_called() -> None:
    CALLS.clear()
    llm = IntentLLM([BOOK, HOURS])
    history = [Message("system", "prompt")]
    assert (await turn(llm, history, "Hi, I'd like to book an appointment"))[0] == (
        "Certainly. Which day suits you?"
    )
    assert (await turn(llm, history, "Monday please"))[0] == "What time?"
    assert (await turn(llm, history, "At 10 am"))[0] == "And the patient's name?"
    said, calls = await turn(llm, history, "My name is Asha Patel.")
    assert said == "Done: Asha Patel, Monday at 10 am. reference A7."
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("book_appointment", {"day": "Monday", "time": "10 am", "patient": "Asha Patel"})
    ]
    # once done, the next request starts afresh
    assert (await turn(llm, history, "What time do you open?"))[0] == "We open at nine."


async def test_slots_said_up_front_are_not_asked_again_and_a_new_request_switches() -> None:
    CALLS.clear()
    llm = IntentLLM([BOOK, HOURS])
    history: list[Message] = []
    assert (await turn(llm, history, "Can I see a doctor on Friday at 2:30 pm?"))[0] == (
        "Certainly. And the patient's name?"
    )
    # another request while a slot is asked: answered, and the booking is dropped
    assert (await turn(llm, history, "Wait, what time do you open?"))[0] == "We open at nine."
    assert (await turn(llm, history, "Ben"))[0] == "Sorry, I didn't catch that. Could you say it another way?"
    assert CALLS == []


async def test_a_tool_error_is_apologised_for_and_the_retry_slots_asked_again() -> None:
    retry = Intent(**{**{f: getattr(BOOK, f) for f in BOOK.__slots__}, "retry_slots": ("time",)})
    llm = IntentLLM([retry])
    history: list[Message] = [Message("user", "Can I see a doctor on Monday at 10 am? I'm Asha.")]
    history.append(Message("assistant", "Certainly. And the patient's name?"))
    history.append(Message("user", "Asha Patel"))
    call = ToolCall("c1", "book_appointment", "{}")
    history.append(Message("assistant", "", tool_calls=(call,)))
    history.append(
        Message("tool", "error: 10 am on monday is taken; free that day: 11 am.", tool_call_id="c1")
    )
    said = "".join(
        [e.text async for e in llm.stream(history, [BOOK_TOOL], LLMOptions()) if isinstance(e, TextDelta)]
    )
    assert said == "Sorry, 10 am on monday is taken; free that day: 11 am. What time?"
    history.append(Message("assistant", said))
    history.append(Message("user", "11 am then"))
    events = [e async for e in llm.stream(history, [BOOK_TOOL], LLMOptions())]
    calls = [json.loads(e.call.arguments) for e in events if isinstance(e, ToolCallRequest)]
    assert calls == [{"day": "Monday", "time": "11 am", "patient": "Asha Patel"}]
