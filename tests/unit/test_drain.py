"""The drain schedule (``app.drain``) and the turn-taker's ``Shutdown``: pure, on exact times."""

from __future__ import annotations

import pytest

from app.clock import FakeClock
from app.drain import CLOSING_S, FINISH_S, Drain, DrainPhase
from app.pipeline.turns import (
    AudioDone,
    AudioStarted,
    Cancel,
    HangUp,
    Shutdown,
    Speak,
    Tick,
    TurnPolicy,
    Words,
)
from tests.unit.test_turns import greeted, speaking, voice


async def test_the_drain_waits_for_live_calls_then_closes_then_ends_them() -> None:
    clock = FakeClock(100.0)
    drain = Drain(timeout_s=30.0)
    assert drain.phase(clock.now(), live_calls=3) is DrainPhase.SERVE
    assert drain.begin(clock.now())
    assert not drain.begin(clock.now() + 1)  # a second request: not a new drain (it stops at once)
    assert drain.started_at == 100.0
    schedule = [  # (seconds after begin, phase with calls live)
        (0.0, DrainPhase.WAIT),
        (29.9, DrainPhase.WAIT),
        (30.0, DrainPhase.CLOSE),
        (30.0 + CLOSING_S - 0.1, DrainPhase.CLOSE),
        (30.0 + CLOSING_S, DrainPhase.END),
        (30.0 + CLOSING_S + FINISH_S - 0.1, DrainPhase.END),
        (30.0 + CLOSING_S + FINISH_S, DrainPhase.EXIT),  # the last backstop
    ]
    elapsed = 0.0
    for at, phase in schedule:
        await clock.advance(at - elapsed)
        elapsed = at
        assert drain.phase(clock.now(), live_calls=1) is phase, at
    assert drain.deadline_s == 30.0 + CLOSING_S + FINISH_S


@pytest.mark.parametrize("after", [0.0, 10.0, 31.0, 46.0])
def test_the_drain_exits_as_soon_as_no_call_is_live(after: float) -> None:
    drain = Drain(timeout_s=30.0)
    drain.begin(5.0)
    assert drain.phase(5.0 + after, live_calls=0) is DrainPhase.EXIT


def test_a_zero_timeout_closes_live_calls_at_once() -> None:
    drain = Drain(timeout_s=0.0)
    drain.begin(0.0)
    assert drain.phase(0.0, live_calls=1) is DrainPhase.CLOSE


def test_shutdown_cuts_the_reply_says_the_shutdown_line_and_hangs_up() -> None:
    policy = TurnPolicy(shutdown_line="Sorry, we must stop here. Goodbye!")
    tt = greeted(policy)
    tt.handle(Words(1.5, "tell me everything", final=True, speech_final=True))
    speaking(tt, 2, 2.0)
    assert tt.handle(Shutdown(3.0)) == [Cancel(2), Speak(3, policy.shutdown_line)]
    assert tt.closing
    tt.handle(AudioStarted(3.2, 3))
    assert voice(tt, 3.5, 0.5) == []  # the caller cannot cut the shutdown line
    assert tt.handle(AudioDone(6.0, 3)) == [HangUp("service shutting down")]


def test_shutdown_while_listening_speaks_at_once() -> None:
    tt = greeted()
    assert tt.handle(Shutdown(2.0)) == [Speak(2, TurnPolicy().shutdown_line)]


def test_shutdown_during_a_closing_line_lets_that_line_end_the_call() -> None:
    policy = TurnPolicy(max_duration_s=10.0)
    tt = greeted(policy)
    assert tt.handle(Tick(10.0)) == [Speak(2, policy.closing_line)]
    assert tt.handle(Shutdown(10.5)) == []  # already closing: nothing is cut, nothing more said
    tt.handle(AudioStarted(10.6, 2))
    assert tt.handle(AudioDone(13.0, 2)) == [HangUp("maximum call duration")]
