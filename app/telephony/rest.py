"""Async client for the Vobiz REST API: Audio Streams and call control.

Facts come from ``PROTOCOL.md`` §6, §8 and §10 (D11–D17). The client is exact in what it
sends (documented paths with ``/Account/{auth_id}/Call/…/`` casing and trailing slashes, the
documented field names, ``audio_track`` and ``answer_method`` always explicit) and liberal
in what it accepts (any 2xx, every documented response variant, either error envelope or
plain text).

Retries: only idempotent requests (GET, DELETE) are retried, and only on 5xx or transport
errors. A POST that fails with a 5xx has an unknown outcome, so it is never repeated here.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential, wait_random

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger("app.vobiz.rest")
DTMF_DIGITS = re.compile(r"[0-9*#wW]{1,64}")

DEFAULT_BASE_URL = "https://api.vobiz.ai/api/v1"
_USER_AGENT = f"vobiz-voice-agent/0.1 httpx/{httpx.__version__}"
_IDEMPOTENT = frozenset({"GET", "DELETE"})
_MAX_BACKOFF = 8.0
_MAX_MESSAGE = 300


# ── errors ─────────────────────────────────────────────────────────────────────


class VobizError(Exception):
    """A failed Vobiz REST request.

    ``status_code`` is None for transport failures. ``message`` comes from the response body
    (either error envelope, ``message``, or plain text). ``str()`` reads ``"404 Stream not
    found"`` and never contains the auth token (it is redacted from server text too).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        api_id: str | None = None,
        request_id: str | None = None,
        code: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.api_id = api_id
        self.request_id = request_id
        self.code = code  # machine code from the generic envelope, e.g. "INSUFFICIENT_BALANCE"
        self.method = method
        self.path = path

    def __str__(self) -> str:
        return self.message if self.status_code is None else f"{self.status_code} {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code!r}, message={self.message!r}, "
            f"api_id={self.api_id!r}, request_id={self.request_id!r})"
        )


class VobizAuthError(VobizError):
    """401/403: bad credentials, wrong path casing, or not allowed."""


class VobizNotFoundError(VobizError):
    """404: unknown (or already ended / stopped) call or stream."""


class VobizValidationError(VobizError):
    """400/409/422: the request was refused as invalid."""


class VobizRateLimitError(VobizError):
    """429: CPS / concurrency limit. ``retry_after`` is seconds from ``Retry-After``, if sent."""

    retry_after: float | None = None


class VobizServerError(VobizError):
    """5xx: the outcome is unknown; check state before repeating a non-idempotent request."""


class VobizConnectionError(VobizError):
    """No HTTP response: connection refused/reset, DNS failure or timeout."""


class VobizTimeoutError(VobizConnectionError):
    """The request timed out (connect, read, write or pool)."""


_STATUS_ERRORS: dict[int, type[VobizError]] = {
    400: VobizValidationError,
    401: VobizAuthError,
    403: VobizAuthError,
    404: VobizNotFoundError,
    409: VobizValidationError,
    422: VobizValidationError,
    429: VobizRateLimitError,
}


# ── liberal value parsing ──────────────────────────────────────────────────────


def _pick(data: Mapping[str, Any], *names: str) -> Any:
    """The first of ``names`` present in ``data`` with a non-None value."""
    for name in names:
        value = data.get(name)
        if value is not None:
            return value
    return None


def _as_str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None


def _as_datetime(value: Any) -> datetime | None:
    """ISO 8601 (``Z`` or offset; naive means UTC) or epoch seconds/milliseconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_RATE = re.compile(r";\s*rate\s*=\s*(\d+)", re.IGNORECASE)


def _sampling_rate(explicit: Any, content_type: str | None) -> int | None:
    rate = _as_int(explicit)
    if rate is not None:
        return rate
    if content_type is None:
        return None
    match = _RATE.search(content_type)
    if match:
        return int(match.group(1))
    return 8000 if "mulaw" in content_type.lower() or "pcmu" in content_type.lower() else None


def _parse_extra_headers(value: Any) -> Mapping[str, str]:
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
        stream_id = _as_str(_pick(data, "stream_id", "streamId", "StreamID", "id")) or stream_id
        if stream_id is None:
            raise ValueError("stream object has no stream_id")
        content_type = _as_str(_pick(data, "content_type", "contentType"))
        return cls(
            stream_id=stream_id,
            call_uuid=_as_str(_pick(data, "call_uuid", "callUUID", "CallUUID", "callId")) or call_uuid,
            service_url=_as_str(_pick(data, "service_url", "serviceUrl", "ServiceURL")),
            audio_track=_as_str(_pick(data, "audio_track", "audioTrack")),
            bidirectional=_as_bool(data.get("bidirectional")),
            content_type=content_type,
            sampling_rate=_sampling_rate(
                _pick(data, "sampling_rate", "sample_rate", "sampleRate"), content_type
            ),
            stream_timeout=_as_int(_pick(data, "stream_timeout", "streamTimeout")),
            status_callback_url=_as_str(
                _pick(data, "status_callback_url", "status_url", "statusCallbackUrl")
            ),
            status_callback_method=_as_str(
                _pick(data, "status_callback_method", "status_method", "statusCallbackMethod")
            ),
            status=_as_str(data.get("status")),
            start_time=_as_datetime(_pick(data, "start_time", "startTime")),
            end_time=_as_datetime(_pick(data, "end_time", "endTime")),
            resource_uri=_as_str(data.get("resource_uri")),
            api_id=_as_str(data.get("api_id")),
            account_id=_as_str(_pick(data, "account_id", "accountId", "auth_id")),
            extra_headers=_parse_extra_headers(_pick(data, "extra_headers", "extraHeaders")),
            raw=dict(data),
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


# ── client ─────────────────────────────────────────────────────────────────────


def _seg(value: str) -> str:
    """One URL-quoted path segment (a ``/`` in an id can never change the path)."""
    return quote(str(value), safe="")


def _body(response: httpx.Response) -> Any:
    """The decoded JSON body, or None for an empty / non-JSON body."""
    if not response.content.strip():
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _obj(response: httpx.Response) -> Mapping[str, Any]:
    data = _body(response)
    return data if isinstance(data, dict) else {}


def _error_details(response: httpx.Response) -> tuple[str, str | None, str | None, str | None]:
    """(message, api_id, request_id, code) from either envelope, ``message``/``detail``, or text."""
    data = _body(response)
    message: str | None = None
    api_id = request_id = code = None
    if isinstance(data, dict):
        api_id = _as_str(data.get("api_id"))
        request_id = _as_str(_pick(data, "requestId", "request_id"))
        error = data.get("error")
        if isinstance(error, dict):
            message = _as_str(_pick(error, "message", "detail", "description"))
            code = _as_str(error.get("code"))
        else:
            message = _as_str(error)
        message = message or _as_str(data.get("message"))
        detail = data.get("detail")
        if message is None and isinstance(detail, list):
            message = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
        message = message or _as_str(detail) or code
    elif isinstance(data, str):
        message = data
    else:
        message = response.text
    text = " ".join((message or "").split()) or response.reason_phrase or "error"
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 1] + "…"
    return text, api_id, request_id, code


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class VobizClient:
    """Async client for one Vobiz account.

    ``http``: an ``httpx.AsyncClient`` to share (not closed by ``aclose``); otherwise one is
    created and owned. ``timeout`` (seconds) applies to every request, also on a shared
    client. ``max_retries`` bounds the extra attempts of GET/DELETE after 5xx or transport
    errors; ``retry_backoff`` is the first delay (doubling, plus up to that much jitter).
    """

    def __init__(
        self,
        auth_id: str,
        auth_token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        retry_backoff: float = 0.25,
    ) -> None:
        if not auth_id or not auth_token:
            raise ValueError("auth_id and auth_token are required")
        if max_retries < 0 or retry_backoff < 0 or timeout <= 0:
            raise ValueError("max_retries and retry_backoff must be >= 0, timeout > 0")
        self._auth_id = auth_id
        self._token = auth_token
        self._base = base_url.rstrip("/")
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = retry_backoff
        self._account = f"/Account/{_seg(auth_id)}"

    @classmethod
    def from_settings(
        cls, settings: Settings, http: httpx.AsyncClient | None = None, *, retry_backoff: float = 0.25
    ) -> Self:
        """A client from ``vobiz_*`` settings (raises ``ValueError`` if credentials are empty)."""
        return cls(
            settings.vobiz_auth_id,
            settings.vobiz_auth_token.get_secret_value(),
            settings.vobiz_api_base_url,
            http=http,
            timeout=settings.vobiz_timeout_seconds,
            max_retries=settings.vobiz_max_retries,
            retry_backoff=retry_backoff,
        )

    def __repr__(self) -> str:
        return f"VobizClient(auth_id={self._auth_id!r}, base_url={self._base!r})"

    @property
    def auth_id(self) -> str:
        return self._auth_id

    @property
    def base_url(self) -> str:
        return self._base

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    # ── Audio Streams API (§6) ──

    async def start_stream(
        self,
        call_uuid: str,
        service_url: str,
        *,
        bidirectional: bool = False,
        audio_track: str = "inbound",
        content_type: str = "audio/x-l16;rate=8000",
        stream_timeout: int | None = None,
        status_callback_url: str | None = None,
        status_callback_method: str = "POST",
        extra_headers: Mapping[str, str] | str | None = None,
    ) -> StreamStarted:
        """Fork the audio of a live call to ``service_url`` (ws:// or wss://). Never retried.

        ``audio_track`` is always sent (the default differs between doc revisions, D11) and
        must be ``inbound`` when ``bidirectional``. ``extra_headers`` is sent as
        ``h1:v1,h2:v2`` (``render_extra_headers``). ``status_callback_method`` is sent only
        with a callback URL.
        """
        body: dict[str, Any] = {
            "service_url": service_url,
            "bidirectional": bidirectional,
            "audio_track": audio_track,
            "content_type": content_type,
        }
        if stream_timeout is not None:
            body["stream_timeout"] = stream_timeout
        if status_callback_url is not None:
            body["status_callback_url"] = status_callback_url
            body["status_callback_method"] = status_callback_method
        if extra_headers:
            body["extra_headers"] = render_extra_headers(extra_headers)
        data = _obj(await self._request("POST", self._stream_path(call_uuid), body=body))
        return StreamStarted(
            stream_id=_as_str(_pick(data, "stream_id", "streamId", "id")),
            message=_as_str(data.get("message")),
            api_id=_as_str(data.get("api_id")),
            raw=dict(data),
        )

    async def get_stream(self, call_uuid: str, stream_id: str) -> Stream:
        """One stream (active or stopped); ``VobizNotFoundError`` if unknown."""
        data = _obj(await self._request("GET", self._stream_path(call_uuid, stream_id)))
        return Stream.from_api(data, stream_id=stream_id, call_uuid=call_uuid)

    async def list_streams(self, call_uuid: str, *, limit: int = 20, offset: int = 0) -> StreamPage:
        """A page of the call's streams, flat or ``{"meta": …, "objects": …}`` envelope."""
        params = {"limit": limit, "offset": offset}
        response = await self._request("GET", self._stream_path(call_uuid), params=params)
        return _parse_page(_body(response), call_uuid, limit, offset)

    async def stop_stream(self, call_uuid: str, stream_id: str) -> bool:
        """Stop one stream: True if stopped (any 2xx), False on 404 (already gone, D14).

        After a retried 5xx, False can also mean the first attempt did stop it.
        """
        try:
            await self._request("DELETE", self._stream_path(call_uuid, stream_id))
        except VobizNotFoundError:
            return False
        return True

    async def stop_all_streams(self, call_uuid: str) -> int | None:
        """Stop every stream of the call (idempotent).

        Returns the count if the server reports one (old 200 ``{"streams_stopped": n}``),
        None for the current 204, and 0 on a 404 (nothing active, old revision).
        """
        try:
            response = await self._request("DELETE", self._stream_path(call_uuid))
        except VobizNotFoundError:
            return 0
        return _as_int(_obj(response).get("streams_stopped"))

    # ── call control (§8) ──

    async def hangup_call(self, call_uuid: str) -> bool:
        """Hang up a live call: True on 2xx (204), False on 404 (already ended; D28: CDR source "API").

        After a retried 5xx, False can also mean the first attempt did hang up.
        """
        try:
            await self._request("DELETE", self._call_path(call_uuid))
        except VobizNotFoundError:
            return False
        return True

    async def transfer_call(
        self,
        call_uuid: str,
        aleg_url: str | None,
        *,
        legs: str = "aleg",
        aleg_method: str = "POST",
        bleg_url: str | None = None,
        bleg_method: str = "POST",
    ) -> TransferResult:
        """Run new XML on a live call. ``legs``: ``aleg`` | ``bleg`` | ``both`` (both URLs). Never retried.

        A URL's method is sent only with that URL; the server answers 400 if no URL fits ``legs``.
        """
        body: dict[str, Any] = {"legs": legs}
        if aleg_url is not None:
            body["aleg_url"] = aleg_url
            body["aleg_method"] = aleg_method
        if bleg_url is not None:
            body["bleg_url"] = bleg_url
            body["bleg_method"] = bleg_method
        data = _obj(await self._request("POST", self._call_path(call_uuid), body=body))
        return TransferResult(
            call_uuid=_as_str(_pick(data, "call_uuid", "request_uuid")) or call_uuid,
            api_id=_as_str(data.get("api_id")),
            message=_as_str(data.get("message")),
            raw=dict(data),
        )

    async def send_dtmf(self, call_uuid: str, digits: str, *, leg: str = "aleg") -> ActionResult:
        """Play DTMF tones on a live call (``POST …/Call/{uuid}/DTMF/``). ``digits``: 0-9, ``*``,
        ``#``, and ``w``/``W`` for a 0.5 s / 1 s pause; ``leg``: ``aleg`` | ``bleg``. Never retried."""
        if not DTMF_DIGITS.fullmatch(digits):
            raise ValueError("digits may hold only 0-9, *, # and w/W pauses")
        data = _obj(
            await self._request(
                "POST", f"{self._call_path(call_uuid)}DTMF/", body={"digits": digits, "leg": leg}
            )
        )
        return ActionResult(
            api_id=_as_str(data.get("api_id")), message=_as_str(data.get("message")), raw=data
        )

    async def make_call(
        self,
        from_number: str,
        to_number: str,
        answer_url: str,
        *,
        answer_method: str = "POST",
        hangup_url: str | None = None,
        hangup_method: str = "POST",
        ring_url: str | None = None,
        fallback_url: str | None = None,
        machine_detection: str | bool | None = None,
        time_limit: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> CallFired:
        """Place an outbound call. ``answer_method`` is always sent (D17). Never retried.

        ``machine_detection``: ``"true"``/``True`` or ``"hangup"``. ``extra`` adds other
        documented fields (``ring_method``, ``caller_name``, ``sip_headers`` …); it may not
        repeat a field set by the named arguments (``ValueError``).
        """
        body: dict[str, Any] = {
            "from": from_number,
            "to": to_number,
            "answer_url": answer_url,
            "answer_method": answer_method,
        }
        if hangup_url is not None:
            body["hangup_url"] = hangup_url
            body["hangup_method"] = hangup_method
        if ring_url is not None:
            body["ring_url"] = ring_url
        if fallback_url is not None:
            body["fallback_url"] = fallback_url
        if machine_detection is True:
            body["machine_detection"] = "true"
        elif isinstance(machine_detection, str):
            body["machine_detection"] = machine_detection
        if time_limit is not None:
            body["time_limit"] = time_limit
        for key, value in (extra or {}).items():
            if key in body:
                raise ValueError(f"extra field {key!r} is already set by an argument")
            body[key] = value
        data = _obj(await self._request("POST", f"{self._account}/Call/", body=body))
        uuids = _pick(data, "request_uuid", "call_uuid", "requestUuid", "callUuid")
        found = tuple(s for s in (_as_str(u) for u in (uuids if isinstance(uuids, list) else [uuids])) if s)
        return CallFired(
            call_uuid=found[0] if found else None,
            api_id=_as_str(data.get("api_id")),
            message=_as_str(data.get("message")),
            call_uuids=found,
            raw=dict(data),
        )

    # ── transport ──

    def _call_path(self, call_uuid: str) -> str:
        return f"{self._account}/Call/{_seg(call_uuid)}/"

    def _stream_path(self, call_uuid: str, stream_id: str | None = None) -> str:
        path = f"{self._call_path(call_uuid)}Stream/"
        return path if stream_id is None else f"{path}{_seg(stream_id)}/"

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """Send once (POST) or with bounded retries (GET/DELETE on 5xx / transport errors)."""
        if method not in _IDEMPOTENT:
            return await self._send_once(method, path, body, params)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_retries + 1),
            wait=wait_exponential(multiplier=self._backoff, max=_MAX_BACKOFF) + wait_random(0, self._backoff),
            retry=retry_if_exception_type((VobizServerError, VobizConnectionError)),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._send_once(method, path, body, params)
        raise AssertionError("unreachable")  # pragma: no cover - reraise=True always raises

    async def _send_once(
        self, method: str, path: str, body: Mapping[str, Any] | None, params: Mapping[str, Any] | None
    ) -> httpx.Response:
        headers = {
            "X-Auth-ID": self._auth_id,
            "X-Auth-Token": self._token,
            "User-Agent": _USER_AGENT,
            "Accept": "application/json",
        }
        content: bytes | None = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        try:
            response = await self._http.request(
                method,
                self._base + path,
                params=params,
                content=content,
                headers=headers,
                timeout=self._timeout,
            )
        except httpx.TimeoutException as exc:
            log.debug("vobiz %s %s -> timeout", method, path)
            raise VobizTimeoutError(
                self._redact(f"{method} {path} timed out after {self._timeout:g}s ({type(exc).__name__})"),
                method=method,
                path=path,
            ) from exc
        except httpx.TransportError as exc:
            log.debug("vobiz %s %s -> %s", method, path, type(exc).__name__)
            reason = str(exc) or type(exc).__name__
            raise VobizConnectionError(
                self._redact(f"cannot reach {self._base}: {reason}"), method=method, path=path
            ) from exc
        log.debug("vobiz %s %s -> %d", method, path, response.status_code)
        if response.is_success:
            return response
        raise self._error(response, method, path)

    def _error(self, response: httpx.Response, method: str, path: str) -> VobizError:
        message, api_id, request_id, code = _error_details(response)
        status = response.status_code
        cls = _STATUS_ERRORS.get(status) or (VobizServerError if status >= 500 else VobizError)
        error = cls(
            self._redact(message),
            status_code=status,
            api_id=api_id,
            request_id=request_id,
            code=code,
            method=method,
            path=path,
        )
        if isinstance(error, VobizRateLimitError):
            error.retry_after = _retry_after(response)
        return error

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "[redacted]")


def _parse_page(data: Any, call_uuid: str, limit: int, offset: int) -> StreamPage:
    objects: Any = data
    meta: Mapping[str, Any] = {}
    if isinstance(data, dict):
        objects = _pick(data, "objects", "streams", "data")
        inner = data.get("meta")
        meta = {**(inner if isinstance(inner, dict) else {}), **data}
    source = meta
    per_page = _as_int(_pick(source, "per_page", "limit")) or limit
    total = _as_int(_pick(source, "total", "total_count", "count"))
    page = _as_int(source.get("page"))
    if page is None:
        start = _as_int(source.get("offset"))
        page = (offset if start is None else start) // max(per_page, 1) + 1
    streams: list[Stream] = []
    for item in objects if isinstance(objects, list) else []:
        if not isinstance(item, dict):
            continue
        try:
            streams.append(Stream.from_api(item, call_uuid=call_uuid))
        except ValueError:
            log.warning("vobiz stream list: skipped an object without stream_id")
    return StreamPage(page=page, per_page=per_page, total=total, streams=tuple(streams))
