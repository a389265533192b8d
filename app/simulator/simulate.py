"""``voice-agent simulate``: one whole phone call through the fake Vobiz, on this machine.

Without ``--url`` the app runs in-process under uvicorn on 127.0.0.1 (real HTTP, a real
WebSocket, real-time pacing); ``--virtual`` instead runs it on the virtual clock with no
sockets (a minute-long call in about a second). With ``--url`` the fake Vobiz dials a
service that is already running (set VOBIZ_AUTH_TOKEN alike on both sides for signatures).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from app.clock import FakeClock, SystemClock
from app.config import Settings
from app.simulator.audio_prep import render_caller_audio
from app.simulator.caller import Step, parse_script
from app.simulator.connect import AsgiConnector, Connector, NetworkConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import CallRecording, TimelineEvent

DEMO_SCRIPT = """\
wait 10
say Hello, what time do you open tomorrow?
wait
say Thanks, that is all. Goodbye.
wait
hangup
"""

SIM_AUTH_TOKEN = "simulator-auth-token-0000"  # signs webhooks when the app runs in-process


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
        case "barge_in":
            return f"{stamp} [bold red]barge-in[/]"
        case "clear_audio":
            return f"{stamp} [red]clearAudio[/] ({d.get('dropped_s', 0):.2f} s dropped)"
        case "protocol_error":
            return f"{stamp} [bold red]protocol error[/] {d.get('rule')}: {d.get('detail')}"
        case "hangup":
            return f"{stamp} hang-up by {d.get('by')} ({d.get('reason')})"
        case "stop":
            return f"{stamp} the agent ended the stream"
        case _:
            return None


def with_settings(settings: Settings, **updates: object) -> Settings:
    """A validated copy of ``settings`` with some fields replaced."""
    return Settings(_env_file=None, **{**settings.model_dump(), **updates})


@contextlib.asynccontextmanager
async def _in_process_server(settings: Settings) -> AsyncIterator[str]:
    """Serve the app under uvicorn on 127.0.0.1 (an ephemeral port) for the call."""
    import uvicorn

    from app.main import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(with_settings(settings, public_url=base))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    with sock:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(server.serve(sockets=[sock]), name="simulate-server")
            while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
                await asyncio.sleep(0.01)
            try:
                yield base
            finally:
                server.should_exit = True


async def run_simulation(
    options: SimulateOptions, settings: Settings, listener: Callable[[TimelineEvent], None]
) -> CallRecording:
    steps: list[Step] = parse_script(options.script)
    audio = await asyncio.to_thread(render_caller_audio, steps, 16000, None)
    query = f"?persona={options.persona}" if options.persona else ""
    token = settings.vobiz_auth_token.get_secret_value()

    async def dial(
        connector: Connector, base: str, clock: SystemClock | FakeClock, auth: str
    ) -> CallRecording:
        vobiz = FakeVobiz(
            connector, clock, PlatformConfig(auth_token=auth, hangup_url=f"{base}/vobiz/hangup")
        )
        try:
            return await vobiz.dial(
                f"{base}/vobiz/answer{query}",
                steps,
                audio,
                from_number=options.from_number,
                to_number=options.to_number,
                listener=listener,
            )
        finally:
            await connector.aclose()

    if options.url:
        return await dial(NetworkConnector(), options.url.rstrip("/"), SystemClock(), token or SIM_AUTH_TOKEN)
    local = with_settings(settings, vobiz_auth_token=SIM_AUTH_TOKEN, signature_mode="enforce")
    if options.virtual:
        from app.main import create_app

        clock = FakeClock()
        app = create_app(with_settings(local, public_url="http://simulator"), clock=clock)
        return await clock.run(dial(AsgiConnector(app), "http://simulator", clock, SIM_AUTH_TOKEN))
    async with _in_process_server(local) as base:
        return await dial(NetworkConnector(), base, SystemClock(), SIM_AUTH_TOKEN)


def simulate_command(options: SimulateOptions, settings: Settings) -> int:
    """Run the call with a live transcript, write the output files; exit code 1 on any protocol error."""
    from app.simulator.report import summarize, write_outputs

    console = Console()

    agent_announced = False

    def listener(event: TimelineEvent) -> None:
        nonlocal agent_announced
        if event.kind == "agent_audio_start":
            if agent_announced:
                return  # one line per agent turn, not per pause between words
            agent_announced = True
        elif event.kind in ("caller_speech_start", "barge_in"):
            agent_announced = False
        line = describe(event)
        if line is not None:
            console.print(line)

    target = options.url or ("the app in-process, virtual clock" if options.virtual else "the app in-process")
    console.print(f"[bold]Simulated call[/] → {target}")
    with console.status("call in progress…", spinner="dots"):
        recording = asyncio.run(run_simulation(options, settings, listener))
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
    for name, path in files.items():
        console.print(f"  {name:<16} {path}")
    return 0 if not recording.protocol_errors else 1
