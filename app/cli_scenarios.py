"""``voice-agent test-scenarios [PATH]``: run scenario files and print a pass/fail table."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.cli_exit import app_or_exit, console, settings_or_exit


def run_scenarios(
    path: Annotated[Path, typer.Argument(help="A scenario file, or a folder of them.")] = Path("scenarios"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print each call's transcript.")] = False,
) -> None:
    """Run scenarios through the fake Vobiz on the embedded engines; exit 1 if any fails."""
    from app.scenarios import Outcome, ScenarioError, find_scenarios, load_scenario, run_scenario

    out = console()
    try:
        scenarios = [load_scenario(p) for p in find_scenarios(path)]
    except ScenarioError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not scenarios:
        typer.echo(f"error: no scenario files (*.yaml) in {path}", err=True)
        raise typer.Exit(2)
    settings = settings_or_exit()

    async def run_all() -> list[Outcome]:
        outcomes = []
        for scenario in scenarios:
            with out.status(f"{scenario.name}…", spinner="dots"):
                outcomes.append(await run_scenario(scenario, settings))
        return outcomes

    outcomes = app_or_exit(asyncio.run, run_all())
    table = Table("scenario", "persona", "result", "call", "run", "why", box=None)
    for o in outcomes:
        result = "[green]pass[/]" if o.passed else "[bold red]FAIL[/]"
        times = (f"{o.call_seconds:.1f} s", f"{o.seconds:.1f} s")
        table.add_row(o.scenario.name, o.scenario.persona, result, *times, "\n".join(o.failures))
    out.print(table)
    if verbose:
        from app.simulator.report import format_transcript

        for o in outcomes:
            if o.facts is not None:
                out.print(
                    f"\n[bold]{o.scenario.name}[/]\n{format_transcript(o.facts.recording)}", markup=True
                )
    failed = sum(not o.passed for o in outcomes)
    out.print(f"{len(outcomes) - failed} passed, {failed} failed")
    raise typer.Exit(1 if failed else 0)
