"""Every error of the Vobiz boundary (``app/telephony``), in one place.

::

    Exception
    ├── VobizError                    a failed REST request (rest.py)
    │   ├── VobizAuthError            401/403
    │   ├── VobizNotFoundError        404
    │   ├── VobizValidationError      400/409/422
    │   ├── VobizRateLimitError       429 (retry_after)
    │   ├── VobizServerError          5xx: outcome unknown
    │   └── VobizConnectionError      no HTTP response
    │       └── VobizTimeoutError     timed out
    └── ValueError
        ├── ProtocolError             a media-socket message that cannot be read (events.py)
        ├── CallbackFieldError        a webhook form field that cannot be read (callback.py)
        ├── StreamXmlError            answer XML that cannot be built (xml.py)
        └── TokenError                a media-socket token that is forged or expired (token.py)
"""

from __future__ import annotations

from typing import Literal

TokenErrorReason = Literal["malformed", "bad-signature", "expired"]


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


ERROR_BY_STATUS: dict[int, type[VobizError]] = {  # 5xx: VobizServerError, else VobizError
    400: VobizValidationError,
    401: VobizAuthError,
    403: VobizAuthError,
    404: VobizNotFoundError,
    409: VobizValidationError,
    422: VobizValidationError,
    429: VobizRateLimitError,
}


# ── reading and building what crosses the boundary ──


class ProtocolError(ValueError):
    """A frame from Vobiz that cannot be understood. The call goes on; the frame is dropped."""


class CallbackFieldError(ValueError):
    """A callback field is missing its bounds or its form. The message names the field, never
    its value (a value may be a phone number, or megabytes)."""


class StreamXmlError(ValueError):
    """An answer document that Vobiz would not stream from; the message says why."""


class TokenError(ValueError):
    """A token that must not open a stream; ``reason`` is machine-readable, the message is for logs."""

    def __init__(self, reason: TokenErrorReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: TokenErrorReason = reason
