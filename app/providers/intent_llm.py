"""An offline stand-in for the LLM: a deterministic responder driven by the persona's intents.

Each intent has example phrasings, a reply, optionally slots to fill and a tool to call. The
caller's words are matched to the intent whose closest example shares the most words with them
(content words count more than "the", "a", "is"); below ``threshold`` the fallback reply is used.

Slots make a small dialogue: when an intent with slots matches, the reply is said and the first
missing slot's question asked; each later answer fills slots (a slot with a ``pattern`` takes the
first match anywhere in what was said, so "Monday at ten" fills two at once; one without takes
the answer itself) until all are filled, then the tool is called with them as arguments and,
once it has answered, ``done`` is said with ``{slot}`` and ``{result}`` filled in; an answer
``"error: …"`` is said as an apology, and the ``retry_slots`` are asked for again. The state is
rebuilt from the message history on every turn, so the responder holds none of its own.

Replies may use ``{caller}`` (what the caller said). Deterministic and instant, so demos and
scenario tests are sensible and repeatable; any real model (OpenAI, or a local server through
``OPENAI_BASE_URL``) replaces it when configured.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.providers.base import (
    Finished,
    LLMEvent,
    LLMOptions,
    Message,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
)

_WORD = re.compile(r"[\w']+", re.UNICODE)
STOPWORDS = frozenset(
    (
        *("a", "an", "the", "is", "are", "am", "be", "to", "of", "and", "or", "in", "on", "at"),
        *("for", "do", "does", "i", "you", "your", "my", "me", "we", "us", "it", "this", "that"),
        *("can", "could", "would", "please", "there", "what"),
    )
)
# what callers put before a free answer: "my name is Asha" → "Asha"
_LEAD_IN = re.compile(
    r"^(?:(?:yes|yeah|ok(?:ay)?|sure|um+|uh+|so|well)[,.!]?\s+)*"
    r"(?:(?:(?:my|the|his|her|our) name(?:'s| is)|it's|it is|this is|i am|i'm|under|call me|for)\s+)+",
    re.IGNORECASE,
)


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


@dataclass(frozen=True, slots=True)
class Slot:
    name: str
    ask: str  # the question that asks for it
    pattern: re.Pattern[str] | None = None  # its value: group 1 (or the whole match); None: the answer


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    examples: tuple[str, ...]
    reply: str
    tool: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    slots: tuple[Slot, ...] = ()
    done: str | None = None  # said after the tool answered: {slot names} and {result}
    retry_slots: tuple[str, ...] = ()  # asked again when the tool answers "error: …"


def similarity(said: Sequence[str], example: Sequence[str]) -> float:
    """Weighted share of the example's words the caller said (content words weigh 1, others 0.3)."""
    if not example:
        return 0.0
    said_set = set(said)
    weight = {w: (0.3 if w in STOPWORDS else 1.0) for w in example}
    total = sum(weight.values())
    hit = sum(v for w, v in weight.items() if w in said_set)
    return hit / total


@dataclass(slots=True)
class _State:
    """Where the dialogue is after the messages so far."""

    intent: Intent | None = None
    filled: dict[str, str] = field(default_factory=dict)
    fresh: bool = False  # the intent matched on the last user message
    completed: Intent | None = None  # the intent whose tool answered last

    def missing(self) -> list[Slot]:
        return [] if self.intent is None else [s for s in self.intent.slots if s.name not in self.filled]


class IntentLLM:
    name = "intents"

    def __init__(
        self,
        intents: Sequence[Intent],
        *,
        fallback: str = "Sorry, I didn't catch that. Could you say it another way?",
        threshold: float = 0.5,
    ) -> None:
        self.intents = list(intents)
        self.fallback = fallback
        self.threshold = threshold
        self._examples = [(intent, words(ex)) for intent in self.intents for ex in intent.examples]

    def match(self, text: str) -> Intent | None:
        said = words(text)
        best: tuple[float, Intent] | None = None
        for intent, example in self._examples:
            score = similarity(said, example)
            if best is None or score > best[0]:
                best = (score, intent)
        return best[1] if best is not None and best[0] >= self.threshold else None

    def _follow(self, messages: Sequence[Message]) -> _State:
        state = _State()
        for message in messages:
            if message.role == "user":
                self._hear(state, message.content)
            elif message.role == "tool" and state.intent is not None and not state.missing():
                state.completed = state.intent
                if is_error(message.content) and state.intent.retry_slots:
                    for name in state.intent.retry_slots:  # stay on it: ask these again
                        state.filled.pop(name, None)
                else:
                    state.intent = None
        return state

    def _hear(self, state: _State, text: str) -> None:
        state.fresh, state.completed = False, None
        missing = state.missing()
        if missing:
            if _fill(missing, text, state.filled, free=False):
                return
            other = self.match(text)
            if other is None:  # not another request: the answer to the question asked
                _fill(missing, text, state.filled, free=True)
                return
            if other is state.intent:
                return  # the request again: ask again
        intent = self.match(text)
        state.intent, state.filled, state.fresh = intent, {}, intent is not None
        if intent is not None:
            _fill(list(intent.slots), text, state.filled, free=False)

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], options: LLMOptions
    ) -> AsyncGenerator[LLMEvent, None]:
        last = messages[-1] if messages else Message("user", "")
        state = self._follow(messages)
        if last.role == "tool":
            if state.completed is not None and is_error(last.content):
                problem = last.content.split(":", 1)[1].strip().rstrip(".")
                missing = state.missing()
                ask = f" {missing[0].ask}" if missing else ""
                for delta in _deltas(f"Sorry, {problem}.{ask}"):
                    yield delta
            elif state.completed is not None and state.completed.done:
                for delta in _deltas(_format(state.completed.done, {**state.filled, "result": last.content})):
                    yield delta
            yield Finished("stop")
            return
        intent = state.intent
        if intent is None:
            for delta in _deltas(self.fallback.replace("{caller}", last.content.strip())):
                yield delta
            yield Finished("stop")
            return
        missing = state.missing()
        parts = [intent.reply.replace("{caller}", last.content.strip())] if state.fresh else []
        if missing:
            parts.append(missing[0].ask)
        text = _format(" ".join(p for p in parts if p), state.filled)
        for delta in _deltas(text):
            yield delta
        allowed = {t.name for t in tools}
        if not missing and intent.tool and intent.tool in allowed:
            arguments = {**dict(intent.arguments), **state.filled}
            call = ToolCall(f"call_{len(messages)}", intent.tool, json.dumps(arguments))
            yield ToolCallRequest(call)
            yield Finished("tool_calls")
            return
        yield Finished("stop")


def is_error(result: str) -> bool:
    """A tool's answer that says it could not do it (``"error: …"``, the tools' convention)."""
    return result.lstrip().lower().startswith("error:")


def _fill(slots: list[Slot], text: str, filled: dict[str, str], *, free: bool) -> bool:
    """Fill ``slots`` from ``text``: without ``free``, the patterned ones wherever they match;
    with it, the first missing slot takes the answer itself if it has no pattern. True if
    anything was filled."""
    took = False
    first = next((s for s in slots if s.name not in filled), None)
    for slot in [] if free else slots:
        if slot.pattern is None or slot.name in filled:
            continue
        found = slot.pattern.search(text)
        if found is not None:
            filled[slot.name] = (found.group(1) if found.groups() else found.group(0)).strip()
            took = True
    if free and first is not None and first.pattern is None:
        answer = _LEAD_IN.sub("", text.strip()).strip(" .,!?")
        if answer:
            filled[first.name] = answer
            took = True
    return took


def _format(template: str, values: Mapping[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def _deltas(text: str) -> list[TextDelta]:
    return [TextDelta(word if i == 0 else " " + word) for i, word in enumerate(text.split())]
