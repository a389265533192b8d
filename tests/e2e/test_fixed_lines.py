"""Fixed lines rendered once, through the app and the fake Vobiz on the virtual clock: every
call of a persona (one after another, or many at once) hears the greeting synthesized once; a
persona with another voice gets its own rendering; a cached greeting plays exactly as a
synthesized one (checkpoints, barge-in, what the caller heard)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from agents.builtin import BUILTIN_TOOLS
from agents.tools import ToolRegistry
from app.api.deps import AppContext
from app.audio.formats import AudioFormat
from app.clock import FakeClock
from app.config import Settings
from app.main import conversation_factory, create_app
from app.pipeline.conversation import (
    INTERRUPTED_MARK,
    Conversation,
    ConversationConfig,
    Providers,
    TranscriptEntry,
)
from app.pipeline.factory import conversation_config, warm_greetings
from app.pipeline.session import Agent
from app.providers.line_cache import LineCache
from app.providers.registry import ProviderSet
from app.providers.scripted import Rule, ScriptedLLM, ScriptedSTT, ToneTTS
from app.simulator.caller import HangUp, InterruptAfter, Step, WaitForAgent, utterances
from app.simulator.connect import AsgiConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import CallRecording
from app.telephony.token import StreamClaims
from tests.e2e.test_metrics import words

ANSWER = "https://agent.example.com/vobiz/answer"
GREETING = "Hello, thanks for calling Sunrise Bakery today. How can I help you?"
SENTENCES = ["Hello, thanks for calling Sunrise Bakery today.", "How can I help you?"]
RULES = [Rule(r"wait", "Of course, take your time.")]


def persona(greeting: str, voice: str = "") -> str:
    return (
        f"---\ndisplay_name: Bakery\ngreeting: {greeting}\ntts_voice: '{voice}'\n---\nYou answer briefly.\n"
    )


class Ended:
    def __init__(self) -> None:
        self.calls: list[Conversation] = []

    def on_transcript(self, conversation: Conversation, entry: TranscriptEntry) -> None:
        pass

    def on_end(self, conversation: Conversation) -> None:
        self.calls.append(conversation)


def agent_lines(conversation: Conversation) -> list[tuple[str, bool]]:
    return [(e.text, e.interrupted) for e in conversation.transcript if e.speaker == "agent"]


async def dial(vobiz: FakeVobiz, clock: FakeClock, steps: list[Step], persona: str = "") -> CallRecording:
    audio = {i: say.audio for i, say in utterances(steps).items() if say.audio is not None}
    url = f"{ANSWER}?persona={persona}" if persona else ANSWER
    rec = await vobiz.dial(url, steps, audio)
    assert rec.protocol_errors == [], rec.protocol_errors
    return rec


async def test_every_call_of_a_persona_hears_the_greeting_synthesized_once(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    (tmp_path / "default.md").write_text(persona(GREETING), encoding="utf-8")
    (tmp_path / "twin.md").write_text(persona(GREETING), encoding="utf-8")  # same voice, same line
    (tmp_path / "cora.md").write_text(persona(GREETING, "aura-2-cora-en"), encoding="utf-8")
    tts, ended, clock = ToneTTS(), Ended(), FakeClock()
    providers = ProviderSet(stt=ScriptedSTT(), llm=ScriptedLLM(RULES), tts={"offline": tts})
    app = create_app(
        make_settings(prompts_dir=tmp_path),
        clock=clock,
        agent_factory=conversation_factory(providers, ended),
    )
    connector = AsgiConnector(app)
    vobiz = FakeVobiz(connector, clock, PlatformConfig())
    greeted: list[Step] = [WaitForAgent(), HangUp()]

    async def calls() -> None:
        await dial(vobiz, clock, greeted)
        async with asyncio.TaskGroup() as tg:  # ten more dialled at once, of both twin personas
            for i in range(10):
                tg.create_task(dial(vobiz, clock, greeted, "twin" if i % 2 else ""))
        await dial(vobiz, clock, greeted, "cora")  # another voice: its own rendering

    try:
        await clock.run(calls())
    finally:
        await connector.aclose()
    assert len(ended.calls) == 12
    assert all(agent_lines(c) == [(GREETING, False)] for c in ended.calls)  # each heard it in full
    # rendered once for the eleven calls in one voice, once more in the other voice
    assert sorted(tts.spoken) == sorted(SENTENCES * 2)
    assert providers.lines.renders == 4
    assert len(providers.lines) == 4


def factory(
    clock: FakeClock, tts: ToneTTS, lines: LineCache | None, made: list[Conversation]
) -> Callable[[StreamClaims, AppContext], Agent]:
    stt = ScriptedSTT(["Sorry, wait"] * 2)

    def make(claims: StreamClaims, ctx: AppContext) -> Agent:
        conversation = Conversation(
            config=ConversationConfig(greeting=GREETING),
            providers=Providers(stt, ScriptedLLM(RULES), tts, lines=lines),
            clock=clock,
            control=_NoControl(),
            tools=ToolRegistry(BUILTIN_TOOLS),
            call_id=claims.call_id,
            persona=claims.persona,
        )
        made.append(conversation)
        return conversation

    return make


class _NoControl:
    async def hang_up(self) -> None:
        pass

    async def transfer(self) -> str:
        return "no transfer here"

    async def send_dtmf(self, digits: str) -> str:
        return "no keypad here"


CUT_IN: list[Step] = [InterruptAfter(1.0, words("Sorry, wait")), WaitForAgent(), HangUp()]


async def cut_into_the_greeting(
    make_settings: Callable[..., Settings], lines: LineCache | None, tts: ToneTTS
) -> tuple[CallRecording, Conversation]:
    """One call whose caller cuts into the greeting after 1 s of it."""
    clock, made = FakeClock(), list[Conversation]()
    app = create_app(make_settings(), clock=clock, agent_factory=factory(clock, tts, lines, made))
    connector = AsgiConnector(app)
    try:
        rec = await clock.run(dial(FakeVobiz(connector, clock, PlatformConfig()), clock, CUT_IN))
    finally:
        await connector.aclose()
    return rec, made[0]


async def test_a_cached_greeting_is_cut_by_barge_in_as_a_synthesized_one(
    make_settings: Callable[..., Settings],
) -> None:
    synthesized, conversation = await cut_into_the_greeting(make_settings, None, ToneTTS())
    tts, lines = ToneTTS(), LineCache()
    fmt = AudioFormat("mulaw", 8000)  # the fake Vobiz's stream
    for sentence in SENTENCES:
        await lines.frames(sentence, tts, ConversationConfig().tts, fmt)  # rendered before the call
    cached, cached_conversation = await cut_into_the_greeting(make_settings, lines, tts)
    # the call itself synthesized no greeting, only its reply to the caller
    assert tts.spoken == [*SENTENCES, RULES[0].reply]
    assert lines.renders == 2
    assert lines.hits == 2  # both sentences served from the cache (the second queued, then dropped)
    # the same wire timeline: audio, checkpoints, the barge-in, clearAudio, the reply
    assert [(e.kind, e.t) for e in cached.events] == [(e.kind, e.t) for e in synthesized.events]
    heard = agent_lines(cached_conversation)
    assert heard == agent_lines(conversation)
    assert heard[0] == ("Hello, thanks for calling", True)  # 1.08 s of its 1.75 s: 4 of 7 words, cut
    assert cached_conversation.barge_ins == 1
    history = [(m.role, m.content) for m in cached_conversation.history]
    assert ("assistant", "Hello, thanks for calling" + INTERRUPTED_MARK) in history


async def test_start_up_renders_each_greeting_once_for_every_persona_sharing_it(tmp_path: Path) -> None:
    from agents.catalog import ALL_TOOLS
    from agents.personas import load_personas

    (tmp_path / "default.md").write_text(persona(GREETING), encoding="utf-8")
    (tmp_path / "twin.md").write_text(persona(GREETING), encoding="utf-8")
    (tmp_path / "short.md").write_text(persona("Hi!"), encoding="utf-8")
    tts, clock = ToneTTS(), FakeClock()
    providers = ProviderSet(stt=ScriptedSTT(), llm=None, tts={"offline": tts})
    fmt = AudioFormat("mulaw", 8000)
    personas = load_personas(tmp_path, frozenset(ALL_TOOLS))
    ready = await clock.run(warm_greetings(personas, providers, fmt, clock))
    assert ready == 5  # two sentences for each twin, one for "Hi!"
    assert sorted(tts.spoken) == sorted([*SENTENCES, "Hi!"])
    options = conversation_config(personas["twin"]).tts  # as a call of that persona asks for them
    assert all(providers.lines.cached(s, tts, options, fmt) for s in SENTENCES)
