"""``voice-agent campaign run contacts.csv``: an outbound campaign from the terminal.

Credentials, the API base URL, PUBLIC_URL (where Vobiz reaches the service that carries the
calls) and the call records' database come from ``Settings()``, as for the service. Exit codes:
0 done, 1 the Vobiz API or the database failed (one ``error: …`` line), 2 a user's mistake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from app.cli_exit import settings_or_exit

if TYPE_CHECKING:
    from agents.personas import Persona
    from app.config import Settings

campaign_app = typer.Typer(help="Outbound campaigns: dial a contacts CSV.", no_args_is_help=True)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _persona(name: str, settings: Settings) -> Persona:
    from agents.catalog import ALL_TOOLS
    from agents.personas import check_personas

    personas, problems = check_personas(settings.prompts_dir, frozenset(ALL_TOOLS))
    found = personas.get(name)
    if found is None:
        for problem in problems:
            if f"/{name}.md:" in problem:
                _fail(problem.splitlines()[0], 2)
        valid = ", ".join(sorted(personas)) or "none"
        _fail(f"no persona {name!r} in {settings.prompts_dir}; valid: {valid}", 2)
    return found


@campaign_app.command("run")
def run(
    contacts: Annotated[Path, typer.Argument(help="CSV: a 'number' column, optional 'timezone', variables.")],
    persona: Annotated[str, typer.Option(help="The persona that speaks (PROMPTS_DIR).")],
    from_number: Annotated[str, typer.Option("--from", help="Your Vobiz number (caller ID), E.164.")],
    max_concurrent: Annotated[int, typer.Option(min=1, max=100, help="Calls live at once.")] = 1,
    results: Annotated[
        Path | None, typer.Option(help="Results CSV (default: <contacts>.results.csv).")
    ] = None,
    state: Annotated[Path | None, typer.Option(help="State file (default: <contacts>.state.json).")] = None,
    dnc: Annotated[Path | None, typer.Option(help="Do-not-call list: one number a line.")] = None,
    retries: Annotated[int, typer.Option(min=0, max=10, help="Redials after busy or no answer.")] = 2,
    retry_delay: Annotated[float, typer.Option(min=0, help="Seconds before a redial.")] = 300.0,
    hours: Annotated[str, typer.Option(help="Calling hours in the callee's time zone.")] = "09:00-20:00",
    poll_interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between looks at a live call.")
    ] = 2.0,
) -> None:
    """Dial every contact (at most --max-concurrent at once) and write the results CSV."""
    from agents.personas import placeholders_used
    from app.campaign.contacts import CallingHours, CampaignError, e164, read_contacts, read_dnc
    from app.campaign.sealed import SealError, campaign_key

    settings = settings_or_exit()
    try:
        calling_hours = CallingHours.parse(hours)
        speaker = _persona(persona, settings)
        contact_list = read_contacts(contacts, placeholders_used(speaker))
        do_not_call = read_dnc(dnc)
        caller_id = e164(from_number)
        if caller_id is None:
            raise CampaignError(f"--from {from_number!r} is not a phone number")
    except CampaignError as exc:
        _fail(str(exc), 2)
    if not settings.vobiz_auth_id or not settings.vobiz_auth_token.get_secret_value():
        _fail("missing Vobiz credentials: set VOBIZ_AUTH_ID and VOBIZ_AUTH_TOKEN (environment or .env)", 2)
    try:
        key = campaign_key(
            settings.stream_token_secret.get_secret_value(), settings.vobiz_auth_token.get_secret_value()
        )
    except SealError as exc:
        _fail(str(exc), 2)
    for line, _raw, why in contact_list.skipped:
        typer.echo(f"skipped: {contacts} line {line}: {why}", err=True)
    from app.campaign.runner import CampaignPlan

    plan = CampaignPlan(
        persona=speaker.name,
        from_number=caller_id,
        public_base=settings.public_base,
        key=key,
        max_concurrent=max_concurrent,
        retries=retries,
        retry_delay=retry_delay,
        hours=calling_hours,
        poll_interval=poll_interval,
    )
    results_path = results or contacts.with_suffix(".results.csv")
    state_path = state or contacts.with_suffix(".state.json")
    code = asyncio.run(_run(settings, plan, contact_list, do_not_call, results_path, state_path))
    raise typer.Exit(code)


async def _run(settings: Settings, plan: Any, contact_list: Any, dnc: frozenset[str],
               results: Path, state_path: Path) -> int:  # fmt: skip
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from sqlalchemy.exc import SQLAlchemyError

    from app.campaign.runner import Campaign, CampaignState, write_results
    from app.clock import SystemClock
    from app.records.store import CallStore, DatabaseURLError
    from app.telephony.rest import VobizClient, VobizError

    try:
        state = CampaignState(state_path)
        store = CallStore.from_settings(settings)
    except (ValueError, DatabaseURLError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2

    async def lookup(call_id: str) -> Mapping[str, Any] | None:
        try:
            record = await store.get(call_id)
        except (SQLAlchemyError, OSError):
            return None  # the results keep the call id; the disposition stays empty
        return None if record is None else record.to_json()

    with Progress(TextColumn("campaign"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task("calls", total=len(contact_list.contacts))

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        failed = ""
        try:
            async with VobizClient.from_settings(settings) as client:
                campaign = Campaign(plan, client, SystemClock(), state, lookup, progress)
                await campaign.run(contact_list.contacts, dnc)
        except* VobizError as group:
            failed = str(group.exceptions[0])
        finally:
            write_results(results, contact_list.contacts, state, contact_list.skipped)
            await store.aclose()
    if failed:
        typer.echo(f"error: {failed} (the state file keeps the progress: run again to go on)", err=True)
        return 1
    typer.echo(f"results: {results}")
    return 0
