"""GET /metrics after real calls through the fake Vobiz on the virtual clock: the active-call
gauge, calls by end reason, turn latency per stage (live, as each turn is heard, and never
twice), barge-ins, false interruptions and protocol errors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from agents.builtin import BUILTIN_TOOLS
from agents.tools import ToolRegistry
from app.api.deps import AgentFactory, AppContext
from app.clock import FakeClock
from app.config import Settings
from app.main import conversation_factory, create_app
from app.observability.metrics import TURN_STAGES, VoiceMetrics
from app.pipeline.conversation import Conversation, ConversationConfig, Providers
from app.pipeline.echo import EchoAgent
from app.pipeline.lifecycle import CallInfo, CallOutcome
from app.pipeline.session import CallStats
from app.providers.registry import ProviderSet
from app.providers.scripted import Rule, ScriptedLLM, ScriptedSTT, ToneTTS
from app.simulator.caller import HangUp, InterruptAfter, Say, Silence, Step, WaitForAgent, utterances
from app.simulator.connect import AsgiConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import CallRecording
from app.telephony.token import StreamClaims
from tests.e2e.fake_agents import voice_like

ROOT = Path(__file__).resolve().parents[2]
ANSWER = "https://agent.example.com/vobiz/answer"
RULES = [
    Rule(r"open", "We open at nine tomorrow."),
    Rule(r"story", "Once upon a time there was a very long story that went on and on for quite a while."),
]
STORY = "Tell me a story"
STOP = "Stop, what time do you open?"


def words(text: str, seconds: float = 0.8) -> Say:
    """Caller audio the scripted STT will recognise as the next scripted utterance."""
    return Say(text=text, audio=voice_like(seconds))


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(app: FastAPI) -> Samples:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def stage_counts(metrics: VoiceMetrics) -> dict[str, float]:
    counts = {}
    for stage in TURN_STAGES:
        count = metrics.registry.get_sample_value("voice_agent_turn_latency_seconds_count", {"stage": stage})
        counts[stage] = count or 0.0
    return counts


@dataclass
class Watcher:
    """A test's call listener. It runs before the service's own, so at ``call_ended`` it sees
    what the metrics held while the call was still up."""

    app: FastAPI | None = None
    active_during_call: list[float] = field(default_factory=list)
    stages_at_end: dict[str, float] = field(default_factory=dict)
    outcomes: list[CallOutcome] = field(default_factory=list)

    def _metrics(self) -> VoiceMetrics:
        assert self.app is not None
        metrics: VoiceMetrics = self.app.state.metrics
        return metrics

    async def call_started(self, call: CallInfo) -> None:
        pass

    async def call_ended(self, call: CallInfo, outcome: CallOutcome) -> None:
        metrics = self._metrics()
        self.active_during_call.append(metrics.registry.get_sample_value("voice_agent_active_calls") or 0.0)
        self.stages_at_end = stage_counts(metrics)
        self.outcomes.append(outcome)


async def dial(app: FastAPI, clock: FakeClock, steps: list[Step]) -> CallRecording:
    connector = AsgiConnector(app)
    vobiz = FakeVobiz(connector, clock, PlatformConfig())
    audio = {i: say.audio for i, say in utterances(steps).items() if say.audio is not None}
    try:
        rec = await clock.run(vobiz.dial(ANSWER, steps, audio))
    finally:
        await connector.aclose()
    assert rec.protocol_errors == [], rec.protocol_errors
    return rec


async def test_an_echo_call_is_counted_and_the_gauge_returns_to_zero(
    make_settings: Callable[..., Settings],
) -> None:
    clock, watcher = FakeClock(), Watcher()
    app = watcher.app = create_app(make_settings(), clock=clock, listeners=[watcher])
    before = await scrape(app)
    assert value(before, "voice_agent_active_calls") == 0
    assert value(before, "voice_agent_turn_latency_seconds_count", stage="first_play_audio") == 0
    await dial(app, clock, [Silence(1.0), HangUp()])
    await dial(app, clock, [Silence(0.5), HangUp()])
    after = await scrape(app)
    assert watcher.active_during_call == [1.0, 1.0]  # up while the call ran
    assert value(after, "voice_agent_active_calls") == 0
    assert value(after, "voice_agent_calls_total", reason="socket-closed") == 2
    assert value(after, "voice_agent_barge_ins_total") == 0
    assert value(after, "voice_agent_protocol_errors_total", kind="bad-frame") == 0
    # the latency histogram has its voice-sized buckets, from 50 ms to 5 s
    buckets = {
        dict(labels)["le"] for name, labels in after if name == "voice_agent_turn_latency_seconds_bucket"
    }
    assert {"0.05", "5.0", "+Inf"} <= buckets


def scripted_factory(heard: list[str], *, live: bool) -> AgentFactory:
    """``live``: the service's own ``conversation_factory`` (its ``on_turn`` feeds the metrics as
    each turn is heard); otherwise a conversation built without the hook, counted at its end."""
    providers = ProviderSet(stt=ScriptedSTT(heard), llm=ScriptedLLM(RULES), tts={"offline": ToneTTS()})
    if live:
        return conversation_factory(providers)

    def factory(claims: StreamClaims, ctx: AppContext) -> Conversation:
        return Conversation(
            config=ConversationConfig(),
            providers=Providers(providers.stt, ScriptedLLM(RULES), ToneTTS()),
            clock=ctx.clock,
            control=Unused(),
            tools=ToolRegistry(BUILTIN_TOOLS),
            call_id=claims.call_id,
            persona=claims.persona,
        )

    return factory


class Unused:
    async def hang_up(self) -> None:
        raise AssertionError("no hang-up in this call")

    async def transfer(self) -> str:
        raise AssertionError("no transfer in this call")

    async def send_dtmf(self, digits: str) -> str:
        raise AssertionError("no DTMF in this call")


@pytest.mark.parametrize("live", [True, False], ids=["live", "at-end"])
async def test_a_conversation_with_a_barge_in_and_a_backchannel(
    make_settings: Callable[..., Settings], live: bool
) -> None:
    steps: list[Step] = [
        WaitForAgent(),
        words(STORY),
        InterruptAfter(1.0, words("uh-huh", 0.3)),  # a backchannel: the agent resumes
        InterruptAfter(2.0, words(STOP)),  # real words: the story is cut
        WaitForAgent(),
        HangUp(),
    ]
    clock, watcher = FakeClock(), Watcher()
    settings = make_settings(prompts_dir=ROOT / "prompts")
    factory = scripted_factory([STORY, "uh-huh", STOP], live=live)
    app = watcher.app = create_app(settings, clock=clock, agent_factory=factory, listeners=[watcher])
    rec = await dial(app, clock, steps)
    samples = await scrape(app)
    (outcome,) = watcher.outcomes
    conversation = outcome.agent
    assert isinstance(conversation, Conversation)
    answered = [t for t in conversation.latency.turns.values() if t.speech_end and t.first_play_audio]
    assert len(answered) == 2  # the story and the answer to "stop"; the greeting is not a turn
    for stage in TURN_STAGES:
        assert value(samples, "voice_agent_turn_latency_seconds_count", stage=stage) == 2, stage
    # live: every figure was in before the call ended; at-end: all of them came with the end
    assert watcher.stages_at_end == {stage: 2.0 if live else 0.0 for stage in TURN_STAGES}
    # zero-latency providers: the first playAudio goes out with the STT's final, 220 ms after the
    # last voiced frame (the tone's VAD hangover), for both turns
    first = value(samples, "voice_agent_turn_latency_seconds_sum", stage="first_play_audio")
    assert first == pytest.approx(sum(t.since_speech_end()["first_play_audio"] for t in answered))
    assert value(samples, "voice_agent_turn_latency_seconds_bucket", stage="first_play_audio", le="0.05") == 0
    assert value(samples, "voice_agent_turn_latency_seconds_bucket", stage="first_play_audio", le="0.3") == 2
    barge_ins = len(rec.events_of("barge_in"))
    assert barge_ins == conversation.barge_ins == 2
    assert value(samples, "voice_agent_barge_ins_total") == barge_ins
    assert value(samples, "voice_agent_false_interruptions_total") == conversation.false_interruptions == 1
    assert value(samples, "voice_agent_provider_errors_total") == 0
    assert value(samples, "voice_agent_calls_total", reason="socket-closed") == 1
    assert value(samples, "voice_agent_active_calls") == 0


async def test_protocol_errors_are_counted_by_kind(make_settings: Callable[..., Settings]) -> None:
    clock = FakeClock()
    app = create_app(make_settings(), clock=clock)
    metrics: VoiceMetrics = app.state.metrics
    # a call's end as the media socket reports it, with the session's counters
    stats = CallStats(call_id="c-1")
    stats.protocol_errors = Counter({"bad-frame": 3, "media-before-start": 1})
    stats.unknown_events = Counter({"mystery": 2, "other": 1})
    call = CallInfo("c-1", "default", "", "", 0.0)
    for listener in app.state.ctx.listeners:
        await listener.call_started(call)
        await listener.call_ended(call, CallOutcome("error", 1.0, stats, EchoAgent()))
    samples = await scrape(app)
    assert value(samples, "voice_agent_protocol_errors_total", kind="bad-frame") == 3
    assert value(samples, "voice_agent_protocol_errors_total", kind="media-before-start") == 1
    assert value(samples, "voice_agent_protocol_errors_total", kind="unknown-event") == 3  # names stay out
    assert value(samples, "voice_agent_calls_total", reason="error") == 1
    assert metrics.registry.get_sample_value("voice_agent_active_calls") == 0


async def test_an_end_without_a_start_leaves_the_gauge_alone(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(), clock=FakeClock())
    call = CallInfo("c-1", "default", "", "", 0.0)
    for listener in app.state.ctx.listeners:
        await listener.call_ended(call, CallOutcome("error", 1.0, CallStats(call_id="c-1"), EchoAgent()))
    assert value(await scrape(app), "voice_agent_active_calls") == 0


async def test_metrics_can_be_turned_off(make_settings: Callable[..., Settings]) -> None:
    clock = FakeClock()
    app = create_app(make_settings(metrics_enabled=False), clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent") as client:
        assert (await client.get("/metrics")).status_code == 404
    rec = await dial(app, clock, [Silence(0.5), HangUp()])  # calls work as before
    assert rec.end_reason


async def test_each_app_has_its_own_registry(make_settings: Callable[..., Settings]) -> None:
    first, second = create_app(make_settings()), create_app(make_settings())
    assert first.state.metrics.registry is not second.state.metrics.registry


async def test_preemptive_replies_are_counted_by_outcome(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(), clock=FakeClock())
    before = await scrape(app)
    assert value(before, "voice_agent_preemptive_replies_total", outcome="wasted") == 0
    call = CallInfo("c-1", "default", "", "", 0.0)
    conversation = scripted_factory([], live=False)(StreamClaims("c-1", "default", 0), app.state.ctx)
    assert isinstance(conversation, Conversation)
    # five held replies: two became the reply, two were discarded after their LLM request began,
    # one before it (it cost nothing)
    conversation.preemptive_started, conversation.preemptive_committed = 5, 2
    conversation.preemptive_wasted = 2
    outcome = CallOutcome("socket-closed", 1.0, CallStats(call_id="c-1"), conversation)
    for listener in app.state.ctx.listeners:
        await listener.call_started(call)
        await listener.call_ended(call, outcome)
    samples = await scrape(app)
    assert value(samples, "voice_agent_preemptive_replies_total", outcome="committed") == 2
    assert value(samples, "voice_agent_preemptive_replies_total", outcome="wasted") == 2
    assert value(samples, "voice_agent_preemptive_replies_total", outcome="dropped") == 1
