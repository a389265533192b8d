"""Shared pieces of the benchmarks that run whole calls over real sockets on 127.0.0.1.

- ``run_service``: the service in a process of its own (as in production: uvicorn on uvloop),
  with zero-latency scripted providers; it records its event loop's lag (a ticker), each
  call's turn stamps and, per call, when the agent took each inbound frame;
- ``call_script``: what each simulated caller says and does, and the scripted agent's matching
  transcripts (``ScriptedSTT`` hands them out in order);
- ``overhead_ms`` and ``reaction_ms``: the per-turn pipeline overhead (the service's stamps) and
  the barge-in reaction (the fake Vobiz's timeline);
- small statistics and JSON helpers.

Every time here is ``time.monotonic()`` seconds (``SystemClock``), one clock for every process
on the machine (Linux ``CLOCK_MONOTONIC``), so stamps taken on both sides can be compared.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import multiprocessing
import os
import secrets
import socket
import tempfile
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import uvicorn

from agents.builtin import BUILTIN_TOOLS
from agents.tools import ToolRegistry
from app.api.deps import AppContext
from app.api.ws_protocol import MediaWebSocketProtocol
from app.clock import SystemClock
from app.config import Settings
from app.main import create_app
from app.pipeline.control import VobizCallControl
from app.pipeline.conversation import Conversation, ConversationConfig, Providers
from app.pipeline.lifecycle import CallInfo, CallOutcome
from app.pipeline.session import CallIO
from app.providers.base import STTStream
from app.providers.scripted import Rule, ScriptedLLM, ScriptedSTT, ToneTTS
from app.simulator.caller import HangUp, InterruptAfter, Say, Step, WaitForAgent, utterances
from app.simulator.recording import CallRecording
from app.simulator.simulate import _bind
from app.telephony.token import StreamClaims

PCM = npt.NDArray[np.int16]
AUTH = "bench-auth-token"
TICK_S = 0.02  # the service-loop ticker's period: one media frame
GREETING = "Hello, how can I help?"
RULES = [
    Rule("open", "We open at nine. Anything else?"),
    Rule("story", "Here is a long answer that keeps going for a good while so you can cut in."),
]


# ── statistics ──────────────────────────────────────────────────────────────────────────────────


def percentile(values: Iterable[float], q: float) -> float | None:
    data = list(values)
    return float(np.percentile(data, q)) if data else None


def stats(values: Iterable[float], *quantiles: int) -> dict[str, float | None]:
    """``{"p50": …, "p95": …, "max": …}`` for the quantiles asked; None where there is no data."""
    data = list(values)
    found: dict[str, float | None] = {f"p{q}": percentile(data, q) for q in quantiles}
    found["max"] = max(data, default=None)
    return found


def write_json(path: str, result: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2)
        fh.write("\n")


def fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


# ── the caller's script ─────────────────────────────────────────────────────────────────────────


def tone(seconds: float, rate: int = 16000) -> PCM:
    t = np.arange(int(seconds * rate)) / rate
    return (6000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)


@dataclass(frozen=True, slots=True)
class CallScript:
    steps: list[Step]
    audio: dict[int, PCM]  # the caller's audio per speaking step, at the fake Vobiz's recording rate
    said: list[str]  # what the scripted speech-to-text "hears", in order


def call_script(cycles: int = 1, rate: int = 16000) -> CallScript:
    """After the greeting, ``cycles`` times: ask a question and hear the answer; ask for a long
    answer and cut into it after 1 s of it; hear the reply. Then hang up."""
    steps: list[Step] = [WaitForAgent()]
    for _ in range(cycles):
        steps += [
            Say("What time do you open?", audio=tone(0.8, rate)),
            WaitForAgent(),
            Say("Tell me a story", audio=tone(0.8, rate)),
            InterruptAfter(1.0, Say("Stop, thanks", audio=tone(0.6, rate))),
            WaitForAgent(),
        ]
    steps.append(HangUp())
    spoken = utterances(steps)
    audio = {i: say.audio for i, say in spoken.items() if say.audio is not None}
    return CallScript(steps, audio, [say.text for say in spoken.values()])


# ── the service, in a process of its own ────────────────────────────────────────────────────────


class _StampedConversation(Conversation):
    """A ``Conversation`` that records when each inbound frame reached the agent (the socket's
    reader hands it over, ``CallIO.take_audio``; VAD and the turn-taker run on it at once). A
    frame the session dropped before the agent started (its 2 s queue overflowed) has no stamp:
    such calls are counted in ``dropped``."""

    taken: array[float]

    async def run(self, call: CallIO) -> None:
        self.taken = array("d")
        await super().run(call)

    async def _hear(self, stt: STTStream, pcm: PCM) -> None:
        self.taken.append(time.monotonic())
        await super()._hear(stt, pcm)


class _Recorder:
    """What the service process records: its loop's lag, and each ended call's turn stamps,
    inbound frame stamps and dropped frames (kept compact: the calls themselves are let go)."""

    def __init__(self) -> None:
        self.lags: list[tuple[float, float]] = []  # (when, ms late)
        self.turns: list[tuple[str, float, float]] = []  # (call id, stt_final, first_play_audio)
        self.taken: dict[str, bytes] = {}
        self.dropped: dict[str, int] = {}

    async def call_started(self, call: CallInfo) -> None:
        pass

    async def call_ended(self, call: CallInfo, outcome: CallOutcome) -> None:
        agent = outcome.agent
        self.dropped[call.call_id] = outcome.stats.inbound_dropped
        if isinstance(agent, _StampedConversation):
            self.turns += [
                (call.call_id, s.stt_final, s.first_play_audio)
                for s in agent.latency.turns.values()
                if s.stt_final is not None and s.first_play_audio is not None
            ]
            if hasattr(agent, "taken"):
                self.taken[call.call_id] = agent.taken.tobytes()

    def drain(self) -> dict[str, Any]:
        """Everything recorded since the last drain."""
        out = {"lags": list(self.lags), "turns": self.turns, "taken": self.taken, "dropped": self.dropped}
        self.lags.clear()  # in place: the ticker holds this list
        self.turns, self.taken, self.dropped = [], {}, {}
        return out


def _factory(clock: SystemClock, cycles: int) -> Any:
    said = call_script(cycles).said

    def make(claims: StreamClaims, ctx: AppContext) -> Conversation:
        return _StampedConversation(
            config=ConversationConfig(greeting=GREETING),
            providers=Providers(ScriptedSTT(said), ScriptedLLM(RULES), ToneTTS()),
            clock=clock,
            control=VobizCallControl(None, claims.call_id, None),
            tools=ToolRegistry(BUILTIN_TOOLS),
            call_id=claims.call_id,
            persona=claims.persona,
        )

    return make


def service_settings(base: str, data_dir: Path, **overrides: Any) -> Settings:
    """The benchmarked service's settings: served at ``base``, signed webhooks, a fresh token
    secret (unless ``stream_token_secret`` is given), its files (call records) in ``data_dir``;
    ``overrides`` for the rest."""
    overrides.setdefault("stream_token_secret", secrets.token_urlsafe(32))
    return Settings(
        _env_file=None,
        public_url=base,
        signature_mode="enforce",
        vobiz_auth_token=AUTH,
        data_dir=data_dir,
        **overrides,
    )


@dataclass(frozen=True, slots=True)
class Shared:
    """What the workers of one service share, as ``serve --workers N`` runs them: the listening
    socket (the kernel hands each connection to one of them), the token secret, Redis (the call
    bus and the call rules) and the call records' directory (migrated once, before they start)."""

    sock: socket.socket
    secret: str
    redis_url: str
    data_dir: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"


async def loop_ticker(lags: list[tuple[float, float]], period: float = TICK_S) -> None:
    """Sleep ``period`` at a time and record how late each wake-up is (until cancelled)."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + period
        await asyncio.sleep(period)
        now = loop.time()
        lags.append((time.monotonic(), (now - due) * 1000))


def bench_server(app: Any, settings: Settings) -> uvicorn.Server:
    """A ``uvicorn.Server`` for ``app`` as ``voice-agent serve`` runs it (uvloop, the media
    WebSocket protocol, the message size limit), quiet, to be served on a bound socket."""
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        ws_max_size=settings.max_message_bytes,
        ws=MediaWebSocketProtocol,
    )
    return uvicorn.Server(config)


def _serve(
    cycles: int,
    cpus: list[int] | None,
    profile: str | None,
    ports: Any,
    results: Any,
    commands: Any,
    shared: Shared | None = None,
) -> None:
    """The service: uvicorn's production defaults (uvloop, websockets-sansio), scripted providers.
    Sends its base URL on ``ports``; on each ``report`` command, and on ``exit``, what it
    recorded since the last report on ``results``. ``shared``: one worker of several."""

    if cpus:
        os.sched_setaffinity(0, cpus)
    clock = SystemClock()
    record = _Recorder()
    data = tempfile.TemporaryDirectory(prefix="bench-service-")  # call records go here
    if shared is None:
        sock, base = _bind()
        settings = service_settings(base, Path(data.name))
    else:
        sock, base = shared.sock, shared.base
        settings = service_settings(
            base, Path(shared.data_dir), stream_token_secret=shared.secret, redis_url=shared.redis_url
        )
    app = create_app(settings, clock=clock, agent_factory=_factory(clock, cycles), listeners=[record])
    server = bench_server(app, settings)

    async def run() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(server.serve(sockets=[sock]))
            while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
                await asyncio.sleep(0.01)
            ticking = tg.create_task(loop_ticker(record.lags))
            ports.put(base)
            while (command := await asyncio.to_thread(commands.get)) != "exit":
                assert command == "report"
                results.put(record.drain())
            ticking.cancel()
            server.should_exit = True

    profiler = cProfile.Profile() if profile else None
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        if profiler is not None:
            profiler.enable()
        runner.run(run())
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(profile))
    data.cleanup()
    results.put(record.drain())


class ServiceProcess:
    """``async with ServiceProcess(cycles) as service``: the service runs in a spawned process
    (pinned to ``cpus`` if given; under cProfile, stats written to ``profile``, if given; one of
    several workers on ``shared`` if given, see ``bench.workers``);
    ``service.base`` is its URL, ``service.pid`` its process id.
    ``await service.report()`` returns what it recorded since the last report; ``recorded``
    holds the rest once the block has exited. Callers' scripts may have at most ``cycles``
    cycles (the scripted speech-to-text hands out the script's lines in order)."""

    def __init__(
        self,
        cycles: int = 1,
        cpus: list[int] | None = None,
        profile: str | None = None,
        shared: Shared | None = None,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._ports, self._results, self._commands = context.Queue(), context.Queue(), context.Queue()
        args = (cycles, cpus, profile, self._ports, self._results, self._commands, shared)
        self._process = context.Process(target=_serve, args=args, daemon=True)
        self.base = ""
        self.recorded: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    async def __aenter__(self) -> ServiceProcess:
        self._process.start()
        self.base = await asyncio.to_thread(self._ports.get, True, 60)
        return self

    async def _collect(self) -> dict[str, Any]:
        recorded: dict[str, Any] = await asyncio.to_thread(self._results.get, True, 120)
        recorded["taken"] = {
            call_id: np.frombuffer(raw, dtype=np.float64) for call_id, raw in recorded["taken"].items()
        }
        return recorded

    async def report(self) -> dict[str, Any]:
        self._commands.put("report")
        return await self._collect()

    async def __aexit__(self, *exc: object) -> None:
        self._commands.put("exit")
        self.recorded = await self._collect()
        await asyncio.to_thread(self._process.join, 10)


# ── figures ─────────────────────────────────────────────────────────────────────────────────────


def overhead_ms(
    turns: Iterable[tuple[str, float, float]],
    *,
    skip: Iterable[str] = (),
    since: float = 0.0,
    until: float = float("inf"),
) -> list[float]:
    """Per turn: the transcript that ended the caller's turn → the first ``playAudio`` written
    (the service's stamps), for turns whose transcript came in ``[since, until)``."""
    skipped = set(skip)
    return [
        (played - final) * 1000
        for call_id, final, played in turns
        if call_id not in skipped and since <= final < until
    ]


def reaction_ms(rec: CallRecording, *, since: float = 0.0, until: float = float("inf")) -> list[float]:
    """Per barge-in: the first voiced frame of the interruption leaving the fake Vobiz → the
    ``clearAudio`` arriving back (end to end, through both sockets), for barge-ins in
    ``[since, until)`` (monotonic seconds)."""
    clears = [e.t for e in rec.events if e.kind == "clear_audio"]
    out = []
    for event in rec.events:
        if event.kind != "barge_in" or not since <= rec.clock_origin + event.t < until:
            continue
        after = [c for c in clears if c >= event.t]
        if after:
            out.append((after[0] - event.t) * 1000)
    return out
