"""How every ``voice-agent`` command turns a configuration mistake into one line and exit 2."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer

T = TypeVar("T")


def app_or_exit(run: Callable[..., T], *args: object) -> T:
    """``run(*args)``; a configuration the service cannot work with is one line and exit 2."""
    from app.main import ConfigurationError

    try:
        return run(*args)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
