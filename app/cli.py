"""The ``voice-agent`` command."""

from __future__ import annotations

import typer

from app.cli_rest import call_app, streams_app

cli = typer.Typer(help="Full-duplex AI phone agent for Vobiz.", no_args_is_help=True)
cli.add_typer(streams_app, name="streams")
cli.add_typer(call_app, name="call")


@cli.command()
def serve(
    host: str = typer.Option("0.0.0.0", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
) -> None:
    """Run the service (answer webhook + media WebSocket)."""
    import uvicorn

    from app.config import Settings
    from app.logs import configure_logging
    from app.main import create_app

    settings = Settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        ws_max_size=settings.max_message_bytes,
        access_log=False,
        log_level=settings.log_level.lower(),
    )


def main() -> None:
    cli()
