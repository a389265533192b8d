"""`voice-agent streams …` and `voice-agent call …`: the Vobiz REST API from the terminal.

Credentials and the API base URL come from ``Settings()`` (environment / ``.env``). Every
command prints readable rich output, or with ``--json`` one JSON document on stdout only.
Exit codes: 0 ok, 1 the API refused or could not be reached (one ``error: …`` line on
stderr), 2 usage or missing credentials.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.cli_exit import console, settings_or_exit
from app.telephony.rest import Stream, VobizClient, VobizError, render_extra_headers

streams_app = typer.Typer(help="Vobiz Audio Streams API.", no_args_is_help=True)
call_app = typer.Typer(help="Vobiz call control.", no_args_is_help=True)

T = TypeVar("T")


class AudioTrack(StrEnum):
    inbound = "inbound"
    outbound = "outbound"
    both = "both"


class Legs(StrEnum):
    aleg = "aleg"
    bleg = "bleg"
    both = "both"


class Method(StrEnum):
    GET = "GET"
    POST = "POST"


JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
CallUuid = Annotated[str, typer.Argument(help="The call's CallUUID.")]
StreamId = Annotated[str, typer.Argument(help="The stream id returned by start/list.")]


# ── plumbing ──


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _run(action: Callable[[VobizClient], Awaitable[T]]) -> T:
    """Run ``action`` with a client built from the settings; map failures to exit codes."""
    settings = settings_or_exit()
    if not settings.vobiz_auth_id or not settings.vobiz_auth_token.get_secret_value():
        _fail("missing Vobiz credentials: set VOBIZ_AUTH_ID and VOBIZ_AUTH_TOKEN (environment or .env)", 2)

    async def main() -> T:
        async with VobizClient.from_settings(settings) as client:
            return await action(client)

    try:
        return asyncio.run(main())
    except VobizError as exc:
        _fail(str(exc), 1)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "raw"
        }
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(_jsonable(data), indent=2))


def _console() -> Console:
    return console(highlight=False)


def _say(message: str) -> None:
    _console().print(message)


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


def _parse_headers(pairs: list[str] | None) -> dict[str, str]:
    """``--extra-header Name:Value`` options (the REST start's documented form) as a mapping."""
    headers: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition(":")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not header:value", param_hint="--extra-header")
        headers[key.strip()] = value.strip()
    try:
        render_extra_headers(headers)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--extra-header") from None
    return headers


# ── streams ──


@streams_app.command("start")
def streams_start(
    call_uuid: CallUuid,
    service_url: Annotated[str, typer.Argument(help="ws:// or wss:// URL that receives the audio.")],
    bidirectional: Annotated[bool, typer.Option(help="Allow playAudio back into the call.")] = False,
    audio_track: Annotated[AudioTrack, typer.Option(help="Which audio to fork.")] = AudioTrack.inbound,
    content_type: Annotated[
        str, typer.Option(help="audio/x-l16;rate=8000|16000|24000 or audio/x-mulaw;rate=8000")
    ] = "audio/x-l16;rate=8000",
    timeout: Annotated[
        int | None, typer.Option(min=1, help="stream_timeout in seconds (server default 86400).")
    ] = None,
    status_callback_url: Annotated[str | None, typer.Option(help="URL for stream status events.")] = None,
    status_callback_method: Annotated[Method, typer.Option(help="Method for status events.")] = Method.POST,
    extra_header: Annotated[list[str] | None, typer.Option(help="Name:Value, repeatable.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start an audio stream on a live call."""
    headers = _parse_headers(extra_header)
    started = _run(
        lambda c: c.start_stream(
            call_uuid,
            service_url,
            bidirectional=bidirectional,
            audio_track=audio_track.value,
            content_type=content_type,
            stream_timeout=timeout,
            status_callback_url=status_callback_url,
            status_callback_method=status_callback_method.value,
            extra_headers=headers or None,
        )
    )
    if as_json:
        _print_json(started)
    else:
        _say(f"[green]{escape(started.message or 'Stream started')}[/]: {escape(str(started.stream_id))}")


@streams_app.command("get")
def streams_get(call_uuid: CallUuid, stream_id: StreamId, as_json: JsonFlag = False) -> None:
    """Show one stream."""
    stream = _run(lambda c: c.get_stream(call_uuid, stream_id))
    if as_json:
        _print_json(stream)
        return
    table = Table("field", "value", title=f"Stream {stream.stream_id}")
    for name, value in _jsonable(stream).items():
        table.add_row(name, escape(_show(value)))
    _console().print(table)


@streams_app.command("list")
def streams_list(
    call_uuid: CallUuid,
    limit: Annotated[int, typer.Option(min=1, help="Page size.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Streams to skip.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """List the call's streams (active and stopped)."""
    page = _run(lambda c: c.list_streams(call_uuid, limit=limit, offset=offset))
    if as_json:
        _print_json(page)
        return
    table = Table(title=f"Streams of {call_uuid}", caption=f"page {page.page}, total {_show(page.total)}")
    table.add_column("stream_id", no_wrap=True)
    for column in ("status", "track", "bidi", "content_type", "service_url", "start_time"):
        table.add_column(column)
    for s in page.streams:
        table.add_row(*(escape(_show(v)) for v in _row(s)))
    _console().print(table)


def _row(s: Stream) -> tuple[Any, ...]:
    return (
        s.stream_id,
        s.status,
        s.audio_track,
        s.bidirectional,
        s.content_type,
        s.service_url,
        s.start_time,
    )


@streams_app.command("stop")
def streams_stop(call_uuid: CallUuid, stream_id: StreamId, as_json: JsonFlag = False) -> None:
    """Stop one stream (an already stopped one is not an error)."""
    stopped = _run(lambda c: c.stop_stream(call_uuid, stream_id))
    if as_json:
        _print_json({"call_uuid": call_uuid, "stream_id": stream_id, "stopped": stopped})
    elif stopped:
        _say(f"[green]Stream stopped[/]: {escape(stream_id)}")
    else:
        _say(f"[yellow]Stream was not active[/] (already stopped or unknown): {escape(stream_id)}")


@streams_app.command("stop-all")
def streams_stop_all(call_uuid: CallUuid, as_json: JsonFlag = False) -> None:
    """Stop every stream of the call."""
    count = _run(lambda c: c.stop_all_streams(call_uuid))
    if as_json:
        _print_json({"call_uuid": call_uuid, "streams_stopped": count})
    else:
        _say("[green]All streams stopped[/]" + ("" if count is None else f" ({count})"))


# ── calls ──


@call_app.command("dial")
def call_dial(
    from_number: Annotated[str, typer.Argument(metavar="FROM", help="Your Vobiz number (E.164).")],
    to_number: Annotated[str, typer.Argument(metavar="TO", help="E.164 number or sip: URI.")],
    answer_url: Annotated[str, typer.Argument(help="URL that returns the VobizXML.")],
    answer_method: Annotated[Method, typer.Option(help="Method for answer_url.")] = Method.POST,
    hangup_url: Annotated[str | None, typer.Option(help="URL told when the call ends.")] = None,
    hangup_method: Annotated[Method, typer.Option(help="Method for hangup_url.")] = Method.POST,
    ring_url: Annotated[str | None, typer.Option(help="URL told when the callee rings.")] = None,
    fallback_url: Annotated[str | None, typer.Option(help="Used if answer_url fails.")] = None,
    machine_detection: Annotated[str | None, typer.Option(help="true or hangup.")] = None,
    time_limit: Annotated[int | None, typer.Option(min=1, help="Maximum call length, seconds.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Place an outbound call."""
    fired = _run(
        lambda c: c.make_call(
            from_number,
            to_number,
            answer_url,
            answer_method=answer_method.value,
            hangup_url=hangup_url,
            hangup_method=hangup_method.value,
            ring_url=ring_url,
            fallback_url=fallback_url,
            machine_detection=machine_detection,
            time_limit=time_limit,
        )
    )
    if as_json:
        _print_json(fired)
    else:
        _say(f"[green]{escape(fired.message or 'Call fired')}[/]: {escape(_show(fired.call_uuid))}")


@call_app.command("hangup")
def call_hangup(call_uuid: CallUuid, as_json: JsonFlag = False) -> None:
    """Hang up a live call (an already ended one is not an error)."""
    hung_up = _run(lambda c: c.hangup_call(call_uuid))
    if as_json:
        _print_json({"call_uuid": call_uuid, "hung_up": hung_up})
    elif hung_up:
        _say(f"[green]Call hung up[/]: {escape(call_uuid)}")
    else:
        _say(f"[yellow]Call had already ended[/] (or is unknown): {escape(call_uuid)}")


@call_app.command("dtmf")
def call_dtmf(
    call_uuid: CallUuid,
    digits: Annotated[str, typer.Argument(help="Keys: 0-9, * and #; w waits 0.5 s, W 1 s.")],
    leg: Annotated[str, typer.Option(help="aleg or bleg.")] = "aleg",
    as_json: JsonFlag = False,
) -> None:
    """Press phone keys (DTMF) on a live call."""
    result = _run(lambda c: c.send_dtmf(call_uuid, digits, leg=leg))
    if as_json:
        _print_json(result)
    else:
        _say(f"[green]{escape(result.message or 'digits sent')}[/]: {escape(call_uuid)}")


@call_app.command("transfer")
def call_transfer(
    call_uuid: CallUuid,
    url: Annotated[str, typer.Argument(help="URL that returns the new VobizXML.")],
    legs: Annotated[Legs, typer.Option(help="Which leg(s) to transfer.")] = Legs.aleg,
    method: Annotated[Method, typer.Option(help="Method for the URL(s).")] = Method.POST,
    bleg_url: Annotated[str | None, typer.Option(help="Separate B-leg URL for --legs both.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Transfer a live call to new XML (ends its current <Stream>)."""
    aleg = None if legs is Legs.bleg else url
    bleg = {Legs.aleg: None, Legs.bleg: url, Legs.both: bleg_url or url}[legs]
    result = _run(
        lambda c: c.transfer_call(
            call_uuid,
            aleg,
            legs=legs.value,
            aleg_method=method.value,
            bleg_url=bleg,
            bleg_method=method.value,
        )
    )
    if as_json:
        _print_json(result)
    else:
        _say(f"[green]{escape(result.message or 'call transferred')}[/]: {escape(call_uuid)}")
