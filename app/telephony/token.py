"""Per-call stream tokens: the only authentication on the Vobiz media WebSocket.

Vobiz sends no headers of its own on the socket (PROTOCOL.md §9), so the answer webhook mints a
token and puts it in the ``<Stream>`` URL path; the socket handler verifies it before ``accept()``.
Pure functions, no I/O, no shared state: any replica holding the same secret can verify a token.

Format (ASCII, URL-safe, at most :data:`MAX_TOKEN_LENGTH` characters)::

    base64url(payload) "." base64url(tag)            (both without "=" padding)
    payload = UTF-8 compact JSON array [1, call_id, persona, expires_at] (+ caller, called)
    tag     = HMAC-SHA256(secret, b"vobiz-stream-token." + base64url(payload))[:16]

The tag covers the *encoded* payload, so it is checked (in constant time) before anything is
decoded. ``expires_at`` is unix seconds; a token is expired from that instant on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

TokenErrorReason = Literal["malformed", "bad-signature", "expired"]

#: Longest token :func:`verify_token` looks at (characters); :func:`issue_token` never exceeds it.
MAX_TOKEN_LENGTH = 1024
#: Shortest secret accepted (bytes).
MIN_SECRET_BYTES = 16
TAG_BYTES = 16
FORMAT_VERSION = 1
_DOMAIN = b"vobiz-stream-token."
_TAG_CHARS = len(base64.urlsafe_b64encode(b"\0" * TAG_BYTES).rstrip(b"="))
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class StreamClaims:
    """What a stream token vouches for. ``expires_at`` is unix seconds (UTC)."""

    call_id: str
    persona: str
    expires_at: int
    caller: str = ""  # the caller's number (digits), for the persona's {caller_number}
    called: str = ""  # the number called (digits), for the call record


class TokenError(ValueError):
    """A token that must not open a stream; ``reason`` is machine-readable, the message is for logs."""

    def __init__(self, reason: TokenErrorReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: TokenErrorReason = reason


def new_secret() -> bytes:
    """A fresh random 32-byte key (per process; share one across replicas via configuration)."""
    return secrets.token_bytes(32)


def issue_token(secret: bytes, claims: StreamClaims) -> str:
    """A token for ``claims``: only ``[A-Za-z0-9_.-]``, safe in a URL path segment as is.

    Raises ``ValueError`` for a short secret, claims of the wrong type, strings that are not valid
    Unicode (lone surrogates) or claims too long to fit in :data:`MAX_TOKEN_LENGTH`.
    """
    _check_secret(secret)
    if not all(isinstance(v, str) for v in (claims.call_id, claims.persona, claims.caller, claims.called)):
        raise ValueError("call_id, persona, caller and called must be str")
    if not isinstance(claims.expires_at, int) or isinstance(claims.expires_at, bool):
        raise ValueError("expires_at must be an int (unix seconds)")
    document: list[object] = [FORMAT_VERSION, claims.call_id, claims.persona, claims.expires_at]
    if claims.caller or claims.called:
        document.append(claims.caller)
    if claims.called:
        document.append(claims.called)
    try:
        payload = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"claims are not valid Unicode: {exc}") from None
    segment = _b64encode(payload)
    token = f"{segment}.{_tag(secret, segment)}"
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError(f"claims too long: token would be {len(token)} > {MAX_TOKEN_LENGTH} characters")
    return token


def verify_token(secret: bytes, token: str, *, now: float) -> StreamClaims:
    """The claims of a genuine, unexpired ``token``; ``now`` is unix seconds.

    Raises :class:`TokenError` with ``reason`` ``"malformed"`` (wrong shape, checked before any
    crypto, or a signed payload that does not decode), ``"bad-signature"`` or ``"expired"``.
    Raises plain ``ValueError`` for a misconfiguration: a secret shorter than
    :data:`MIN_SECRET_BYTES`, or a ``now`` that is NaN/infinite (NaN would compare as "not expired").
    """
    _check_secret(secret)
    if not math.isfinite(now):
        raise ValueError(f"now must be a finite unix time, got {now!r}")
    if not isinstance(token, str) or not token:
        raise TokenError("malformed", "empty token")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("malformed", f"token longer than {MAX_TOKEN_LENGTH} characters")
    segment, dot, tag = token.partition(".")
    if not dot or not _SEGMENT.fullmatch(segment) or not _SEGMENT.fullmatch(tag):
        raise TokenError("malformed", "expected two base64url segments joined by '.'")
    if len(tag) != _TAG_CHARS or len(segment) % 4 == 1:
        raise TokenError("malformed", "segment lengths are impossible")
    if not hmac.compare_digest(tag.encode("ascii"), _tag(secret, segment).encode("ascii")):
        raise TokenError("bad-signature", "tag does not match")
    claims = _decode_claims(segment)
    if now >= claims.expires_at:
        raise TokenError("expired", f"expired at {claims.expires_at}, now {now:.0f}")
    return claims


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"stream token secret must be at least {MIN_SECRET_BYTES} bytes")


def _tag(secret: bytes, segment: str) -> str:
    mac = hmac.new(secret, _DOMAIN + segment.encode("ascii"), hashlib.sha256).digest()
    return _b64encode(mac[:TAG_BYTES])


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_claims(segment: str) -> StreamClaims:
    """Strict decode of a payload whose tag already verified."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        document: Any = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise TokenError("malformed", f"payload does not decode: {exc}") from None
    if not (
        isinstance(document, list)
        and len(document) in (4, 5, 6)
        and type(document[0]) is int
        and document[0] == FORMAT_VERSION
        and isinstance(document[1], str)
        and isinstance(document[2], str)
        and type(document[3]) is int
        and all(isinstance(extra, str) for extra in document[4:])
    ):
        raise TokenError("malformed", "payload is not [1, call_id, persona, expires_at(, caller(, called))]")
    caller, called = (*document[4:], "", "")[:2]
    return StreamClaims(document[1], document[2], document[3], caller=caller, called=called)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")
