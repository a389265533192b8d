"""An offline stand-in for the LLM: a deterministic responder driven by the persona's intents.

Each intent has example phrasings, a reply, and optionally a tool to call. The caller's words
are matched to the intent whose closest example shares the most words with them (content words
count more than "the", "a", "is"); below ``threshold`` the fallback reply is used. Replies may
use ``{caller}`` (what the caller said). Deterministic and instant, so demos and scenario tests
are sensible and repeatable; any real model (OpenAI, or a local server through
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


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    examples: tuple[str, ...]
    reply: str
    tool: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)


def similarity(said: Sequence[str], example: Sequence[str]) -> float:
    """Weighted share of the example's words the caller said (content words weigh 1, others 0.3)."""
    if not example:
        return 0.0
    said_set = set(said)
    weight = {w: (0.3 if w in STOPWORDS else 1.0) for w in example}
    total = sum(weight.values())
    hit = sum(v for w, v in weight.items() if w in said_set)
    return hit / total


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

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], options: LLMOptions
    ) -> AsyncGenerator[LLMEvent, None]:
        last = messages[-1] if messages else Message("user", "")
        if last.role == "tool":
            yield Finished("stop")  # the reply went with the tool call
            return
        intent = self.match(last.content)
        reply = intent.reply if intent else self.fallback
        reply = reply.replace("{caller}", last.content.strip())
        for i, word in enumerate(reply.split()):
            yield TextDelta(word if i == 0 else " " + word)
        allowed = {t.name for t in tools}
        if intent is not None and intent.tool and intent.tool in allowed:
            call = ToolCall(f"call_{len(messages)}", intent.tool, json.dumps(dict(intent.arguments)))
            yield ToolCallRequest(call)
            yield Finished("tool_calls")
            return
        yield Finished("stop")
