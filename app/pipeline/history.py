"""What one agent reply adds to the LLM's history: what the caller heard, not what was said.

Pure. The playout knows how many words of a turn were heard (a prefix of its sentences, in
order); the responder knows which tool round each audible sentence belongs to. Together they
give the history the model should see, cut where the caller cut in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.providers.base import Message, ToolCall

INTERRUPTED_MARK = " [interrupted by the caller]"


@dataclass(frozen=True, slots=True)
class ToolRound:
    """One LLM round that called tools, with every result (a round cut short is not one)."""

    calls: tuple[ToolCall, ...]
    results: tuple[Message, ...]


def heard_history(
    heard: str,
    spoken: Sequence[tuple[int, str]],
    rounds: Sequence[ToolRound],
    *,
    interrupted: bool,
) -> list[Message]:
    """The assistant side of one reply, as the caller heard it.

    ``spoken``: each sentence that produced audio, in playout order, with the index of the tool
    round it was said in (``i``: before round ``i``'s results, fillers included; ``len(rounds)``
    or more: after the last). ``heard``: the words the caller heard, a prefix of those
    sentences' words. Each round becomes an assistant message holding the words heard before its
    results and its calls, then the results; the words heard after the last round end the reply.
    ``interrupted`` marks the message in which the caller cut in (the last one with heard words).
    Nothing heard and no tool run: nothing to add.
    """
    budget = len(heard.split())
    if not budget and not rounds:
        return []
    words: list[list[str]] = [[] for _ in range(len(rounds) + 1)]
    for index, sentence in spoken:
        if budget <= 0:
            break
        taken = sentence.split()[:budget]
        budget -= len(taken)
        words[min(index, len(rounds))].extend(taken)
    contents = [" ".join(w) for w in words]
    if interrupted:
        at = max((i for i, c in enumerate(contents) if c), default=0)
        contents[at] = (contents[at] + INTERRUPTED_MARK).lstrip()
    out: list[Message] = []
    for content, tool_round in zip(contents, rounds, strict=False):
        out.append(Message("assistant", content, tool_calls=tool_round.calls))
        out.extend(tool_round.results)
    if contents[-1]:
        out.append(Message("assistant", contents[-1]))
    return out
