"""The ``voice-agent`` command."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli_calls import calls_app
from app.cli_campaign import campaign_app
from app.cli_exit import app_or_exit, settings_or_exit
from app.cli_personas import personas_app
from app.cli_rest import call_app, streams_app
from app.cli_scenarios import run_scenarios

if TYPE_CHECKING:
    from app.config import Settings

cli = typer.Typer(help="Full-duplex AI phone agent for Vobiz.", no_args_is_help=True)
cli.add_typer(streams_app, name="streams")
cli.add_typer(call_app, name="call")
cli.add_typer(personas_app, name="personas")
cli.add_typer(calls_app, name="calls")
cli.add_typer(campaign_app, name="campaign")
cli.command("test-scenarios")(run_scenarios)


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import version

        typer.echo(f"voice-agent {version('vobiz-voice-agent')}")
        raise typer.Exit()


@cli.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Full-duplex AI phone agent for Vobiz."""


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes on the one port (default: one per core with REDIS_URL, else 1). "
            "More than one needs REDIS_URL.",
        ),
    ] = None,
) -> None:
    """Run the service (answer webhook + media WebSocket). SIGTERM drains it (see README)."""
    from app.logs import configure_logging

    settings = settings_or_exit()
    if "public_url" not in settings.model_fields_set:
        # without PUBLIC_URL the service advertises where it listens (the workers read it too)
        os.environ["PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        settings = settings_or_exit()
    # uvicorn's own lines (start-up, errors) go through the same handler, in the same format
    configure_logging(settings.log_level, settings.log_format, loggers=("app", "uvicorn"))
    shared = bool(settings.redis_url.get_secret_value())
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if shared else 1
    elif workers > 1 and not shared:
        typer.echo(
            f"error: --workers {workers} needs REDIS_URL (the workers share calls through Redis); "
            "set REDIS_URL or run one worker",
            err=True,
        )
        raise typer.Exit(2)
    if workers == 1:
        from app.main import create_app
        from app.server import serve_app

        with _listen(host, port) as sock:
            serve_app(app_or_exit(create_app, settings), sockets=[sock])
        return
    raise typer.Exit(_serve_workers(settings, host, port, workers))


@cli.command()
def playground(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1.")] = 8000,
) -> None:
    """Talk to the agent from a browser on this machine: serves /playground on 127.0.0.1."""
    from app.logs import configure_logging
    from app.main import create_app
    from app.server import serve_app

    os.environ["PLAYGROUND"] = "on"
    settings = settings_or_exit()
    if "public_url" not in settings.model_fields_set:
        os.environ["PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    if not settings.vobiz_auth_token.get_secret_value():
        # no Vobiz account: nothing signs webhooks, and the service listens on loopback only
        os.environ["SIGNATURE_MODE"] = "off"
    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_format, loggers=("app", "uvicorn"))
    with _listen("127.0.0.1", port) as sock:
        app = app_or_exit(create_app, settings)
        url = f"http://127.0.0.1:{port}/playground"
        typer.echo(f"playground: open {url} in a browser on this machine (Ctrl+C stops)")
        serve_app(app, sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything starts; a port in use is one line and exit 2."""
    from app.supervisor import bind_socket

    try:
        return bind_socket(host, port)
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None


def _serve_workers(settings: Settings, host: str, port: int, workers: int) -> int:
    """``workers`` processes on ``host:port``; the supervisor's exit code."""
    import asyncio

    from sqlalchemy.exc import SQLAlchemyError

    from app.records.store import DatabaseURLError
    from app.supervisor import Supervisor, migrate_once, share_token_secret

    try:
        asyncio.run(migrate_once(settings))  # once, before any worker starts
    except DatabaseURLError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except (OSError, SQLAlchemyError) as exc:  # the database is down or refuses: say so, in a line
        typer.echo(f"error: the call records' database cannot be migrated ({type(exc).__name__})", err=True)
        return 1
    share_token_secret(settings, workers)
    with _listen(host, port) as sock:
        return Supervisor(sock, workers).run()


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
    from app.simulator.caller import ScriptError, parse_script
    from app.simulator.simulate import DEMO_SCRIPT, SimulateOptions, simulate_command

    if script is not None:
        try:
            text = script.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a text file"
            typer.echo(f"error: cannot read the caller script {script}: {reason}", err=True)
            raise typer.Exit(2) from None
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
    settings = settings_or_exit()
    if persona is not None and url is None:  # in-process, the personas are ours to check
        _check_persona(persona, settings)
    options = SimulateOptions(script=text, url=url, virtual=virtual, out=out, persona=persona)
    raise typer.Exit(app_or_exit(simulate_command, options, settings))


def _check_persona(name: str, settings: Settings) -> None:
    """One line and exit 2 unless PROMPTS_DIR has a persona ``name`` (a missing folder is left to
    the app's own check, which says so)."""
    folder = settings.prompts_dir
    names = sorted(path.stem for path in folder.glob("*.md")) if folder.is_dir() else []
    if names and name not in names:
        typer.echo(f"error: no persona {name!r} in {folder}; valid: {', '.join(names)}", err=True)
        raise typer.Exit(2)


def main() -> None:
    cli()
