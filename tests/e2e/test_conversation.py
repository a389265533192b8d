"""The conversation pipeline end to end: the app (scripted zero-latency providers) driven by
the fake Vobiz on the virtual clock. Every timing here is exact."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass

import httpx
import pytest

from agents.builtin import BUILTIN_TOOLS
from agents.tools import ToolRegistry
from app.api.deps import AppContext
from app.api.webhooks import TRANSFER_PATH
from app.clock import FakeClock
from app.config import Settings
from app.main import create_app
from app.pipeline.control import VobizCallControl
from app.pipeline.conversation import (
    INTERRUPTED_MARK,
    CallControl,
    Conversation,
    ConversationConfig,
    Providers,
)
from app.pipeline.turns import TurnPolicy
from app.providers.scripted import Rule, ScriptedLLM, ScriptedSTT, ToneTTS
from app.simulator.caller import HangUp, InterruptAfter, Say, Silence, Step, WaitForAgent, utterances
from app.simulator.connect import AsgiConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import CallRecording
from app.simulator.vobiz_rest import create_fake_rest_app
from app.simulator.vobiz_rest_state import FakeVobizState
from app.telephony.token import StreamClaims
from tests.e2e.fake_agents import tone, voice_like

AUTH_ID, AUTH_TOKEN = "MA_SIMULATOR00000001", "simulator-auth-token"
ANSWER = "https://agent.example.com/vobiz/answer"
GREETING = "Hello, thanks for calling."
RULES = [
    Rule(r"open", "We open at nine tomorrow. Is there anything else?"),
    Rule(r"story", "Once upon a time there was a very long story that went on and on for quite a while."),
    Rule(r"\bbye\b", "Goodbye and have a lovely day.", tool="end_call"),
]


def words(text: str, seconds: float = 0.8) -> Say:
    """Caller audio the scripted STT will recognise as the next scripted utterance."""
    return Say(text=text, audio=voice_like(seconds))


@dataclass
class Call:
    rec: CallRecording
    conversation: Conversation
    llm: ScriptedLLM
    rest: FakeVobizState


async def run_call(
    make_settings: Callable[..., Settings],
    steps: list[Step],
    heard: list[str],
    *,
    policy: TurnPolicy | None = None,
    llm: ScriptedLLM | None = None,
    tts: ToneTTS | None = None,
    fallback_tts: ToneTTS | None = None,
    greeting: str = GREETING,
    tools: ToolRegistry | None = None,
    clock: FakeClock | None = None,
    endpointing: bool = True,
    control: Callable[[CallControl], CallControl] | None = None,
    interim_words: bool = True,
    acks_checkpoints: bool = True,
    setup: Callable[[Conversation], None] | None = None,
    during: Callable[[Conversation], Coroutine[None, None, None]] | None = None,
) -> Call:
    """One call. ``control`` wraps the call control (which can transfer, to the app's
    transfer webhook); ``endpointing=False``: the STT sends finals with no end-of-speech signal.
    ``setup`` adjusts the conversation before it runs; ``during`` runs beside the call (on the
    same clock) once the conversation exists."""
    clock = clock or FakeClock()
    llm = llm or ScriptedLLM(RULES)
    made: list[Conversation] = []

    def factory(claims: StreamClaims, ctx: AppContext) -> Conversation:
        transfer_url = f"{ctx.settings.public_base}{TRANSFER_PATH}/{claims.persona}"
        vobiz_control: CallControl = VobizCallControl(ctx.vobiz, claims.call_id, transfer_url)
        stt = ScriptedSTT(heard, endpointing=endpointing, interim_words=interim_words)
        conversation = Conversation(
            config=ConversationConfig(greeting=greeting, policy=policy or TurnPolicy()),
            providers=Providers(stt, llm, tts or ToneTTS(), fallback_tts=fallback_tts),
            clock=clock,
            control=control(vobiz_control) if control is not None else vobiz_control,
            tools=tools or ToolRegistry(BUILTIN_TOOLS),
            call_id=claims.call_id,
            persona=claims.persona,
        )
        if setup is not None:
            setup(conversation)
        made.append(conversation)
        return conversation

    state = FakeVobizState()
    rest_app = create_fake_rest_app(AUTH_ID, AUTH_TOKEN, state)
    rest_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=rest_app), base_url="http://vobiz")
    settings = make_settings(
        signature_mode="enforce",
        vobiz_auth_id=AUTH_ID,
        vobiz_auth_token=AUTH_TOKEN,
        vobiz_api_base_url="http://vobiz/api/v1",
    )
    app = create_app(settings, clock=clock, agent_factory=factory, vobiz_http=rest_http)
    connector = AsgiConnector(app)
    platform = PlatformConfig(auth_id=AUTH_ID, auth_token=AUTH_TOKEN, acks_checkpoints=acks_checkpoints)
    vobiz = FakeVobiz(connector, clock, platform)
    vobiz.attach_rest(state)
    audio = {i: say.audio for i, say in utterances(steps).items() if say.audio is not None}

    async def dial_and_script() -> CallRecording:
        async with asyncio.TaskGroup() as tg:
            call = tg.create_task(vobiz.dial(ANSWER, steps, audio))
            while during is not None and not made:
                await clock.sleep(0.01)
            if during is not None:
                tg.create_task(during(made[0]))
        return call.result()

    try:
        rec = await clock.run(dial_and_script())
    finally:
        await connector.aclose()
        await rest_http.aclose()
    assert rec.protocol_errors == [], rec.protocol_errors
    return Call(rec, made[0], llm, state)


def times(rec: CallRecording, kind: str) -> list[float]:
    return [e.t for e in rec.events if e.kind == kind]


def agent_lines(call: Call) -> list[tuple[str, bool]]:
    return [(e.text, e.interrupted) for e in call.conversation.transcript if e.speaker == "agent"]


async def test_greeting_then_a_question_answered(make_settings: Callable[..., Settings]) -> None:
    steps: list[Step] = [WaitForAgent(), words("What time do you open?"), WaitForAgent(), HangUp()]
    call = await run_call(make_settings, steps, ["What time do you open?"])
    rec = call.rec
    assert times(rec, "agent_audio_start")[0] == pytest.approx(0.02)  # the greeting, at once
    assert agent_lines(call) == [
        (GREETING, False),
        ("We open at nine tomorrow. Is there anything else?", False),
    ]
    acked = [e.detail["name"] for e in rec.events if e.kind == "played_stream"]
    assert acked == ["t1-s1", "t2-s1", "t2-s2"]  # one checkpoint per sentence, all heard
    # latency: 300 ms of STT endpointing + one frame in transit; zero-latency providers add nothing
    assert len(rec.turns) == 1
    assert rec.turns[0].latency == pytest.approx(0.32)
    stamps = call.conversation.latency.turns[2]
    # prepared before the final transcript (150 ms into the pause), heard as the final came
    assert stamps.llm_first_token is not None
    assert stamps.stt_final is not None
    assert stamps.llm_first_token == stamps.tts_first_audio
    assert stamps.llm_first_token < stamps.stt_final
    assert stamps.first_play_audio == stamps.stt_final
    # measured from the VAD's last voiced frame, which trails the sound by 100 ms
    assert stamps.since_speech_end()["first_play_audio"] == pytest.approx(0.18)
    # the LLM saw the system prompt, the greeting and the question
    roles = [(m.role, m.content) for m in call.llm.requests[0]]
    assert roles[1:] == [("assistant", GREETING), ("user", "What time do you open?")]


async def test_barge_in_cuts_the_reply_and_the_history_keeps_what_was_heard(
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
    rec = call.rec
    barge = times(rec, "barge_in")[0]
    clear = times(rec, "clear_audio")[0]
    # min speech 80 ms = 4 frames: clearAudio goes out as the 4th voiced frame (60 ms after the 1st) lands
    assert clear - barge == pytest.approx(0.06)
    cleared = times(rec, "cleared_audio")[0]
    # no stale audio: nothing played between the clear and the next reply
    next_audio = next(t for t in times(rec, "agent_audio_start") if t > clear)
    assert next_audio > cleared
    assert not [t for t in times(rec, "checkpoint") if clear < t < next_audio - 0.5]
    heard, interrupted = agent_lines(call)[1]
    assert interrupted
    assert heard == "Once upon a time"  # 1.08 s at 0.25 s a word
    # the next request to the LLM has exactly what was heard, marked
    history = call.llm.requests[1]
    assert ("assistant", heard + INTERRUPTED_MARK) in [(m.role, m.content) for m in history]
    assert history[-1].content == "Stop, what time do you open?"
    assert call.conversation.barge_ins == 1
    assert call.llm.closed == len(call.llm.requests)  # the abandoned reply's stream was closed


async def test_a_backchannel_does_not_interrupt(make_settings: Callable[..., Settings]) -> None:
    steps: list[Step] = [
        WaitForAgent(),
        words("Tell me a story"),
        InterruptAfter(1.0, words("uh-huh", 0.3)),
        WaitForAgent(),
        HangUp(),
    ]
    call = await run_call(make_settings, steps, ["Tell me a story", "uh-huh"])
    story = RULES[1].reply
    assert agent_lines(call) == [(GREETING, False), (story, False)]
    assert call.conversation.false_interruptions == 1
    assert len(call.llm.requests) == 1  # no new reply for "uh-huh"
    acked = [e.detail["name"] for e in call.rec.events if e.kind == "played_stream"]
    assert acked[-1].startswith("t2-s")  # the story played to its end (resumed from the cut)


async def test_noise_without_words_resumes_the_agent(make_settings: Callable[..., Settings]) -> None:
    steps: list[Step] = [
        WaitForAgent(),
        words("Tell me a story"),
        InterruptAfter(0.5, Say(text="(cough)", audio=tone(0.12, 300, 6000))),
        WaitForAgent(),
        HangUp(),
    ]
    call = await run_call(make_settings, steps, ["Tell me a story"])
    assert call.conversation.barge_ins == 1
    assert call.conversation.false_interruptions == 1
    assert agent_lines(call)[-1] == (RULES[1].reply, False)


async def test_idle_reprompt_then_hang_up(make_settings: Callable[..., Settings]) -> None:
    policy = TurnPolicy(idle_reprompt_s=4.0, max_reprompts=1)
    call = await run_call(make_settings, [Silence(60), HangUp()], [], policy=policy)
    rec = call.rec
    assert [text for text, _ in agent_lines(call)] == [GREETING, policy.reprompt, policy.idle_goodbye]
    starts = times(rec, "agent_audio_start")
    ends = times(rec, "agent_audio_end")
    assert starts[1] - ends[0] == pytest.approx(4.0, abs=0.11)  # the reprompt after 4 s of quiet
    assert rec.end_reason.startswith("app sent stop")
    assert [r.method for r in call.rest.requests_to("DELETE")] == ["DELETE"]  # and a REST hang-up


async def test_max_duration_closes_the_call(make_settings: Callable[..., Settings]) -> None:
    policy = TurnPolicy(max_duration_s=5.0, idle_reprompt_s=100)
    call = await run_call(make_settings, [Silence(60), HangUp()], [], policy=policy)
    assert agent_lines(call)[-1] == (policy.closing_line, False)
    assert call.rec.end_reason.startswith("app sent stop")
    assert 5.0 < call.rec.duration < 5.0 + 0.25 * len(policy.closing_line.split()) + 0.5


async def test_end_call_plays_the_goodbye_then_hangs_up(make_settings: Callable[..., Settings]) -> None:
    steps: list[Step] = [WaitForAgent(), words("ok bye"), Silence(30), HangUp()]
    call = await run_call(make_settings, steps, ["ok bye"])
    rec = call.rec
    goodbye = RULES[2].reply
    assert agent_lines(call)[-1] == (goodbye, False)
    last_ack = times(rec, "played_stream")[-1]
    assert times(rec, "stop")[0] == pytest.approx(last_ack)  # stop only after the goodbye played
    assert rec.end_reason.startswith("app sent stop")
    deletes = call.rest.requests_to("DELETE")
    assert len(deletes) == 1
    assert deletes[0].path.endswith(f"/Call/{rec.call_id}/")


async def test_a_provider_failure_is_survived(make_settings: Callable[..., Settings]) -> None:
    llm = ScriptedLLM(RULES, fail_on=r"break")
    steps: list[Step] = [
        WaitForAgent(),
        words("please break"),
        WaitForAgent(),
        words("What time do you open?"),
        WaitForAgent(),
        HangUp(),
    ]
    call = await run_call(make_settings, steps, ["please break", "What time do you open?"], llm=llm)
    lines = [text for text, _ in agent_lines(call)]
    assert lines[1] == "Sorry, I had a problem there. Could you say that again?"
    assert lines[2] == RULES[0].reply
    assert call.conversation.provider_errors == 1
    assert call.rec.end_reason == "caller hung up"


async def test_a_tts_failure_is_survived(make_settings: Callable[..., Settings]) -> None:
    tts = ToneTTS(fail_on=r"nine")
    steps: list[Step] = [WaitForAgent(), words("What time do you open?"), WaitForAgent(), HangUp()]
    call = await run_call(make_settings, steps, ["What time do you open?"], tts=tts)
    assert [text for text, _ in agent_lines(call)][-1].startswith("Sorry, I had a problem")
    assert call.rec.end_reason == "caller hung up"
