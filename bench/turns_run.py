"""Running ``bench.turns``'s calls: the service in this process (uvicorn on 127.0.0.1), the fake
Vobiz dialling it over real WebSockets, in real time, one profile of providers per run.

Each call's agent is a real ``Conversation`` built as the service builds it (the bench persona's
settings and its providers through ``persona_providers``), except that its language model is
wrapped to count requests. The fake Vobiz of each call notes when each ``playAudio`` arrives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.api.deps import AppContext
from app.clock import SystemClock
from app.main import create_app
from app.pipeline.control import VobizCallControl
from app.pipeline.conversation import Conversation
from app.pipeline.factory import conversation_config, persona_providers, persona_tools
from app.providers.base import LanguageModel, LLMEvent, LLMOptions, Message, ToolSpec
from app.providers.registry import ProviderSet
from app.simulator.connect import Connector, HttpReply, MediaSocket, MediaSocketWrapper, NetworkConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import CallRecording
from app.simulator.simulate import _bind, _serving
from app.telephony.token import StreamClaims
from bench.harness import AUTH, service_settings
from bench.turns_measure import CallFigures, Reply, over_figures, reply_figures, speech_segments
from bench.turns_measure import clears as clear_times
from bench.turns_scripts import GREETING, LONG_ANSWER, Behaviour, Voice, script

PERSONA = f"""\
---
display_name: Sunrise Bakery
greeting: {GREETING}
tools: []
intents:
  - name: menu
    examples: [tell me about your menu, what do you bake, what is on the menu]
    reply: {LONG_ANSWER}
  - name: hours
    examples: [what time do you open tomorrow, when do you open, what are your hours]
    reply: We open at seven tomorrow.
  - name: booking
    examples: [I'd like to book a table for four people tonight, book a table]
    reply: A table for four tonight, lovely.
  - name: number
    examples: [my number is 98765 432 10, my phone number is]
    reply: Thanks, I have noted your number.
  - name: day
    examples: [I think tomorrow, tomorrow]
    reply: Tomorrow it is.
fallback: Sorry, could you say that again?
---
You are the phone assistant of Sunrise Bakery. Answer in one short sentence, except when asked
about the menu: then describe it in two long sentences.
"""

ProviderMaker = Callable[[Behaviour], ProviderSet]


def _nothing(_: Behaviour) -> None:
    pass


@dataclass
class Profile:
    """How one profile's calls get their providers; ``before_call`` prepares a call's servers;
    ``llm_requests``: the language model server's own count of requests, read before and after
    each call (for a profile whose calls run one at a time; None: the client-side count)."""

    make: ProviderMaker
    before_call: Callable[[Behaviour], None] = _nothing
    llm_requests: Callable[[], int] | None = None
    shared: ProviderSet | None = None  # providers shared by the calls, closed after the last


class CountingLLM:
    """A language model that counts the replies it was asked for (every ``stream`` call)."""

    def __init__(self, inner: LanguageModel) -> None:
        self.inner = inner
        self.name = inner.name
        self.requests = 0

    def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], options: LLMOptions
    ) -> AsyncGenerator[LLMEvent, None]:
        self.requests += 1
        return self.inner.stream(messages, tools, options)


class _StampedSocket(MediaSocketWrapper):
    def __init__(self, inner: MediaSocket, plays: list[float]) -> None:
        super().__init__(inner)
        self._plays = plays

    async def recv(self) -> str | bytes | None:
        frame = await self._inner.recv()
        if isinstance(frame, str) and '"playAudio"' in frame:
            self._plays.append(time.monotonic())
        return frame


class _StampingConnector:
    """One call's way to the app: a shared connector, with its socket's playAudio stamped."""

    def __init__(self, inner: Connector) -> None:
        self.inner = inner
        self.plays: list[float] = []  # monotonic seconds

    async def request(
        self, method: str, url: str, data: dict[str, str], headers: dict[str, str]
    ) -> HttpReply:
        return await self.inner.request(method, url, data, headers)

    async def open_socket(self, url: str) -> MediaSocket:
        return _StampedSocket(await self.inner.open_socket(url), self.plays)

    async def aclose(self) -> None:
        pass  # the shared connector is closed once, by its owner


@dataclass(slots=True)
class _Call:
    behaviour: Behaviour
    conversation: Conversation | None = None
    llm: CountingLLM | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def replies_of(conversation: Conversation | None) -> list[Reply]:
    """The agent's replies after the greeting, from its transcript."""
    if conversation is None:
        return []
    said = [e for e in conversation.transcript if e.speaker == "agent" and e.text.strip()]
    return [Reply(e.text, e.interrupted) for e in said if e.text != GREETING]


def figures(call: _Call, rec: CallRecording, plays_monotonic: list[float]) -> CallFigures:
    plays = [t - rec.clock_origin for t in plays_monotonic]
    segments = speech_segments(rec)
    replies = replies_of(call.conversation)
    if call.behaviour.kind == "reply" or not segments:
        found = reply_figures(segments, plays)
    else:
        found = over_figures(
            segments[-1], plays, clear_times(rec), replies, interruption=call.behaviour.name == "g"
        )
    wasted = getattr(call.conversation, "preemptive_wasted", None)
    return dataclasses.replace(
        found,
        llm_requests=call.llm.requests if call.llm is not None else 0,
        replies_played=len(replies),
        preemptive_wasted=wasted if isinstance(wasted, int) else None,
        off_script=call.behaviour.kind == "over" and not (replies and replies[0].text.startswith("We bake")),
    )


class Bench:
    """``async with Bench(profile, voice) as bench``: the service is up; ``await bench.call(b)``
    runs one call of behaviour ``b`` and returns its figures (and its recording)."""

    def __init__(self, profile: Profile, voice: Voice) -> None:
        self._profile = profile
        self._voice = voice
        self._calls: dict[str, _Call] = {}
        self._seq = 0
        self._dirs: list[tempfile.TemporaryDirectory[str]] = []
        self.errors: list[str] = []  # protocol errors seen by the fake Vobiz
        self.last: _Call | None = None  # the last call that ended (its agent, for debugging)

    def _factory(self, claims: StreamClaims, ctx: AppContext) -> Conversation:
        persona = ctx.personas[claims.persona]
        call = self._calls[claims.call_id]
        providers = persona_providers(persona, self._profile.make(call.behaviour))
        call.llm = CountingLLM(providers.llm)
        call.conversation = Conversation(
            config=conversation_config(persona),
            providers=dataclasses.replace(providers, llm=call.llm),
            clock=ctx.clock,
            control=VobizCallControl(None, claims.call_id, None),
            tools=persona_tools(persona),
            call_id=claims.call_id,
            persona=persona.name,
        )
        return call.conversation

    def _files(self) -> tuple[Path, Path]:
        """Fresh directories for the bench persona and the service's call records."""
        prompts, data = tempfile.TemporaryDirectory(), tempfile.TemporaryDirectory()
        self._dirs = [prompts, data]
        Path(prompts.name, "default.md").write_text(PERSONA, encoding="utf-8")
        return Path(prompts.name), Path(data.name)

    async def __aenter__(self) -> Bench:
        prompts, data = self._files()
        sock, self.base = _bind()
        settings = service_settings(self.base, data, prompts_dir=prompts)
        app = create_app(settings, agent_factory=self._factory)
        self._serving = _serving([(app, sock)])
        await self._serving.__aenter__()
        self._connector = NetworkConnector()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._connector.aclose()
        await self._serving.__aexit__(None, None, None)
        for d in self._dirs:
            d.cleanup()

    async def call(self, behaviour: Behaviour, seed: int = 0) -> tuple[CallFigures, CallRecording]:
        self._seq += 1
        call_id = f"turns-{behaviour.name}-{self._seq}"
        call = self._calls[call_id] = _Call(behaviour)
        steps, audio = script(behaviour, self._voice, seed)
        self._profile.before_call(behaviour)
        counted = self._profile.llm_requests
        before = counted() if counted is not None else 0
        connector = _StampingConnector(self._connector)
        vobiz = FakeVobiz(connector, SystemClock(), PlatformConfig(auth_token=AUTH))
        rec = await vobiz.dial(
            f"{self.base}/vobiz/answer", steps, audio, hangup_url=f"{self.base}/vobiz/hangup", call_id=call_id
        )
        self.errors += [f"{v.rule}: {v.detail}" for v in rec.protocol_errors]
        await asyncio.sleep(0.2)  # the agent's end (its transcript's last line) settles
        self.last = self._calls.pop(call_id)
        found = figures(call, rec, connector.plays)
        if counted is not None:
            found = dataclasses.replace(found, llm_requests=counted() - before)
        return found, rec
