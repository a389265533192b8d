"""Request-body checks and error bodies of the fake Vobiz REST API."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import JSONResponse


class BadRequest(Exception):
    """→ 400 in the generic error envelope (``details`` names the field)."""

    def __init__(self, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = dict(details or {})


class NotFound(Exception):
    """→ 404 ``{"api_id": …, "error": message}`` (the flat shape the stream pages document)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def error_envelope(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, Any] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The generic Vobiz error envelope (PROTOCOL.md §6.4)."""
    body = {
        "status": "error",
        "error": {"code": code, "message": message, "details": dict(details or {})},
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "requestId": f"req_{uuid.uuid4().hex[:16]}",
    }
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


class UnsupportedMediaType(Exception):
    """→ 415 in the generic error envelope: a body that is not ``application/json``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


#: The documented body fields of each operation (PROTOCOL.md §6.1, §8); anything else is refused.
START_STREAM_FIELDS = frozenset(
    {
        "service_url",
        "audio_track",
        "bidirectional",
        "content_type",
        "stream_timeout",
        "status_callback_url",
        "status_callback_method",
        "extra_headers",
        "audio_format",
    }
)
TRANSFER_FIELDS = frozenset({"legs", "aleg_url", "aleg_method", "bleg_url", "bleg_method"})
DTMF_FIELDS = frozenset({"digits", "leg"})
MAKE_CALL_FIELDS = frozenset(
    {
        "from",
        "to",
        "answer_url",
        "answer_method",
        "ring_url",
        "ring_method",
        "hangup_url",
        "hangup_method",
        "fallback_url",
        "fallback_method",
        "machine_detection",
        "machine_detection_time",
        "machine_detection_url",
        "machine_detection_method",
        "machine_detection_maximum_speech_length",
        "ring_timeout",
        "time_limit",
        "caller_name",
        "sip_headers",
    }
)


async def read_json(request: Request, fields: frozenset[str]) -> dict[str, Any]:
    """The body as a JSON object whose keys are all in ``fields``; an empty body is ``{}``.

    Strict, as a real server is: a body under any content type but ``application/json`` is
    refused (415), and so is a field the operation does not document (400 naming it), so a
    misspelt field fails here instead of being ignored.
    """
    raw = await request.body()
    if not raw.strip():
        return {}
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(f"Content-Type must be application/json, not {media_type or 'absent'!r}")
    try:
        data = json.loads(raw)
    except ValueError:
        raise BadRequest("Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("Request body must be a JSON object")
    unknown = sorted(set(data) - fields)
    if unknown:
        raise BadRequest(f"Unknown field: {unknown[0]}", {"field": unknown[0]})
    return data


def text(body: Mapping[str, Any], name: str) -> str | None:
    """A string field (numbers are accepted as text); blank → None."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadRequest(f"{name} must be a string", {"field": name})
    return str(value).strip() or None


def as_bool(body: Mapping[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadRequest(f"{name} must be true or false", {"field": name})


def as_int(
    body: Mapping[str, Any], name: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    value = body.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise BadRequest(f"{name} must be an integer", {"field": name})
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{name} must be an integer", {"field": name}) from None
    if number < minimum or (maximum is not None and number > maximum):
        raise BadRequest(f"{name} is out of range", {"field": name})
    return number


def choice(body: Mapping[str, Any], name: str, options: tuple[str, ...]) -> str:
    """One of ``options`` (compared without spaces, case-insensitively); missing → the first."""
    value = (text(body, name) or options[0]).replace(" ", "").lower()
    if value not in options:
        raise BadRequest(f"{name} must be one of {', '.join(options)}", {"field": name})
    return value


def check_url(
    body: Mapping[str, Any], name: str, schemes: tuple[str, ...], *, required: bool = False
) -> str | None:
    """A URL field with one of ``schemes`` and a host; missing → None unless ``required``."""
    value = text(body, name)
    if value is None:
        if required:
            raise BadRequest(f"{name} is required", {"field": name})
        return None
    parts = urlsplit(value)
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise BadRequest(f"{name} must be a valid {'/'.join(schemes)} URL", {"field": name})
    return value


def check_method(body: Mapping[str, Any], name: str) -> str:
    """``GET`` or ``POST`` (any case); default ``POST``."""
    method = (text(body, name) or "POST").upper()
    if method not in ("GET", "POST"):
        raise BadRequest(f"{name} must be GET or POST", {"field": name})
    return method


_HEADER_PAIR = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^,\x00-\x1f\x7f]*")


def header_pairs(body: Mapping[str, Any], name: str) -> str | None:
    """``h1:v1,h2:v2`` exactly, as the REST start documents ``extra_headers`` (PROTOCOL.md §6.1):
    each header name an HTTP token; ``k=v`` (the ``<Stream extraHeaders>`` form) is refused."""
    value = text(body, name)
    if value is not None and not all(_HEADER_PAIR.fullmatch(part) for part in value.split(",")):
        raise BadRequest(f"{name} must be comma-separated header:value pairs", {"field": name})
    return value
