"""The simulated caller: script parsing, and the runner's timing on the virtual clock.

The runner is ticked as the emulator ticks it: once per 20 ms frame, told whether the agent
was audible in that frame. Times below are the start of the tick that did something, so an
action "after N s" lands on the tick that ends at N s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from app.clock import FakeClock
from app.simulator.caller import (
    PCM,
    CallerRunner,
    CallerTick,
    HangUp,
    InterruptAfter,
    Say,
    ScriptError,
    Silence,
    Step,
    WaitForAgent,
    parse_script,
)

TICK = 0.02
FRAME = 320  # samples per tick at 16 kHz


# ── parse_script ──


def test_every_verb() -> None:
    script = """
        say Hello, I'd like to book a table
        say-wav recordings/question.wav
        wait
        wait 10
        interrupt 1.2 Sorry, one more thing
        silence 20
        hangup
        hang-up
    """
    assert parse_script(script) == [
        Say(text="Hello, I'd like to book a table"),
        Say(text="(question.wav)", wav=Path("recordings/question.wav")),
        WaitForAgent(),
        WaitForAgent(timeout=10.0),
        InterruptAfter(1.2, Say(text="Sorry, one more thing")),
        Silence(20.0),
        HangUp(),
        HangUp(),
    ]


def test_verbs_ignore_case_and_a_trailing_colon() -> None:
    assert parse_script("SAY: hi there\nSilence 1.5\nWAIT: 4") == [
        Say(text="hi there"),
        Silence(1.5),
        WaitForAgent(timeout=4.0),
    ]


def test_comments_and_blank_lines_are_skipped() -> None:
    script = "# a whole-line comment\n\n   \nsay hi   # trailing comment\n  # indented\nhangup\n"
    assert parse_script(script) == [Say(text="hi"), HangUp()]


def test_an_empty_script_has_no_steps() -> None:
    assert parse_script("# nothing\n\n") == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("shout hello", "unknown step 'shout' (say, say-wav, wait, interrupt, silence, press, hangup)"),
        ("say", "'say' needs the words to say"),
        ("say # only a comment", "'say' needs the words to say"),
        ("say-wav", "'say-wav' needs the path of a WAV file"),
        ("wait soon", "bad number in 'wait soon'"),
        ("silence", "bad number in 'silence'"),
        ("silence ten", "bad number in 'silence ten'"),
        ("interrupt 1.5", "'interrupt' needs seconds and the words to say"),
        ("interrupt soon hi there", "bad number in 'interrupt soon hi there'"),
    ],
)
def test_a_bad_line_is_reported_with_its_line_number(line: str, message: str) -> None:
    script = f"say first line\n# a comment still counts as a line\n\n{line}\nhangup"
    with pytest.raises(ScriptError) as caught:
        parse_script(script)
    assert str(caught.value) == f"line 4: {message}"


# ── the runner on the virtual clock ──

Audible = Callable[[float], bool]  # tick start (s) -> the agent was audible in that tick


def never(_t: float) -> bool:
    return False


def between(start: float, end: float) -> Audible:
    return lambda t: start - 1e-9 <= t < end - 1e-9


def tone(seconds: float) -> PCM:
    n = np.arange(int(seconds * 16000))
    return (8000 * np.sin(2 * np.pi * 300 * n / 16000)).astype(np.int16)


async def run(
    steps: list[Step], agent: Audible = never, audio: dict[int, PCM] | None = None
) -> list[tuple[float, CallerTick]]:
    """Tick a ``CallerRunner`` every 20 ms of virtual time until it hangs up."""
    clock = FakeClock()
    runner = CallerRunner(steps, audio or {}, FRAME)
    ticks: list[tuple[float, CallerTick]] = []

    async def loop() -> None:
        n = 0
        while True:
            t = round(clock.now(), 6)
            tick = runner.tick(agent(t), TICK)
            ticks.append((t, tick))
            if tick.hangup:
                return
            n += 1
            await clock.sleep(n * TICK - clock.now())

    await clock.run(loop())
    assert runner.finished
    return ticks


def when(ticks: list[tuple[float, CallerTick]], what: Callable[[CallerTick], object]) -> list[float]:
    return [t for t, tick in ticks if what(tick)]


async def test_silence_lasts_exactly_its_seconds() -> None:
    ticks = await run(parse_script("silence 2\nhangup"))
    assert when(ticks, lambda k: k.hangup) == [pytest.approx(2.0)]
    assert not any(k.pcm.any() for _, k in ticks)
    assert all(len(k.pcm) == FRAME for _, k in ticks)


async def test_wait_times_out_when_the_agent_never_speaks() -> None:
    ticks = await run([WaitForAgent(timeout=3.0), HangUp()])
    assert [k.note for _, k in ticks if k.note] == ["wait timed out after 3 s"]
    assert when(ticks, lambda k: k.note) == [pytest.approx(3.0 - TICK)]
    assert when(ticks, lambda k: k.hangup) == [pytest.approx(3.0)]


async def test_wait_ends_after_the_quiet_once_the_agent_has_spoken() -> None:
    """Quiet before the agent speaks does not count; 0.8 s after it stops, the caller talks."""
    steps: list[Step] = [WaitForAgent(), Say(text="hi"), HangUp()]
    ticks = await run(steps, between(0.5, 1.5), {1: tone(0.5)})
    assert when(ticks, lambda k: k.started) == [pytest.approx(1.5 + 0.8)]
    # 0.5 s of audio is 25 frames: the last one starts 0.48 s after the first
    assert when(ticks, lambda k: k.ended) == [pytest.approx(2.3 + 0.48)]
    spoken = np.concatenate([k.pcm for t, k in ticks if 2.3 - 1e-9 <= t < 2.8 - 1e-9])
    assert np.array_equal(spoken, tone(0.5))
    assert not any(k.note for _, k in ticks)


async def test_interrupt_fires_after_n_seconds_of_agent_speech() -> None:
    """Speech is counted, not time: 0.6 s, a 0.4 s pause, then 0.4 s more make the 1 s."""
    agent = lambda t: between(0.0, 0.6)(t) or between(1.0, 9.0)(t)  # noqa: E731
    steps: list[Step] = [InterruptAfter(1.0, Say(text="sorry")), HangUp()]
    ticks = await run(steps, agent, {0: tone(0.2)})
    (started,) = when(ticks, lambda k: k.started)
    assert started + TICK == pytest.approx(1.4)  # the tick that completes 1 s of agent speech
    assert [k.started for _, k in ticks if k.started] == [Say(text="sorry")]
    assert when(ticks, lambda k: k.hangup) == [pytest.approx(started + 0.2)]


async def test_interrupt_gives_up_when_the_agent_stays_silent() -> None:
    steps: list[Step] = [InterruptAfter(1.0, Say(text="sorry"), timeout=2.0), HangUp()]
    ticks = await run(steps, never, {0: tone(0.2)})
    assert [k.note for _, k in ticks if k.note] == ["agent never spoke for 1 s"]
    assert when(ticks, lambda k: k.note) == [pytest.approx(2.0 - TICK)]
    assert when(ticks, lambda k: k.started) == []
    assert when(ticks, lambda k: k.hangup) == [pytest.approx(2.0)]


async def test_a_script_without_hangup_waits_for_the_agent_then_hangs_up() -> None:
    ticks = await run(parse_script("silence 0.5"), between(1.0, 2.0))
    assert when(ticks, lambda k: k.hangup) == [pytest.approx(2.0 + 0.8)]
