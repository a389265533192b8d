"""Per-call stream tokens: the only authentication on the Vobiz media WebSocket.

Vobiz sends no headers of its own on the socket (PROTOCOL.md §9), so the answer webhook mints a
token and puts it in the ``<Stream>`` URL path; the socket handler verifies it before ``accept()``.
Pure functions, no I/O, no shared state: any replica holding the same secret can verify a token.

The URL shows up in proxy and access logs, so the token is encrypted (AEAD): it reveals nothing
of the call (numbers, persona, call id), only its rough length. Format (ASCII, URL-safe, at most
:data:`MAX_TOKEN_LENGTH` characters)::

    base64url(version || nonce || AES-256-GCM(key, nonce, padded payload, aad=DOMAIN || version))
    version = 0x02 (one byte); nonce = 12 random bytes; base64url without "=" padding
    key     = HKDF-SHA256(secret, salt=none, info=DOMAIN, 32 bytes)
    payload = UTF-8 compact JSON array [2, call_id, persona, expires_at] (+ caller, called),
              then spaces: 30 less the numbers' length (numbers up to 15 digits, whatever
              their length, give tokens of one length), then more to a multiple of 32 bytes

The GCM tag is checked before anything is decoded. ``expires_at`` is unix seconds; a token is
expired from that instant on.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.telephony.errors import TokenError

#: Longest token :func:`verify_token` looks at (characters); :func:`issue_token` never exceeds it.
MAX_TOKEN_LENGTH = 1024
#: Shortest secret accepted (bytes).
MIN_SECRET_BYTES = 16
FORMAT_VERSION = 2
NONCE_BYTES = 12
TAG_BYTES = 16
PAD_TO = 32
NUMBER_DIGITS = 15  # E.164's longest number: shorter ones are padded up to it
DOMAIN = b"vobiz-stream-token/aes-256-gcm"
_VERSION = bytes([FORMAT_VERSION])
_SHORTEST = 1 + NONCE_BYTES + PAD_TO + TAG_BYTES  # bytes: the shortest payload pads to 32
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class StreamClaims:
    """What a stream token vouches for. ``expires_at`` is unix seconds (UTC)."""

    call_id: str
    persona: str
    expires_at: int
    caller: str = ""  # the caller's number (digits), for the persona's {caller_number}
    called: str = ""  # the number called (digits), for the call record


def new_secret() -> bytes:
    """A fresh random 32-byte key (per process; share one across replicas via configuration)."""
    return secrets.token_bytes(32)


def issue_token(secret: bytes, claims: StreamClaims) -> str:
    """A token for ``claims``: only ``[A-Za-z0-9_-]``, safe in a URL path segment as is.

    Each call gives a different token (a random nonce). Raises ``ValueError`` for a short secret,
    claims of the wrong type, strings that are not valid Unicode (lone surrogates) or claims too
    long to fit in :data:`MAX_TOKEN_LENGTH`.
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
    payload += b" " * max(0, 2 * NUMBER_DIGITS - len(claims.caller) - len(claims.called))
    payload += b" " * (-len(payload) % PAD_TO)
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = _aead(secret).encrypt(nonce, payload, DOMAIN + _VERSION)
    token = base64.urlsafe_b64encode(_VERSION + nonce + sealed).rstrip(b"=").decode("ascii")
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError(f"claims too long: token would be {len(token)} > {MAX_TOKEN_LENGTH} characters")
    return token


def verify_token(secret: bytes, token: str, *, now: float) -> StreamClaims:
    """The claims of a genuine, unexpired ``token``; ``now`` is unix seconds.

    Raises :class:`TokenError` with ``reason`` ``"malformed"`` (wrong shape or version, checked
    before any crypto, or an authentic payload that does not decode), ``"bad-signature"`` (the
    AEAD tag fails: forged, altered or another secret's) or ``"expired"``.
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
    if not _TOKEN.fullmatch(token) or len(token) % 4 == 1:
        raise TokenError("malformed", "not one unpadded base64url segment")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    if len(raw) < _SHORTEST or (len(raw) - 1 - NONCE_BYTES - TAG_BYTES) % PAD_TO:
        raise TokenError("malformed", "impossible length")
    if raw[:1] != _VERSION:
        raise TokenError("malformed", f"unknown format version {raw[0]}")
    nonce, sealed = raw[1 : 1 + NONCE_BYTES], raw[1 + NONCE_BYTES :]
    try:
        payload = _aead(secret).decrypt(nonce, sealed, DOMAIN + _VERSION)
    except InvalidTag:
        raise TokenError("bad-signature", "authentication tag does not match") from None
    claims = _decode_claims(payload)
    if now >= claims.expires_at:
        raise TokenError("expired", f"expired at {claims.expires_at}, now {now:.0f}")
    return claims


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"stream token secret must be at least {MIN_SECRET_BYTES} bytes")


@functools.lru_cache(maxsize=8)
def _aead(secret: bytes) -> AESGCM:
    """The cipher for ``secret`` (the key derivation runs once per secret, not per token)."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DOMAIN).derive(secret)
    return AESGCM(key)


def _decode_claims(payload: bytes) -> StreamClaims:
    """Strict decode of a payload that already authenticated."""
    try:
        document: Any = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
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
        raise TokenError("malformed", "payload is not [2, call_id, persona, expires_at(, caller(, called))]")
    caller, called = (*document[4:], "", "")[:2]
    return StreamClaims(document[1], document[2], document[3], caller=caller, called=called)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")
