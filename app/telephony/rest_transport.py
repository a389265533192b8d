"""Sending one Vobiz REST request: auth headers, JSON, bounded retries, errors by status.

Only idempotent requests (GET, DELETE) are retried, and only on 5xx or transport errors. Error
messages never hold the auth token (it is redacted from server text too).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential, wait_random

from app.telephony.errors import (
    ERROR_BY_STATUS,
    VobizConnectionError,
    VobizError,
    VobizRateLimitError,
    VobizServerError,
    VobizTimeoutError,
)
from app.telephony.rest_models import error_details

log = logging.getLogger("app.vobiz.rest")

_USER_AGENT = f"vobiz-voice-agent/0.1 httpx/{httpx.__version__}"
_IDEMPOTENT = frozenset({"GET", "DELETE"})
_MAX_BACKOFF = 8.0
_MAX_MESSAGE = 300


def json_body(response: httpx.Response) -> Any:
    """The decoded JSON body, or None for an empty / non-JSON body."""
    if not response.content.strip():
        return None
    try:
        return response.json()
    except ValueError:
        return None


def json_object(response: httpx.Response) -> Mapping[str, Any]:
    data = json_body(response)
    return data if isinstance(data, dict) else {}


def _error_details(response: httpx.Response) -> tuple[str, str | None, str | None, str | None]:
    """(message, api_id, request_id, code) from either envelope, ``message``/``detail``, or text."""
    data = json_body(response)
    api_id = request_id = code = None
    if isinstance(data, dict):
        message, api_id, request_id, code = error_details(data)
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


class RestTransport:
    """Sends requests for one account; owns ``http`` only if it created it."""

    def __init__(
        self,
        auth_id: str,
        auth_token: str,
        base_url: str,
        *,
        http: httpx.AsyncClient | None,
        timeout: float,
        max_retries: int,
        retry_backoff: float,
    ) -> None:
        self._auth_id = auth_id
        self._token = auth_token
        self._base = base_url
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = retry_backoff

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_http:
            await self._http.aclose()

    async def request(
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
        cls = ERROR_BY_STATUS.get(status) or (VobizServerError if status >= 500 else VobizError)
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
