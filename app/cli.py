"""The ``voice-agent`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli_calls import calls_app
from app.cli_exit import app_or_exit
from app.cli_personas import personas_app
from app.cli_rest import call_app, streams_app
from app.cli_scenarios import run_scenarios

cli = typer.Typer(help="Full-duplex AI phone agent for Vobiz.", no_args_is_help=True)
cli.add_typer(streams_app, name="streams")
cli.add_typer(call_app, name="call")
cli.add_typer(personas_app, name="personas")
cli.add_typer(calls_app, name="calls")
cli.command("test-scenarios")(run_scenarios)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Run the service (answer webhook + media WebSocket)."""
    import uvicorn

    from app.api.ws_protocol import MediaWebSocketProtocol
    from app.config import Settings
    from app.logs import configure_logging
    from app.main import create_app

    settings = Settings()
    # uvicorn's own lines (start-up, errors) go through the same handler, in the same format
    configure_logging(settings.log_level, settings.log_format, loggers=("app", "uvicorn"))
    app = app_or_exit(create_app, settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        ws=MediaWebSocketProtocol,  # uvicorn's, without a pause and resume of reading per message
        ws_max_size=settings.max_message_bytes,
        access_log=False,
        log_config=None,
        log_level=settings.log_level.lower(),
    )


@cli.command()
def simulate(
    script: Annotated[Path | None, typer.Option(help="Caller script file (see README).")] = None,
    say: Annotated[list[str] | None, typer.Option(help="A caller line (repeatable).")] = None,
    url: Annotated[str | None, typer.Option(help="Dial a running service, not one in-process.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the call's output files.")] = Path("sim-out"),
    persona: Annotated[str | None, typer.Option(help="Persona to ask for on the answer URL.")] = None,
    virtual: Annotated[bool, typer.Option(help="Run on the virtual clock (in-process only).")] = False,
) -> None:
    """Simulate a whole phone call through a fake Vobiz and write what happened to --out."""
    from app.config import Settings
    from app.simulator.caller import ScriptError, parse_script
    from app.simulator.simulate import DEMO_SCRIPT, SimulateOptions, simulate_command

    if script is not None:
        text = script.read_text()
    elif say:
        text = "wait 10\n" + "".join(f"say {line}\nwait\n" for line in say) + "hangup\n"
    else:
        text = DEMO_SCRIPT
    try:
        parse_script(text)
    except ScriptError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if url and virtual:
        typer.echo("error: --virtual runs the app in-process; it cannot be combined with --url", err=True)
        raise typer.Exit(2)
    options = SimulateOptions(script=text, url=url, virtual=virtual, out=out, persona=persona)
    raise typer.Exit(app_or_exit(simulate_command, options, Settings()))


def main() -> None:
    cli()
