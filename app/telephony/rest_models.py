"""What the Vobiz REST API answers, read liberally (PROTOCOL.md §6, §8, D11–D17, D21).

Each response shape is a private pydantic model whose fields list every spelling seen across
doc revisions (``AliasChoices``: the first name present with a non-null value wins). A value of
the wrong shape reads as absent, never as an error: the client must keep working when Vobiz
adds, renames or reformats a field. The results handed to callers are frozen dataclasses.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

log = logging.getLogger("app.vobiz.rest")


# ── liberal value types ────────────────────────────────────────────────────────


def _or_none(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A value of the wrong shape (a list for a string, "abc" for a number) reads as absent."""
    try:
        return handler(value)
    except ValidationError:
        return None


def _utc(value: datetime | None) -> datetime | None:
    """A timestamp without a zone is UTC."""
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def _scalar(value: Any) -> Any:
    """Any scalar reads as its text (``8000`` → ``"8000"``, ``True`` → ``"True"``)."""
    return value if value is None or isinstance(value, str | dict | list) else str(value)


def _truth(value: Any) -> Any:
    """Any number is a truth value (``2`` is true), as are true/false, yes/no and 1/0 text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(
            value.strip().lower()
        )
    return value


def _iso_or_epoch(value: Any) -> Any:
    """ISO 8601 text or epoch seconds/milliseconds as a number; digits in text are not a time."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        return None
    return value


def _listed(value: Any) -> Any:
    """One id or a list of them."""
    return value if isinstance(value, list) else [value]


def _whole(value: Any) -> Any:
    """``"8000.0"`` is 8000; a bool is not a number here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return value


Text = Annotated[
    str | None, AfterValidator(lambda s: s or None), BeforeValidator(_scalar), WrapValidator(_or_none)
]
Flag = Annotated[bool | None, BeforeValidator(_truth), WrapValidator(_or_none)]
Count = Annotated[int | None, BeforeValidator(_whole), WrapValidator(_or_none)]
When = Annotated[
    datetime | None, AfterValidator(_utc), BeforeValidator(_iso_or_epoch), WrapValidator(_or_none)
]


def _names(*names: str) -> Any:
    return Field(None, validation_alias=AliasChoices(*names))


class _Wire(BaseModel):
    """A JSON object as received: unknown fields ignored, nulls treated as missing."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return {}
        return {k: v for k, v in data.items() if v is not None}


# ── extra headers ──────────────────────────────────────────────────────────────


def parse_extra_headers(value: Any) -> Mapping[str, str]:
    """A dict, a JSON object in a string (D21), or ``h1:v1,h2:v2`` text (``k=v`` pairs too)."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, str) or not value.strip():
        return {}
    text = value.strip()
    if text.startswith("{"):
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            return {str(k): str(v) for k, v in decoded.items()}
    found: dict[str, str] = {}
    for part in text.split(","):
        cut = min((i for i in (part.find(":"), part.find("=")) if i > 0), default=-1)
        if cut > 0 and part[:cut].strip():
            found[part[:cut].strip()] = part[cut + 1 :].strip()
    return found


# an HTTP header name is a token (RFC 9110 §5.1); a value here cannot hold the ',' separator
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[^,\x00-\x1f\x7f]*")


def render_extra_headers(headers: Mapping[str, str] | str) -> str:
    """``{"X-Session": "abc", "X-Agent": "7"}`` → ``"X-Session:abc,X-Agent:7"``.

    The REST start documents ``extra_headers`` as comma-separated ``header:value`` pairs
    (PROTOCOL.md §6.1; the ``<Stream extraHeaders>`` attribute is ``k=v`` instead). A string
    must already be in that form. ``ValueError`` names a pair that is not: a name that is not an
    HTTP token, or a ',' or control character in a value (it would split or inject headers).
    """
    if isinstance(headers, str):
        pairs: list[tuple[str, str]] = []
        for part in headers.split(","):
            name, sep, value = part.partition(":")
            if not sep:
                raise ValueError(f"extra header {part!r} is not header:value")
            pairs.append((name, value))
    else:
        pairs = list(headers.items())
    for name, value in pairs:
        if not HEADER_NAME.fullmatch(name):
            raise ValueError(f"extra header name {name!r} is not an HTTP header name")
        if not _HEADER_VALUE.fullmatch(value):
            raise ValueError(f"extra header {name!r}: a value cannot hold ',' or control characters")
    return ",".join(f"{name}:{value}" for name, value in pairs)


# ── wire shapes ────────────────────────────────────────────────────────────────

_RATE = re.compile(r";\s*rate\s*=\s*(\d+)", re.IGNORECASE)


def _rate_of(content_type: str | None) -> int | None:
    """The ``;rate=`` of a content type; μ-law without one is 8000."""
    if content_type is None:
        return None
    match = _RATE.search(content_type)
    if match:
        return int(match.group(1))
    return 8000 if "mulaw" in content_type.lower() or "pcmu" in content_type.lower() else None


class _StreamWire(_Wire):
    stream_id: Text = _names("stream_id", "streamId", "StreamID", "id")
    call_uuid: Text = _names("call_uuid", "callUUID", "CallUUID", "callId")
    service_url: Text = _names("service_url", "serviceUrl", "ServiceURL")
    audio_track: Text = _names("audio_track", "audioTrack")
    bidirectional: Flag = None
    content_type: Text = _names("content_type", "contentType")
    sampling_rate: Count = _names("sampling_rate", "sample_rate", "sampleRate")
    stream_timeout: Count = _names("stream_timeout", "streamTimeout")
    status_callback_url: Text = _names("status_callback_url", "status_url", "statusCallbackUrl")
    status_callback_method: Text = _names("status_callback_method", "status_method", "statusCallbackMethod")
    status: Text = None
    start_time: When = _names("start_time", "startTime")
    end_time: When = _names("end_time", "endTime")
    resource_uri: Text = None
    api_id: Text = None
    account_id: Text = _names("account_id", "accountId", "auth_id")


class Reply(_Wire):
    """The body of an accepted action (start, stop, transfer, DTMF, make call)."""

    api_id: Text = None
    message: Text = None
    stream_id: Text = _names("stream_id", "streamId", "id")
    call_uuid: Text = _names("call_uuid", "request_uuid")
    streams_stopped: Count = None


class FiredReply(_Wire):
    """Make Call's answer: ``request_uuid`` (new) or ``call_uuid`` (old), D16, one id or a list."""

    api_id: Text = None
    message: Text = None
    call_uuids: Annotated[tuple[Text, ...], BeforeValidator(_listed)] = Field(
        (), validation_alias=AliasChoices("request_uuid", "call_uuid", "requestUuid", "callUuid")
    )


class PageMeta(_Wire):
    """Paging fields of a stream list, flat or in ``meta``."""

    per_page: Count = _names("per_page", "limit")
    total: Count = _names("total", "total_count", "count")
    page: Count = None
    offset: Count = None


class ErrorBody(_Wire):
    """An error response: ``{"error": "…"}``, ``{"error": {"message", "code"}}``, ``message``,
    or ``detail`` (a string or a FastAPI-style list)."""

    api_id: Text = None
    request_id: Text = _names("requestId", "request_id")
    error: Any = None
    error_text: Text = _names("error")
    message: Text = None
    detail: Any = None
    detail_text: Text = _names("detail")


class ErrorObject(_Wire):
    """The inner object of the generic envelope."""

    message: Text = _names("message", "detail", "description")
    code: Text = None


def error_details(data: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(message, api_id, request_id, code) from a decoded JSON error object."""
    body = ErrorBody.model_validate(data)
    inner = ErrorObject.model_validate(body.error if isinstance(body.error, dict) else {})
    message = inner.message or body.error_text or body.message
    if message is None and isinstance(body.detail, list):
        message = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in body.detail)
    return message or body.detail_text or inner.code, body.api_id, body.request_id, inner.code


# ── results ────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Stream:
    """One REST audio stream. Every field but ``stream_id`` may be None (old revisions omit them).

    ``sampling_rate`` falls back to ``;rate=`` in ``content_type`` (μ-law: 8000).
    ``status_callback_*`` also read the old ``status_url``/``status_method``. ``status`` is
    ``in-progress`` | ``completed`` | ``failed`` as sent. ``raw`` is the object as received.
    """

    stream_id: str
    call_uuid: str | None = None
    service_url: str | None = None
    audio_track: str | None = None
    bidirectional: bool | None = None
    content_type: str | None = None
    sampling_rate: int | None = None
    stream_timeout: int | None = None
    status_callback_url: str | None = None
    status_callback_method: str | None = None
    status: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    resource_uri: str | None = None
    api_id: str | None = None
    account_id: str | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)

    @classmethod
    def from_api(
        cls, data: Mapping[str, Any], *, stream_id: str | None = None, call_uuid: str | None = None
    ) -> Stream:
        """Parse any documented Stream object variant.

        ``stream_id``/``call_uuid`` are fallbacks for objects that omit them (the ids the
        request was made with). ``ValueError`` if no stream id is known at all.
        """
        wire = _StreamWire.model_validate(data)
        stream_id = wire.stream_id or stream_id
        if stream_id is None:
            raise ValueError("stream object has no stream_id")
        headers = next((data[k] for k in ("extra_headers", "extraHeaders") if data.get(k) is not None), None)
        fields = wire.model_dump(exclude={"stream_id", "call_uuid", "sampling_rate"})
        return cls(
            stream_id=stream_id,
            call_uuid=wire.call_uuid or call_uuid,
            sampling_rate=wire.sampling_rate
            if wire.sampling_rate is not None
            else _rate_of(wire.content_type),
            extra_headers=parse_extra_headers(headers),
            raw=dict(data),
            **fields,
        )


@dataclass(frozen=True, slots=True)
class StreamPage:
    """One page of ``list_streams`` (active and stopped streams). ``total`` is None if not sent."""

    page: int
    per_page: int
    total: int | None
    streams: tuple[Stream, ...]


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """Start accepted. ``stream_id`` is None only if a 2xx body carried none (the fork may run)."""

    stream_id: str | None
    message: str | None
    api_id: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ActionResult:
    """A mid-call action accepted (e.g. DTMF sent)."""

    api_id: str | None
    message: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TransferResult:
    """Transfer accepted (202): the new XML runs now and the current ``<Stream>`` ends."""

    call_uuid: str | None
    api_id: str | None
    message: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class CallFired:
    """Make Call accepted. ``call_uuid`` is ``request_uuid`` (new) or ``call_uuid`` (old), D16.

    With several ``<``-separated destinations a list may come back: ``call_uuids`` holds all.
    """

    call_uuid: str | None
    api_id: str | None
    message: str | None
    call_uuids: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)


def parse_page(data: Any, call_uuid: str, limit: int, offset: int) -> StreamPage:
    """A stream list: a bare list, or an object with ``objects``/``streams``/``data`` and paging
    fields flat or in ``meta``. Objects without a stream id are skipped."""
    objects: Any = data
    meta: Mapping[str, Any] = {}
    if isinstance(data, dict):
        objects = next((data[k] for k in ("objects", "streams", "data") if data.get(k) is not None), None)
        inner = data.get("meta")
        meta = {**(inner if isinstance(inner, dict) else {}), **data}
    paging = PageMeta.model_validate(meta)
    per_page = paging.per_page or limit
    page = paging.page
    if page is None:
        start = paging.offset
        page = (offset if start is None else start) // max(per_page, 1) + 1
    streams: list[Stream] = []
    for item in objects if isinstance(objects, list) else []:
        if not isinstance(item, dict):
            continue
        try:
            streams.append(Stream.from_api(item, call_uuid=call_uuid))
        except ValueError:
            log.warning("vobiz stream list: skipped an object without stream_id")
    return StreamPage(page=page, per_page=per_page, total=paging.total, streams=tuple(streams))
