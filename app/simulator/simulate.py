"""``voice-agent simulate``: one whole phone call through the fake Vobiz, on this machine.

Without ``--url`` the app runs in-process under uvicorn on 127.0.0.1 (real HTTP, a real
WebSocket, real-time pacing); ``--virtual`` instead runs it on the virtual clock with no
sockets (a minute-long call in about a second). With ``--url`` the fake Vobiz dials a
service that is already running (set VOBIZ_AUTH_TOKEN alike on both sides for signatures).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console

from app.clock import FakeClock, SystemClock
from app.config import Settings
from app.simulator.audio_prep import render_caller_audio
from app.simulator.caller import PCM, Step, parse_script
from app.simulator.connect import AsgiConnector, NetworkConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import CallRecording, TimelineEvent, TranscriptLine
from app.simulator.vobiz_rest import create_fake_rest_app
from app.simulator.vobiz_rest_state import FakeVobizState

if TYPE_CHECKING:
    from app.pipeline.conversation import Conversation, TranscriptEntry

DEMO_SCRIPT = """\
wait 10
say Hello, what time do you open tomorrow?
wait
say Thanks, that is all. Goodbye.
wait
hangup
"""

# the in-process app and the fake Vobiz share these (webhook signatures, REST auth)
SIM_AUTH_ID = "MA_SIMULATOR00000001"
SIM_AUTH_TOKEN = "simulator-auth-token-0000"


@dataclass(frozen=True, slots=True)
class SimulateOptions:
    script: str = DEMO_SCRIPT
    url: str | None = None  # base URL of a running service; None = in-process
    virtual: bool = False
    out: Path = Path("sim-out")
    persona: str | None = None
    from_number: str = "14155550100"
    to_number: str = "14155550199"


def describe(event: TimelineEvent) -> str | None:
    """One transcript line for the live view, or None for events not worth a line."""
    d = event.detail
    stamp = f"[dim]{event.t:7.2f}s[/dim]"
    match event.kind:
        case "caller_speech_start":
            return f"{stamp} [bold cyan]Caller:[/] {d.get('text', '')}"
        case "agent_audio_start":
            return f"{stamp} [bold yellow]Agent[/] speaking…"
        case "agent_heard":
            return f"{stamp} [dim]  (agent heard: {d.get('text', '')})[/dim]"
        case "agent_said":
            mark = " [red][interrupted][/]" if d.get("interrupted") else ""
            return f"{stamp} [bold yellow]Agent:[/] {d.get('text', '')}{mark}"
        case "barge_in":
            return f"{stamp} [bold red]barge-in[/]"
        case "dtmf":  # the script's own key, shown like its words (the service never logs keys)
            return f"{stamp} [bold cyan]Caller pressed[/] {d.get('digit', '')}"
        case "clear_audio":
            return f"{stamp} [red]clearAudio[/] ({d.get('dropped_s', 0):.2f} s dropped)"
        case "protocol_error":
            return f"{stamp} [bold red]protocol error[/] {d.get('rule')}: {d.get('detail')}"
        case "script_note":
            return f"{stamp} [dim]({d.get('note', '')})[/dim]"
        case "hangup":
            return f"{stamp} hang-up by {d.get('by')} ({d.get('reason')})"
        case "stop":
            return f"{stamp} the agent ended the stream"
        case _:
            return None


def with_settings(settings: Settings, **updates: object) -> Settings:
    """A validated copy of ``settings`` with some fields replaced."""
    return Settings(_env_file=None, **{**settings.model_dump(), **updates})


def _bind() -> tuple[socket.socket, str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextlib.asynccontextmanager
async def _serving(apps: list[tuple[Any, socket.socket]]) -> AsyncIterator[None]:
    """Serve ASGI apps under uvicorn on their bound sockets, on this loop, while inside."""
    import uvicorn

    from app.api.ws_protocol import MediaWebSocketProtocol

    servers = [
        (
            uvicorn.Server(
                uvicorn.Config(
                    app, ws=MediaWebSocketProtocol, log_level="warning", access_log=False, lifespan="on"
                )
            ),
            sock,
        )
        for app, sock in apps
    ]
    try:
        async with asyncio.TaskGroup() as tg:
            for server, sock in servers:
                tg.create_task(server.serve(sockets=[sock]), name="simulate-server")
            while not all(server.started for server, _ in servers):  # noqa: ASYNC110 - a flag, no event
                await asyncio.sleep(0.01)
            try:
                yield
            finally:
                for server, _ in servers:
                    server.should_exit = True
    finally:
        for _, sock in apps:
            sock.close()


class AgentView:
    """Observes the in-process agent: what it said (as heard: cut at barge-in) and what its
    speech-to-text heard of the caller. ``origin`` is the clock's reading at the dial, so its
    lines share the recording's time axis; ``listener`` sees each line as a timeline event."""

    def __init__(self, listener: Callable[[TimelineEvent], None] | None = None) -> None:
        self.lines: list[tuple[str, TranscriptLine]] = []  # (call id, line)
        self.ended: list[Conversation] = []  # each call's agent, once its call is over
        self.origin = 0.0
        self._listener = listener

    def on_transcript(self, conversation: Conversation, entry: TranscriptEntry) -> None:
        agent = entry.speaker == "agent"
        t = round(entry.t - self.origin, 6)
        line = TranscriptLine(t, "agent" if agent else "caller", entry.text, entry.interrupted)
        self.lines.append((conversation.call_id, line))
        if self._listener is not None:
            detail = {"text": line.text, "interrupted": line.interrupted}
            self._listener(TimelineEvent(t, "agent_said" if agent else "agent_heard", detail))

    def on_end(self, conversation: Conversation) -> None:
        self.ended.append(conversation)

    def add_to(self, recording: CallRecording) -> CallRecording:
        """Put the lines of ``recording``'s call into it, re-based on its exact clock origin."""
        shift = self.origin - recording.clock_origin
        for call_id, line in self.lines:
            if call_id != recording.call_id:
                continue
            line = dataclasses.replace(line, t=round(line.t + shift, 6))
            (recording.transcript if line.speaker == "agent" else recording.heard).append(line)
        return recording


async def run_simulation(
    options: SimulateOptions,
    settings: Settings,
    listener: Callable[[TimelineEvent], None],
    *,
    view: AgentView | None = None,
    steps: list[Step] | None = None,
) -> CallRecording:
    """Run the call. In-process, a fake Vobiz REST API is served too, and the app points at it;
    ``view`` (default: a new one) observes its agent. ``steps``: the caller's, instead of parsing
    ``options.script``."""
    from app.main import create_app

    steps = steps if steps is not None else parse_script(options.script)
    query = f"?persona={options.persona}" if options.persona else ""

    async def dial(vobiz: FakeVobiz, base: str, audio: dict[int, PCM]) -> CallRecording:
        try:
            return await vobiz.dial(
                f"{base}/vobiz/answer{query}",
                steps,
                audio,
                from_number=options.from_number,
                to_number=options.to_number,
                listener=listener,
                hangup_url=f"{base}/vobiz/hangup",
            )
        finally:
            await vobiz.connector.aclose()

    if options.url:
        auth = settings.vobiz_auth_token.get_secret_value() or SIM_AUTH_TOKEN
        vobiz = FakeVobiz(NetworkConnector(), SystemClock(), PlatformConfig(auth_token=auth))
        audio = await asyncio.to_thread(render_caller_audio, steps, 16000, None)
        return await dial(vobiz, options.url.rstrip("/"), audio)

    view = view if view is not None else AgentView(listener)
    state = FakeVobizState()
    rest_app = create_fake_rest_app(SIM_AUTH_ID, SIM_AUTH_TOKEN, state)
    local = with_settings(
        settings,
        vobiz_auth_id=SIM_AUTH_ID,
        vobiz_auth_token=SIM_AUTH_TOKEN,
        signature_mode="enforce",
        stream_token_secret=settings.stream_token_secret.get_secret_value() or secrets.token_urlsafe(32),
    )
    config = PlatformConfig(auth_id=SIM_AUTH_ID, auth_token=SIM_AUTH_TOKEN)
    if options.virtual:
        clock = FakeClock()
        rest_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=rest_app), base_url="http://vobiz")
        app = create_app(
            with_settings(local, public_url="http://simulator", vobiz_api_base_url="http://vobiz/api/v1"),
            clock=clock,
            vobiz_http=rest_http,
            observer=view,
            voice_variation=False,  # a virtual run repeats exactly: no random prosody
        )
        # the caller's voice after the app: a missing engine is named the way `serve` names it
        audio = await asyncio.to_thread(render_caller_audio, steps, 16000, None)
        vobiz = FakeVobiz(AsgiConnector(app), clock, config)
        vobiz.attach_rest(state)
        view.origin = clock.now()
        async with rest_http:
            recording = await clock.run(dial(vobiz, "http://simulator", audio))
        return view.add_to(recording)

    app_sock, base = _bind()
    rest_sock, rest_base = _bind()
    app = create_app(
        with_settings(local, public_url=base, vobiz_api_base_url=f"{rest_base}/api/v1"),
        observer=view,
    )
    audio = await asyncio.to_thread(render_caller_audio, steps, 16000, None)
    vobiz = FakeVobiz(NetworkConnector(), SystemClock(), config)
    vobiz.attach_rest(state)
    async with _serving([(app, app_sock), (rest_app, rest_sock)]):
        view.origin = SystemClock().now()
        recording = await dial(vobiz, base, audio)
    return view.add_to(recording)


class _ConsoleLog(logging.Handler):
    """The service's start-up lines (which engines, models loading) as dim console lines."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.INFO)
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        self._console.print(f"[dim]{record.getMessage()}[/dim]", highlight=False)


def simulate_command(options: SimulateOptions, settings: Settings) -> int:
    """Run the call with a live transcript, write the output files; exit code 1 on any protocol error."""
    from app.cli_exit import console as cli_console
    from app.simulator.report import summarize, write_outputs

    console = cli_console()
    progress = _ConsoleLog(console)
    logging.getLogger("app.providers").addHandler(progress)
    logging.getLogger("app.providers").setLevel(logging.INFO)

    agent_announced = False
    doing = {"caller_speech_start": "caller speaking", "agent_audio_start": "agent speaking",
             "caller_speech_end": "listening", "agent_audio_end": "listening"}  # fmt: skip
    status = console.status("dialling…", spinner="dots")

    def listener(event: TimelineEvent) -> None:
        nonlocal agent_announced
        if event.kind in doing:  # the progress line: call time and who is talking
            status.update(f"call in progress: {event.t:5.1f} s, {doing[event.kind]}…")
        if event.kind == "agent_audio_start":
            # one line per agent turn, not per pause between words; in-process, its words show instead
            if agent_announced or not options.url:
                return
            agent_announced = True
        elif event.kind in ("caller_speech_start", "barge_in"):
            agent_announced = False
        line = describe(event)
        if line is not None:
            console.print(line)

    target = options.url or ("the app in-process, virtual clock" if options.virtual else "the app in-process")
    console.print(f"[bold]Simulated call[/] → {target}")
    try:
        with status:
            recording = asyncio.run(run_simulation(options, settings, listener))
    except httpx.ConnectError:
        if not options.url:
            raise
        from app.main import ConfigurationError

        raise ConfigurationError(
            f"nothing answers at {options.url}; is `voice-agent serve` running?"
        ) from None
    finally:
        logging.getLogger("app.providers").removeHandler(progress)
    files = write_outputs(recording, options.out)
    summary = summarize(recording)
    console.print(
        f"\n[bold]{'OK' if summary['ok'] else 'FAILED'}[/]: {recording.duration:.1f} s, "
        f"{len(recording.turns)} turn(s), {len(recording.protocol_errors)} protocol error(s)"
    )
    for turn in recording.turns:
        console.print(
            f"  turn {turn.turn}: agent answered {turn.latency * 1000:.0f} ms after the caller stopped"
        )
    accuracy = summary["word_accuracy"]
    if accuracy is not None:
        console.print(
            f"  word accuracy of the agent's speech recognition: {accuracy['accuracy']:.0%} "
            f"({accuracy['errors']} error(s) in {accuracy['words']} word(s) the caller said)"
        )
    for name, path in files.items():
        console.print(f"  {name:<16} {path}")
    return 0 if not recording.protocol_errors else 1
