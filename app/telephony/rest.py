"""Async client for the Vobiz REST API: Audio Streams and call control.

The errors it raises are in ``errors.py``, the results it returns and the liberal reading of
response bodies in ``rest_models.py``; both are re-exported here.

Facts come from ``PROTOCOL.md`` §6, §8 and §10 (D11–D17). The client is exact in what it
sends (documented paths with ``/Account/{auth_id}/Call/…/`` casing and trailing slashes, the
documented field names, ``audio_track`` and ``answer_method`` always explicit) and liberal
in what it accepts (any 2xx, every documented response variant, either error envelope or
plain text).

Retries: only idempotent requests (GET, DELETE) are retried, and only on 5xx or transport
errors. A POST that fails with a 5xx has an unknown outcome, so it is never repeated here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

import httpx

from app.telephony.errors import (
    VobizAuthError,
    VobizConnectionError,
    VobizError,
    VobizNotFoundError,
    VobizRateLimitError,
    VobizServerError,
    VobizTimeoutError,
    VobizValidationError,
)
from app.telephony.rest_models import (
    HEADER_NAME,
    ActionResult,
    CallFired,
    FiredReply,
    Reply,
    Stream,
    StreamPage,
    StreamStarted,
    TransferResult,
    parse_page,
    render_extra_headers,
)
from app.telephony.rest_transport import RestTransport, json_body, json_object

if TYPE_CHECKING:
    from app.config import Settings

__all__ = [
    "DEFAULT_BASE_URL",
    "DTMF_DIGITS",
    "HEADER_NAME",
    "ActionResult",
    "CallFired",
    "Stream",
    "StreamPage",
    "StreamStarted",
    "TransferResult",
    "VobizAuthError",
    "VobizClient",
    "VobizConnectionError",
    "VobizError",
    "VobizNotFoundError",
    "VobizRateLimitError",
    "VobizServerError",
    "VobizTimeoutError",
    "VobizValidationError",
    "render_extra_headers",
]

log = logging.getLogger("app.vobiz.rest")
DTMF_DIGITS = re.compile(r"[0-9*#wW]{1,64}")

DEFAULT_BASE_URL = "https://api.vobiz.ai/api/v1"
_USER_AGENT = f"vobiz-voice-agent/0.1 httpx/{httpx.__version__}"
_IDEMPOTENT = frozenset({"GET", "DELETE"})
_MAX_BACKOFF = 8.0
_MAX_MESSAGE = 300


# ── client ─────────────────────────────────────────────────────────────────────


def _seg(value: str) -> str:
    """One URL-quoted path segment (a ``/`` in an id can never change the path)."""
    return quote(str(value), safe="")


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
        self._base = base_url.rstrip("/")
        self._transport = RestTransport(
            auth_id,
            auth_token,
            self._base,
            http=http,
            timeout=timeout,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
        )
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
        await self._transport.aclose()

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
        data = json_object(await self._transport.request("POST", self._stream_path(call_uuid), body=body))
        reply = Reply.model_validate(data)
        return StreamStarted(
            stream_id=reply.stream_id, message=reply.message, api_id=reply.api_id, raw=dict(data)
        )

    async def get_stream(self, call_uuid: str, stream_id: str) -> Stream:
        """One stream (active or stopped); ``VobizNotFoundError`` if unknown."""
        data = json_object(await self._transport.request("GET", self._stream_path(call_uuid, stream_id)))
        return Stream.from_api(data, stream_id=stream_id, call_uuid=call_uuid)

    async def list_streams(self, call_uuid: str, *, limit: int = 20, offset: int = 0) -> StreamPage:
        """A page of the call's streams, flat or ``{"meta": …, "objects": …}`` envelope."""
        params = {"limit": limit, "offset": offset}
        response = await self._transport.request("GET", self._stream_path(call_uuid), params=params)
        return parse_page(json_body(response), call_uuid, limit, offset)

    async def stop_stream(self, call_uuid: str, stream_id: str) -> bool:
        """Stop one stream: True if stopped (any 2xx), False on 404 (already gone, D14).

        After a retried 5xx, False can also mean the first attempt did stop it.
        """
        try:
            await self._transport.request("DELETE", self._stream_path(call_uuid, stream_id))
        except VobizNotFoundError:
            return False
        return True

    async def stop_all_streams(self, call_uuid: str) -> int | None:
        """Stop every stream of the call (idempotent).

        Returns the count if the server reports one (old 200 ``{"streams_stopped": n}``),
        None for the current 204, and 0 on a 404 (nothing active, old revision).
        """
        try:
            response = await self._transport.request("DELETE", self._stream_path(call_uuid))
        except VobizNotFoundError:
            return 0
        return Reply.model_validate(json_object(response)).streams_stopped

    # ── call control (§8) ──

    async def hangup_call(self, call_uuid: str) -> bool:
        """Hang up a live call: True on 2xx (204), False on 404 (already ended; D28: CDR source "API").

        After a retried 5xx, False can also mean the first attempt did hang up.
        """
        try:
            await self._transport.request("DELETE", self._call_path(call_uuid))
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
        data = json_object(await self._transport.request("POST", self._call_path(call_uuid), body=body))
        reply = Reply.model_validate(data)
        return TransferResult(
            call_uuid=reply.call_uuid or call_uuid, api_id=reply.api_id, message=reply.message, raw=dict(data)
        )

    async def send_dtmf(self, call_uuid: str, digits: str, *, leg: str = "aleg") -> ActionResult:
        """Play DTMF tones on a live call (``POST …/Call/{uuid}/DTMF/``). ``digits``: 0-9, ``*``,
        ``#``, and ``w``/``W`` for a 0.5 s / 1 s pause; ``leg``: ``aleg`` | ``bleg``. Never retried."""
        if not DTMF_DIGITS.fullmatch(digits):
            raise ValueError("digits may hold only 0-9, *, # and w/W pauses")
        data = json_object(
            await self._transport.request(
                "POST", f"{self._call_path(call_uuid)}DTMF/", body={"digits": digits, "leg": leg}
            )
        )
        reply = Reply.model_validate(data)
        return ActionResult(api_id=reply.api_id, message=reply.message, raw=data)

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
        data = json_object(await self._transport.request("POST", f"{self._account}/Call/", body=body))
        fired = FiredReply.model_validate(data)
        found = tuple(u for u in fired.call_uuids if u)
        return CallFired(
            call_uuid=found[0] if found else None,
            api_id=fired.api_id,
            message=fired.message,
            call_uuids=found,
            raw=dict(data),
        )

    async def get_call(self, call_uuid: str) -> dict[str, Any] | None:
        """The call's details (the Call object, PROTOCOL.md §8.4: ``call_duration``,
        ``hangup_cause_name``, ``answer_time``, ``end_time`` …) as sent, or None on 404 (not
        known yet, or no such call). Retried like every GET."""
        try:
            return dict(json_object(await self._transport.request("GET", self._call_path(call_uuid))))
        except VobizNotFoundError:
            return None

    # ── transport ──

    def _call_path(self, call_uuid: str) -> str:
        return f"{self._account}/Call/{_seg(call_uuid)}/"

    def _stream_path(self, call_uuid: str, stream_id: str | None = None) -> str:
        path = f"{self._call_path(call_uuid)}Stream/"
        return path if stream_id is None else f"{path}{_seg(stream_id)}/"
