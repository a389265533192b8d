"""One ``Reply`` record per reply: its state, what the caller heard of it, its history index."""

from __future__ import annotations

from collections.abc import Callable

from app.config import Settings
from app.pipeline.reply import ReplyState
from app.pipeline.turns import Floor
from app.simulator.caller import HangUp, InterruptAfter, Step, WaitForAgent
from tests.e2e.test_conversation import GREETING, run_call, words


async def test_each_reply_has_one_record_that_says_how_far_it_got(
    make_settings: Callable[..., Settings],
) -> None:
    steps: list[Step] = [
        WaitForAgent(),
        words("Tell me a story"),
        InterruptAfter(1.0, words("Stop, what time do you open?")),
        WaitForAgent(),
        HangUp(),
    ]
    call = await run_call(make_settings, steps, ["Tell me a story", "Stop, what time do you open?"])
    conversation = call.conversation
    replies = conversation.replies
    assert sorted(replies) == [1, 2, 3]
    greeting, story, answer = replies[1], replies[2], replies[3]
    assert (greeting.state, greeting.heard, greeting.user_index) == (ReplyState.FINISHED, GREETING, None)
    assert (story.state, story.heard) == (ReplyState.CANCELLED, "Once upon a time")
    assert story.cut is None  # used when it was cancelled
    assert story.user_index is not None
    assert conversation.history[story.user_index].content == "Tell me a story"
    assert answer.state is ReplyState.FINISHED
    assert all(r.done and r.audible and r.task is not None and r.task.done() for r in replies.values())
    assert conversation.turns.floor is Floor.ENDED
