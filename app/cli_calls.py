"""``voice-agent calls list|show ID``: the call records, read from the database directly.

The database comes from the settings (``DATABASE_URL``, else ``DATA_DIR/calls.sqlite3``), as the
service would use it; no API key is needed, only access to the database. Readable output, or
with ``--json`` one JSON document on stdout. Exit codes: 0 ok, 1 no such call or the database
cannot be read (one ``error: …`` line on stderr), 2 bad settings.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from app.cli_exit import settings_or_exit

if TYPE_CHECKING:  # the database stack loads only for these commands, not for every `voice-agent`
    from app.records.record import CallRecord, CallSummary
    from app.records.store import CallStore

calls_app = typer.Typer(help="Call records (DATABASE_URL): list, show.", no_args_is_help=True)

T = TypeVar("T")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _store() -> CallStore:
    from pydantic import ValidationError

    from app.records.store import CallStore, DatabaseURLError

    try:
        return CallStore.from_settings(settings_or_exit())
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        _fail(f"invalid settings: {problems}", 2)
    except DatabaseURLError as exc:
        _fail(str(exc), 2)


def _read(store: CallStore, action: Callable[[CallStore], Awaitable[T]]) -> T:
    from sqlalchemy.exc import SQLAlchemyError

    async def main() -> T:
        try:
            return await action(store)
        finally:
            await store.aclose()

    try:
        return asyncio.run(main())
    except (SQLAlchemyError, OSError) as exc:
        _fail(f"cannot read the call records at {store.where}: {type(exc).__name__}", 1)


def _when(unix: float | None) -> str:
    return "-" if unix is None else datetime.fromtimestamp(unix).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _number(digits: str) -> str:
    return f"+{digits}" if digits else "-"


@calls_app.command("list")
def list_calls(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many calls.")] = 20,
    before: Annotated[str | None, typer.Option(help="Older than this call (paging).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The most recent calls, newest first: when, how long, who, persona, how it ended."""
    from app.records.store import UnknownCall

    store = _store()
    if not store.exists():  # no file yet: say so rather than create an empty database
        page: list[CallSummary] = []
        next_before: str | None = None
    else:
        try:
            page, next_before = _read(store, lambda s: s.recent(limit, before))
        except UnknownCall:
            _fail(f"no call {before!r} (--before)", 1)
    if as_json:
        typer.echo(
            json.dumps(
                {"calls": [c.to_json() for c in page], "next_before": next_before},
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    if not page:
        typer.echo(f"no call records in {store.where}")
        return
    rows = [("started", "duration", "from", "to", "persona", "status", "end", "call id")]
    rows += [(_when(c.started_at), _seconds(c.duration), _number(c.caller), _number(c.called), c.persona,
              c.status, c.end_reason or "-", c.call_id) for c in page]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:  # plain aligned columns: never cut, whatever the terminal's width; easy to grep
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
        )
    if next_before is not None:
        typer.echo(f"more: voice-agent calls list --before {next_before}")


@calls_app.command("show")
def show(
    call_id: Annotated[str, typer.Argument(help="The call's id (CallUUID).")],
    as_json: JsonFlag = False,
) -> None:
    """One call: its details, the transcript with interruptions, tool calls and per-turn latency."""
    store = _store()
    record = _read(store, lambda s: s.get(call_id)) if store.exists() else None
    if record is None:
        _fail(f"no record of call {call_id!r} in {store.where}", 1)
    if as_json:
        typer.echo(json.dumps(record.to_json(), indent=2, ensure_ascii=False))
        return
    for line in _describe(record):
        typer.echo(line)


def _describe(r: CallRecord) -> list[str]:
    lines = [
        f"call {r.call_id}  ({r.status})",
        f"  from {_number(r.caller)} to {_number(r.called)}, persona {r.persona}, agent {r.agent or '-'}",
        f"  started {_when(r.started_at)}, ended {_when(r.ended_at)}, {_seconds(r.summary.duration)}",
        f"  end: {r.end_reason or '-'}" + (f" (Vobiz: {r.hangup_cause})" if r.hangup_cause else ""),
    ]
    if r.barge_ins is not None:
        lines.append(f"  barge-ins {r.barge_ins}, false interruptions {r.false_interruptions}, "
                     f"provider errors {r.provider_errors}")  # fmt: skip
    if r.preemptive_started:
        lines.append(f"  preemptive replies {r.preemptive_started}: {r.preemptive_committed} committed, "
                     f"{r.preemptive_wasted} wasted LLM calls")  # fmt: skip
    lines += _usage(r.usage)
    if r.transcript:
        lines.append("transcript:")
        for entry in r.transcript:
            cut = " (interrupted)" if entry["interrupted"] else ""
            lines.append(f"  {entry['t']:7.2f}s {entry['speaker'].capitalize()}: {entry['text']}{cut}")
    if r.tool_calls:
        lines.append("tool calls:")
        lines += [f"  {use['name']}({use['arguments']})" for use in r.tool_calls]
    if r.dtmf:
        lines.append("keys:")
        lines += [f"  {key['t']:7.2f}s {key['digits']} ({key['purpose']})" for key in r.dtmf]
    if r.latency:
        lines.append("latency (ms after the caller stopped):")
        lines += [f"  turn {turn['turn']}: {_stages(turn)}" for turn in r.latency]
    return lines


def _stages(turn: dict[str, Any]) -> str:
    cut = ", interrupted" if turn.get("interrupted") else ""
    end = turn.get("speech_end")
    if not isinstance(end, float | int):
        return "greeting or reprompt (no caller speech)" + cut
    parts = [
        f"{stage} {1000 * (value - end):.0f}"
        for stage, value in turn.items()
        if stage not in ("turn", "speech_end", "interrupted") and isinstance(value, float | int)
        and not isinstance(value, bool)
    ]  # fmt: skip
    return ", ".join(parts or ["no reply"]) + cut


def _usage(u: Mapping[str, Any]) -> list[str]:
    """The call's usage and estimated cost (README "Usage and cost"); nothing when not counted."""
    if not u:
        return []
    lines = [
        f"usage: estimated cost ${u.get('cost_usd', 0):.4f}",
        f"  speech-to-text {u.get('stt_seconds', 0):.1f} s"
        + "".join(
            f"; {name} {e['seconds']:.1f} s ${e['cost_usd']:.4f}" for name, e in u.get("stt", {}).items()
        ),
        f"  language model {u.get('llm_input_tokens', 0)} input + "
        f"{u.get('llm_output_tokens', 0)} output tokens, "
        f"{u.get('llm_requests_reported', 0)} of {u.get('llm_requests', 0)} requests reported, "
        f"{u.get('preemptive_wasted', 0)} wasted preemptive",
    ]
    lines += [f"    {model}: {e['input_tokens']} in, {e['output_tokens']} out, ${e['cost_usd']:.4f}"
              for model, e in u.get("llm", {}).items()]  # fmt: skip
    lines.append(f"  text-to-speech {u.get('tts_characters', 0)} characters")
    for name, e in u.get("tts", {}).items():
        voices = ", ".join(f"{voice} {count}" for voice, count in e["voices"].items())
        lines.append(f"    {name}: {e['characters']} ({voices}), ${e['cost_usd']:.4f}")
    if u.get("unpriced"):
        lines.append(f"  no price for {', '.join(u['unpriced'])} (set PRICES): left out of the cost")
    return lines
