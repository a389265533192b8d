"""``Reply``: one record per agent reply, the only owner of its progress.

In the spirit of livekit-agents' ``SpeechHandle``: the ``Conversation`` keeps one ``Reply`` per
turn, holding its task, its state, where the caller cut into it, what the caller heard, where the
caller's words it answers sit in the history, and its ``Responder``. "Is reply N finished?" is
``replies[N].done``. Who has the floor is the ``TurnTaker``'s business, never the reply's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum

from app.pipeline.playout import Cut
from app.pipeline.responder import Responder


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

    @property
    def done(self) -> bool:
        """Finished or cancelled: nothing about it changes any more."""
        return self.state is ReplyState.FINISHED or self.state is ReplyState.CANCELLED
