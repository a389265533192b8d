"""What every ``voice-agent`` command shares: a user's mistake is one line and exit 2, and output
that is not a terminal is not wrapped."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic
import typer
from rich.console import Console

if TYPE_CHECKING:
    from app.config import Settings

T = TypeVar("T")

# errors whose input is one of a fixed set of words: the value can be shown (never a secret)
_CHOICE_ERRORS = frozenset({"literal_error", "enum"})


def app_or_exit(run: Callable[..., T], *args: object) -> T:
    """``run(*args)``; a configuration the service cannot work with is one line and exit 2."""
    from app.main import ConfigurationError
    from app.providers.errors import MissingEngineError

    try:
        return run(*args)
    except (ConfigurationError, MissingEngineError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def settings_or_exit() -> Settings:
    """The settings from the environment and ``.env``; a bad one is one line and exit 2."""
    from app.config import Settings

    try:
        return Settings()
    except pydantic.ValidationError as exc:
        typer.echo(f"error: {describe_settings_error(exc)}", err=True)
        raise typer.Exit(2) from None


def describe_settings_error(exc: pydantic.ValidationError) -> str:
    """One line: each bad setting by its environment name, what was wrong, what is allowed.

    A value is repeated only where the allowed values are a fixed list (a setting such as a URL
    or a key may hold a secret, so its value is never echoed)."""
    return "; ".join(_describe(error) for error in exc.errors(include_url=False))


def _describe(error: Any) -> str:
    name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
    if error["type"] in _CHOICE_ERRORS:
        expected = error.get("ctx", {}).get("expected", "")
        return f"{name}={error['input']!s} is not allowed; use one of: {expected}"
    return f"{name}: {error['msg']}"


def console(*, stderr: bool = False, highlight: bool = True) -> Console:
    """A rich console; when its output is not a terminal (a pipe, a file, a log collector) lines
    are never hard-wrapped, so a long transcript line or table row stays one line."""
    out = Console(stderr=stderr, highlight=highlight)
    if out.is_terminal:
        return out
    return Console(stderr=stderr, highlight=highlight, soft_wrap=True, width=100_000)
