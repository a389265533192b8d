"""The offline responder: persona intents matched by shared words, tools only when allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.builtin import BUILTIN_TOOLS
from agents.personas import load_persona
from app.pipeline.factory import intent_llm
from app.providers.base import Finished, LLMOptions, Message, TextDelta, ToolCallRequest, ToolSpec
from app.providers.intent_llm import Intent, IntentLLM

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
