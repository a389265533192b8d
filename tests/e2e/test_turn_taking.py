"""Turn-taking end to end through the fake Vobiz: a caller pausing mid-sentence is not answered
in the pause, a complete question is answered fast, a backchannel costs almost no silence."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from app.config import Settings
from app.providers.base import Message
from app.providers.scripted import Rule, ScriptedLLM
from app.simulator.caller import HangUp, InterruptAfter, Say, Silence, Step, WaitForAgent
from tests.e2e.fake_agents import voice_like
from tests.e2e.test_conversation import GREETING, RULES, agent_lines, run_call, times, words

FIRST, REST = "I'd like to book a table for", "four people tonight."
BOOKED = "Lovely, a table for four tonight."
BOOKING = [Rule(r"table for four people", BOOKED), *RULES]


@pytest.mark.parametrize("pause", [0.5, 1.0, 1.5])
@pytest.mark.parametrize("interim_words", [True, False], ids=["interim-words", "whisper-like"])
async def test_a_pause_mid_sentence_gets_no_reply_and_one_answer_to_all_of_it(
    make_settings: Callable[..., Settings], pause: float, interim_words: bool
) -> None:
    llm = ScriptedLLM(BOOKING)
    steps: list[Step] = [WaitForAgent(), words(FIRST), Silence(pause), words(REST), WaitForAgent(), HangUp()]
    call = await run_call(make_settings, steps, [FIRST, REST], llm=llm, interim_words=interim_words)
    rec = call.rec
    first_end, rest_start = times(rec, "caller_speech_end")[0], times(rec, "caller_speech_start")[1]
    assert rest_start - first_end == pytest.approx(pause, abs=0.021)
    starts = times(rec, "agent_audio_start")
    assert [t for t in starts if first_end < t < rest_start] == []  # nothing said in the pause
    assert agent_lines(call) == [(GREETING, False), (BOOKED, False)]
    assert [m for m in call.conversation.history if m.role == "user"] == [Message("user", f"{FIRST} {REST}")]
    assert call.conversation.preemptive_wasted == 0  # nothing was prepared on the unfinished words


async def test_a_complete_question_is_answered_250_ms_into_the_pause(
    make_settings: Callable[..., Settings],
) -> None:
    # no endpoint signal from the recogniser: the words alone end the turn
    steps: list[Step] = [WaitForAgent(), words("What time do you open?"), WaitForAgent(), HangUp()]
    call = await run_call(make_settings, steps, ["What time do you open?"], endpointing=False)
    stamps = call.conversation.latency.turns[2]
    assert stamps.speech_end is not None
    assert stamps.turn_end is not None
    # the final transcript comes 0.3 s after the sound, 0.2 s after the VAD's last voiced frame;
    # the complete question is answered on the first frame 250 ms after that frame (13 frames),
    # and ``speech_end`` is that frame's end (+20 ms); before, the turn waited 700 ms
    assert stamps.since_speech_end()["first_play_audio"] == pytest.approx(0.26 - 0.02, abs=1e-6)
    assert call.conversation.preemptive_committed == 1  # prepared 150 ms into the pause, then used


async def test_a_backchannel_over_the_agent_costs_its_length_and_one_final(
    make_settings: Callable[..., Settings],
) -> None:
    steps: list[Step] = [
        WaitForAgent(),
        words("Tell me a story"),
        InterruptAfter(1.0, Say(text="uh-huh", audio=voice_like(0.4))),
        WaitForAgent(),
        HangUp(),
    ]
    call = await run_call(make_settings, steps, ["Tell me a story", "uh-huh"])
    rec = call.rec
    clear = times(rec, "clear_audio")[0]
    resumed = next(t for t in times(rec, "agent_audio_start") if t > clear)
    sound_end = times(rec, "caller_speech_end")[-1]
    # the final "uh-huh" comes 0.3 s after the sound (the recogniser's endpointing); the story
    # goes on at once: the dead air after the sound is that wait plus a frame in transit
    assert resumed - sound_end == pytest.approx(0.32, abs=0.021)
    assert agent_lines(call)[-1] == (RULES[1].reply, False)
    assert (call.conversation.barge_ins, call.conversation.false_interruptions) == (1, 1)


async def test_a_cough_over_the_agent_resumes_it_300_ms_after_the_sound(
    make_settings: Callable[..., Settings],
) -> None:
    steps: list[Step] = [
        WaitForAgent(),
        words("Tell me a story"),
        InterruptAfter(1.0, Say(text="(cough)", audio=voice_like(0.2))),
        WaitForAgent(),
        HangUp(),
    ]
    call = await run_call(make_settings, steps, ["Tell me a story"])
    rec = call.rec
    clear = times(rec, "clear_audio")[0]
    resumed = next(t for t in times(rec, "agent_audio_start") if t > clear)
    sound_end = times(rec, "caller_speech_end")[-1]
    # 300 ms after the VAD's last voiced frame (which trails the sound by 100 ms), plus a frame
    assert resumed - sound_end == pytest.approx(0.1 + 0.3 + 0.02, abs=0.021)
    assert agent_lines(call)[-1] == (RULES[1].reply, False)
