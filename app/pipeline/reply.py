"""``Reply``: one record per agent reply, the only owner of its progress.

In the spirit of livekit-agents' ``SpeechHandle``: the ``Conversation`` keeps one ``Reply`` per
turn, holding its task, its state, where the caller cut into it, what the caller heard, where the
caller's words it answers sit in the history, and its ``Responder``. "Is reply N finished?" is
``replies[N].done``. Who has the floor is the ``TurnTaker``'s business, never the reply's.

A preemptive reply starts ``held``: prepared (LLM, first sentences' audio) but unheard, with no
tool run and nothing in the history; ``commit`` makes it the reply, or it is discarded.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import Enum

from app.pipeline.playout import Cut
from app.pipeline.responder import Responder
from app.pipeline.turns import Respond
from app.providers.base import Message


class ReplyState(Enum):
    GENERATING = "generating"  # the responder is producing it (LLM, tools, TTS)
    PRODUCED = "produced"  # all its audio exists; it plays until heard
    FINISHED = "finished"  # heard in full (or nothing to say); written into the history
    CANCELLED = "cancelled"  # abandoned: only what the caller heard is in the history


@dataclass(slots=True, eq=False)
class Reply:
    turn: int
    responder: Responder
    user_index: int | None = None  # the history index of the caller's words it answers
    task: asyncio.Task[None] | None = None
    state: ReplyState = ReplyState.GENERATING
    audible: bool = False  # a frame of it has been written to the socket
    cut: Cut | None = None  # where the caller cut in, while the turn-taker decides
    heard: str = ""  # what the caller heard of it, once done
    held: bool = False  # preemptive and not yet committed: plays nothing, runs no tool
    answers: Respond | None = None  # the caller's turn it answers (held: written down at the commit)
    committed: asyncio.Event = field(default_factory=asyncio.Event)  # set when no longer held

    def unwritten(self) -> list[Message]:
        """Held: the caller's words it answers, not in the history until the commit."""
        return [Message("user", self.answers.text)] if self.held and self.answers is not None else []

    def commit(self) -> None:
        """The held reply becomes the reply: a tool call waiting in ``until_committed`` runs."""
        self.held = False
        self.committed.set()

    def discard(self) -> bool:
        """Abandon a held reply (its task cancelled); True if its LLM request had begun (wasted)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self.state = ReplyState.CANCELLED
        return self.responder.result.llm_requests > 0

    async def until_committed(self) -> None:
        """Return at once unless held; then when committed (a discarded reply is cancelled)."""
        if self.held:
            await self.committed.wait()

    @property
    def done(self) -> bool:
        """Finished or cancelled: nothing about it changes any more."""
        return self.state is ReplyState.FINISHED or self.state is ReplyState.CANCELLED
