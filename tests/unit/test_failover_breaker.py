"""The failover circuit breaker (pure: times are arguments) and the order a chain is tried in."""

from __future__ import annotations

import pytest

from app.clock import FakeClock
from app.providers.failover import (
    CALL_FAILOVERS,
    Breakers,
    CallFailovers,
    CircuitBreaker,
    order,
)


def test_closed_until_n_failures_within_the_window() -> None:
    breaker = CircuitBreaker(failures=3, cooldown_s=30.0)
    breaker.failed(0.0)
    breaker.failed(1.0)
    assert breaker.state(1.0) == "closed"
    assert breaker.allows(1.0)
    breaker.failed(2.0)
    assert breaker.state(2.0) == "open"
    assert not breaker.allows(2.0)
    assert not breaker.allows(31.9)


def test_failures_outside_the_window_do_not_add_up() -> None:
    breaker = CircuitBreaker(failures=3, cooldown_s=10.0, window_s=10.0)
    breaker.failed(0.0)
    breaker.failed(5.0)
    breaker.failed(10.0)  # the first one has left the window
    assert breaker.state(10.0) == "closed"
    breaker.failed(11.0)
    assert breaker.state(11.0) == "open"


def test_a_success_forgets_the_failures() -> None:
    breaker = CircuitBreaker(failures=2, cooldown_s=10.0)
    breaker.failed(0.0)
    breaker.succeeded()
    breaker.failed(1.0)
    assert breaker.state(1.0) == "closed"


def test_half_open_lets_one_trial_through_and_a_success_closes_it() -> None:
    breaker = CircuitBreaker(failures=1, cooldown_s=30.0)
    breaker.failed(0.0)
    assert breaker.state(30.0) == "half-open"
    assert breaker.allows(30.0)  # the trial
    assert not breaker.allows(30.5)  # others go to the fallback while it is under way
    breaker.succeeded()
    assert breaker.state(31.0) == "closed"
    assert breaker.allows(31.0)
    assert breaker.allows(31.0)  # closed: no trial limit


def test_a_failed_trial_opens_it_for_another_cool_down() -> None:
    breaker = CircuitBreaker(failures=3, cooldown_s=30.0)
    for t in (0.0, 1.0, 2.0):
        breaker.failed(t)
    assert breaker.allows(32.0)  # half-open trial
    breaker.failed(33.0)  # one failure is enough now
    assert breaker.state(33.0) == "open"
    assert not breaker.allows(62.9)
    assert breaker.allows(63.0)


def test_a_trial_that_never_reports_frees_its_slot_after_a_cool_down() -> None:
    breaker = CircuitBreaker(failures=1, cooldown_s=10.0)
    breaker.failed(0.0)
    assert breaker.allows(10.0)
    assert not breaker.allows(15.0)
    assert breaker.allows(20.0)  # the first trial's call must have gone away


@pytest.mark.parametrize(("failures", "cooldown"), [(0, 1.0), (1, 0.0)])
def test_nonsense_settings_are_refused(failures: int, cooldown: float) -> None:
    with pytest.raises(ValueError, match="failures must be"):
        CircuitBreaker(failures, cooldown)


def test_breakers_are_one_per_stage_and_provider() -> None:
    board = Breakers(failures=1, cooldown_s=5.0)
    assert board.of("stt", "deepgram") is board.of("stt", "deepgram")
    assert board.of("stt", "deepgram") is not board.of("tts", "deepgram")
    board.of("stt", "deepgram").failed(0.0)
    assert not board.of("stt", "deepgram").allows(1.0)
    assert board.of("tts", "deepgram").allows(1.0)


def test_order_skips_an_open_breaker_and_says_so() -> None:
    board = Breakers(failures=1, cooldown_s=5.0)
    names = ["deepgram", "whisper"]
    assert order("stt", names, board, 0.0) == ([0, 1], False)
    board.of("stt", "deepgram").failed(0.0)
    assert order("stt", names, board, 1.0) == ([1, 0], True)  # the open one last, as a last resort


def test_order_starts_where_the_call_switched_to() -> None:
    board = Breakers()
    calls = CallFailovers(FakeClock())
    token = CALL_FAILOVERS.set(calls)
    try:
        calls.switched("llm", "openai", "secondary", "HTTP 500")
        assert order("llm", ["openai", "secondary"], board, 0.0) == ([1], False)
        assert order("tts", ["deepgram", "offline"], board, 0.0) == (
            [0, 1],
            False,
        )  # other stages as they were
    finally:
        CALL_FAILOVERS.reset(token)
    assert [(f.stage, f.from_, f.to, f.reason) for f in calls.events] == [
        ("llm", "openai", "secondary", "HTTP 500")
    ]


def test_order_takes_the_trial_of_the_first_choice_only() -> None:
    board = Breakers(failures=1, cooldown_s=5.0)
    board.of("tts", "offline").failed(0.0)  # the fallback's breaker is half-open at 5 s
    assert order("tts", ["deepgram", "offline"], board, 5.0) == ([0, 1], False)
    assert board.of("tts", "offline").allows(5.0)  # its trial is still free for a call that needs it
    board.of("tts", "deepgram").failed(5.0)
    assert order("tts", ["deepgram", "offline"], board, 10.0) == ([0, 1], False)  # the primary's trial
    assert not board.of("tts", "deepgram").allows(10.0)  # taken by that request
