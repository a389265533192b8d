"""``voice-agent personas list|show NAME|check [DIR]``: what the service will use."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from app.cli_exit import console, settings_or_exit

if TYPE_CHECKING:
    from agents.personas import Persona

personas_app = typer.Typer(help="Persona files (prompts/<name>.md): list, show, check.", no_args_is_help=True)


def _folder(folder: Path | None) -> Path:

    return folder if folder is not None else settings_or_exit().prompts_dir


def _known_tools() -> frozenset[str]:
    from agents.catalog import ALL_TOOLS

    return frozenset(ALL_TOOLS)


DirOption = Annotated[Path | None, typer.Option("--dir", help="Persona folder (default: PROMPTS_DIR).")]
DirArgument = Annotated[Path | None, typer.Argument(help="Persona folder (default: PROMPTS_DIR).")]


def _shutdown_warnings(persona: Persona) -> list[str]:
    """A line for each model the persona relies on that has an announced shutdown date."""
    from app.providers.shutdowns import shutdown_of

    used = [("llm_model", persona.settings.llm_model)]
    if persona.settings.tts_provider == "openai":
        used.append(("tts_provider (OPENAI_TTS_MODEL)", settings_or_exit().openai_tts_model))
    out = []
    for field, model in used:
        found = shutdown_of(model) if model else None
        if found is not None:
            out.append(
                f"{persona.path}: {field}: {model!r} shuts down on {found.on.isoformat()}; "
                f"the provider recommends {found.replacement}"
            )
    return out


@personas_app.command("check")
def check(
    folder: Annotated[Path | None, typer.Argument(help="Persona folder (default: PROMPTS_DIR).")] = None,
) -> None:
    """Check every persona file; each problem names the file, the field and a hint. Exit 1 on any."""
    from agents.personas import check_personas

    where = _folder(folder)
    personas, problems = check_personas(where, _known_tools())
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    for persona in personas.values():
        for warning in _shutdown_warnings(persona):
            typer.echo(f"warning: {warning}", err=True)
    if not personas and not problems:
        typer.echo(f"error: {where}: no persona files (*.md)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{len(personas)} persona(s) OK, {len(problems)} with problems, in {where}")
    raise typer.Exit(1 if problems else 0)


@personas_app.command("list")
def list_personas(folder: DirOption = None) -> None:
    """One line per persona: name, display name, language, voice, tools."""
    from agents.personas import check_personas

    where = _folder(folder)
    personas, problems = check_personas(where, _known_tools())
    default = settings_or_exit().default_persona
    table = Table("name", "display name", "language", "voice", "tools", box=None)
    for name, persona in personas.items():
        s = persona.settings
        voice = s.tts_provider + (f" ({s.tts_voice})" if s.tts_voice else "")
        table.add_row(name + (" (default)" if name == default else ""), s.display_name, s.language, voice,
                      ", ".join(s.tools))  # fmt: skip
    console().print(table)
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    raise typer.Exit(1 if problems else 0)


@personas_app.command("show")
def show(name: str, folder: DirOption = None) -> None:
    """Every setting of one persona (defaults filled in) and its system prompt."""
    import yaml

    from agents.personas import PersonaError, is_valid_name, load_persona

    where = _folder(folder)
    if not is_valid_name(name):
        typer.echo(f"error: {name!r} is not a persona name (lower-case letters, digits, '-', '_')", err=True)
        raise typer.Exit(2)
    path = where / f"{name}.md"
    if not path.is_file():
        typer.echo(f"error: no persona {name!r} in {where}", err=True)
        raise typer.Exit(1)
    try:
        persona = load_persona(path, _known_tools())
    except PersonaError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    settings = persona.settings.model_dump(mode="json")
    typer.echo(f"# {path}")
    typer.echo(yaml.safe_dump(settings, sort_keys=False, allow_unicode=True).rstrip())
    typer.echo("---")
    typer.echo(persona.prompt)
