"""``heard_history``: one reply's messages for the LLM, cut to what the caller heard."""

from __future__ import annotations

import pytest

from app.pipeline.history import INTERRUPTED_MARK, ToolRound, heard_history
from app.providers.base import Message, ToolCall

CALL = ToolCall("c1", "lookup", "{}")
ROUND = ToolRound((CALL,), (Message("tool", "result", tool_call_id="c1"),))
SPOKEN = [(0, "Let me check."), (0, "One moment."), (1, "It is open."), (1, "Anything else?")]


def assistant(text: str, *calls: ToolCall) -> Message:
    return Message("assistant", text, tool_calls=calls)


@pytest.mark.parametrize(
    ("heard", "interrupted", "expected"),
    [
        # heard in full: the filler said while the tool ran belongs before the result
        (
            "Let me check. One moment. It is open. Anything else?",
            False,
            [
                assistant("Let me check. One moment.", CALL),
                ROUND.results[0],
                assistant("It is open. Anything else?"),
            ],
        ),
        # cut in the answer: only its heard words, marked
        (
            "Let me check. One moment. It is",
            True,
            [
                assistant("Let me check. One moment.", CALL),
                ROUND.results[0],
                assistant("It is" + INTERRUPTED_MARK),
            ],
        ),
        # cut before the result was spoken: the mark goes where the caller cut in
        ("Let me", True, [assistant("Let me" + INTERRUPTED_MARK, CALL), ROUND.results[0]]),
        # the tool ran though nothing was heard: the model must still know it did
        ("", True, [assistant(INTERRUPTED_MARK.strip(), CALL), ROUND.results[0]]),
    ],
)
def test_a_reply_with_a_tool(heard: str, interrupted: bool, expected: list[Message]) -> None:
    assert heard_history(heard, SPOKEN, [ROUND], interrupted=interrupted) == expected


def test_a_round_cut_short_is_not_in_the_history() -> None:
    # the tool was still running when the caller cut in: no call without its result
    assert heard_history("Let me check.", [(0, "Let me check.")], [], interrupted=True) == [
        assistant("Let me check." + INTERRUPTED_MARK)
    ]


def test_nothing_heard_and_no_tool_adds_nothing() -> None:
    assert heard_history("", [(0, "Hello there.")], [], interrupted=True) == []


def test_two_rounds() -> None:
    second = ToolRound((ToolCall("c2", "book", "{}"),), (Message("tool", "booked", tool_call_id="c2"),))
    spoken = [(0, "Checking."), (1, "Booking."), (2, "Done.")]
    assert heard_history("Checking. Booking. Done.", spoken, [ROUND, second], interrupted=False) == [
        assistant("Checking.", CALL),
        ROUND.results[0],
        assistant("Booking.", *second.calls),
        second.results[0],
        assistant("Done."),
    ]
