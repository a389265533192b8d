"""Replies that use tools, wordless noise, a TTS outage and latency stamps, end to end: the app
(scripted providers) driven by the fake Vobiz on the virtual clock, as in test_conversation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agents.builtin import BUILTIN_TOOLS
from agents.tools import ToolContext, ToolRegistry, tool
from app.clock import FakeClock
from app.config import Settings
from app.pipeline.conversation import INTERRUPTED_MARK, CallControl
from app.providers.base import Message
from app.providers.scripted import Rule, ScriptedLLM, ToneTTS
from app.simulator.caller import HangUp, InterruptAfter, Say, Silence, Step, WaitForAgent
from tests.e2e.fake_agents import voice_like
from tests.e2e.test_conversation import GREETING, RULES, Call, agent_lines, run_call, times, words

BEFORE = "Let me check the hours."
AFTER = "We are open from nine in the morning until five in the evening every day."
HOURS = "open 09:00-17:00"


@tool
async def lookup_hours(ctx: ToolContext) -> str:
    """The opening hours."""
    return HOURS


def hours_llm() -> ScriptedLLM:
    return ScriptedLLM([Rule(r"hours", BEFORE, tool="lookup_hours", after_tool=AFTER), *RULES])


def hours_tools() -> ToolRegistry:
    return ToolRegistry({"lookup_hours": lookup_hours, **BUILTIN_TOOLS})


def after_question(call: Call, question: str) -> list[Message]:
    """The reply's part of the history the LLM was given on the caller's next turn."""
    request = next(r for r in call.llm.requests if r[-1].role == "user" and r[-1].content != question)
    start = next(i for i, m in enumerate(request) if m.role == "user" and m.content == question)
    return request[start + 1 : -1]


async def test_a_tool_reply_heard_in_full_is_in_the_history_once(
    make_settings: Callable[..., Settings],
) -> None:
    question, follow_up = "What are your hours?", "What time do you open?"
    steps: list[Step] = [WaitForAgent(), words(question), WaitForAgent(), words(follow_up), WaitForAgent()]
    call = await run_call(
        make_settings, [*steps, HangUp()], [question, follow_up], llm=hours_llm(), tools=hours_tools()
    )
    [asked] = call.llm.requests[1][-2].tool_calls  # the round that asked for the tool
    assert after_question(call, question) == [
        Message("assistant", BEFORE, tool_calls=(asked,)),
        Message("tool", HOURS, tool_call_id=asked.id),
        Message("assistant", AFTER),
    ]
    assert agent_lines(call)[1] == (f"{BEFORE} {AFTER}", False)


@pytest.mark.parametrize(
    ("after_s", "before_heard", "after_heard"),
    [
        (0.5, "Let me", None),  # cut before the tool call: its text is cut too
        (2.0, BEFORE, "We are open"),  # cut after it: the call, its result, and the heard words
    ],
)
async def test_an_interrupted_tool_reply_keeps_what_was_heard(
    make_settings: Callable[..., Settings], after_s: float, before_heard: str, after_heard: str | None
) -> None:
    question, barge = "What are your hours?", "Stop, what time do you open?"
    steps: list[Step] = [WaitForAgent(), words(question), InterruptAfter(after_s, words(barge))]
    call = await run_call(
        make_settings,
        [*steps, WaitForAgent(), HangUp()],
        [question, barge],
        llm=hours_llm(),
        tools=hours_tools(),
    )
    [asked] = call.llm.requests[1][-2].tool_calls
    said = [before_heard + (INTERRUPTED_MARK if after_heard is None else "")]
    expected = [
        Message("assistant", said[0], tool_calls=(asked,)),
        Message("tool", HOURS, tool_call_id=asked.id),
    ]
    if after_heard is not None:
        expected.append(Message("assistant", after_heard + INTERRUPTED_MARK))
    assert after_question(call, question) == expected
    heard = " ".join(p for p in (before_heard, after_heard) if p)
    assert agent_lines(call)[1] == (heard, True)
    assert call.llm.requests[-1][-1].content == barge


async def test_constant_noise_without_words_does_not_silence_the_agent(
    make_settings: Callable[..., Settings],
) -> None:
    noise = Say(text="(a fan, 8 s)", audio=voice_like(8.0))  # the VAD calls every frame voiced
    steps: list[Step] = [WaitForAgent(), words("Tell me a story"), InterruptAfter(1.0, noise)]
    call = await run_call(make_settings, [*steps, WaitForAgent(), HangUp()], ["Tell me a story"])
    rec = call.rec
    assert (call.conversation.barge_ins, call.conversation.false_interruptions) == (1, 1)
    assert agent_lines(call)[1] == (RULES[1].reply, False)  # the story finished, uncut
    clear = times(rec, "clear_audio")[0]
    resumed = next(t for t in times(rec, "agent_audio_start") if t > clear)
    noise_end = max(times(rec, "caller_speech_end"))
    # resumed at the maximum pause (plus a frame in transit), while the noise went on
    pause = call.conversation.config.policy.max_pause_s
    assert pause is not None
    assert resumed - clear == pytest.approx(pause + 0.02, abs=0.021)
    story_done = [e.t for e in rec.events if e.kind == "played_stream" and e.detail["name"].startswith("t2-")]
    assert max(story_done) < noise_end


async def test_a_long_interruption_is_not_talked_over_when_words_come_only_at_its_end(
    make_settings: Callable[..., Settings],
) -> None:
    """With a recogniser that gives no interim words (Whisper), 4 s of caller speech over the
    agent is not mistaken for wordless noise: the agent stays quiet until the words come."""
    long = Say(text="Sorry, I need to change my booking to next Friday evening", audio=voice_like(4.0))
    steps: list[Step] = [WaitForAgent(), words("Tell me a story"), InterruptAfter(1.0, long)]
    heard = ["Tell me a story", "Sorry, I need to change my booking to next Friday evening"]
    call = await run_call(make_settings, [*steps, WaitForAgent(), HangUp()], heard, interim_words=False)
    rec = call.rec
    clear = times(rec, "clear_audio")[0]
    speech_end = max(times(rec, "caller_speech_end"))
    assert speech_end - clear > 3.5
    # no agent audio between the cut and the end of the caller's sentence
    assert [t for t in times(rec, "agent_audio_start") if clear < t < speech_end] == []
    assert call.conversation.false_interruptions == 0
    assert call.conversation.barge_ins == 1


async def test_a_tts_outage_is_apologised_for_by_the_fallback_voice(
    make_settings: Callable[..., Settings],
) -> None:
    broken, fallback = ToneTTS(fail_on=r"\w"), ToneTTS()
    steps: list[Step] = [WaitForAgent(), words("What time do you open?"), WaitForAgent(), HangUp()]
    call = await run_call(make_settings, steps, ["What time do you open?"], tts=broken, fallback_tts=fallback)
    apology = call.conversation.config.apology
    assert broken.spoken == []  # every synthesis failed
    assert fallback.spoken == [GREETING, apology]  # the fixed greeting and the reply's apology
    assert agent_lines(call) == [(GREETING, False), (apology, False)]  # heard: their playedStream came
    assert call.conversation.provider_errors >= 1
    assert call.rec.end_reason == "caller hung up"


class SlowControl:
    """Call control whose transfer takes ``delay_s`` on the call's clock (a slow REST API)."""

    def __init__(self, inner: CallControl, clock: FakeClock, delay_s: float) -> None:
        self.inner, self.clock, self.delay_s = inner, clock, delay_s

    async def hang_up(self) -> None:
        await self.inner.hang_up()

    async def transfer(self) -> str:
        await self.clock.sleep(self.delay_s)
        return await self.inner.transfer()

    async def send_dtmf(self, digits: str) -> str:
        return await self.inner.send_dtmf(digits)


async def test_transfer_call_reaches_the_vobiz_rest_api_after_a_filler(
    make_settings: Callable[..., Settings],
) -> None:
    clock, tts = FakeClock(), ToneTTS()
    llm = ScriptedLLM([Rule(r"human", "Sure, I will connect you now.", tool="transfer_call")])
    steps: list[Step] = [WaitForAgent(), words("Can I talk to a human?"), Silence(20), HangUp()]
    call = await run_call(
        make_settings,
        steps,
        ["Can I talk to a human?"],
        llm=llm,
        tts=tts,
        clock=clock,
        control=lambda inner: SlowControl(inner, clock, 4.0),
    )
    rec = call.rec
    [transfer] = call.rest.calls[rec.call_id].transfers
    assert transfer["legs"] == "aleg"
    assert transfer["aleg_url"] == "https://agent.example.com/vobiz/transfer/default"
    # the fake Vobiz fetched the app's transfer XML and ran it: the default persona has no
    # transfer number, so the XML says sorry and hangs up
    fetched = [e for e in rec.events if e.kind == "status_callback" and e.detail.get("event") == "Transfer"]
    assert [e.detail["status"] for e in fetched] == [200]
    assert [e.detail["text"] for e in rec.events if e.kind == "speak"] == [
        "Sorry, no one is available. Goodbye."
    ]
    assert rec.end_reason == "Hangup in the transfer's XML"
    # the tool was slow: its filler was said, and played in full before the transfer
    filler = BUILTIN_TOOLS["transfer_call"].filler
    assert tts.spoken == [GREETING, "Sure, I will connect you now.", filler]
    acked = [e.detail["name"] for e in rec.events if e.kind == "played_stream"]
    assert "t2-s2" in acked


async def test_stt_final_is_stamped_when_the_transcript_arrived_not_at_turn_end(
    make_settings: Callable[..., Settings],
) -> None:
    question = "what time do you open"  # unpunctuated: the words alone leave the end unsure
    steps: list[Step] = [WaitForAgent(), words(question), WaitForAgent(), HangUp()]
    call = await run_call(make_settings, steps, [question], endpointing=False)
    stamps = call.conversation.latency.turns[2]
    assert stamps.stt_final is not None
    assert stamps.turn_end is not None
    # no endpoint signal: the final comes 0.3 s after the tone (the STT's endpointing), the turn
    # ends 0.7 s (unsure words) after the VAD's last voiced frame, which trails the sound by 100 ms
    assert stamps.turn_end - stamps.stt_final == pytest.approx(0.7 + 0.1 - 0.3)
    assert stamps.first_play_audio == stamps.turn_end  # zero-latency providers, a fast socket
