"""Vobiz webhook signatures, V2/V3 and their sub-account (MA) variants (PROTOCOL.md §9, D23).

Pure functions, no I/O. The key is the account auth token encoded as UTF-8; the signed message is
the callback URL without query or fragment, followed by the nonce (V2) or by ``"."`` and the nonce
(V3). Signatures travel as standard base64 of the 32-byte HMAC-SHA256 digest. The body is *not*
signed and there is no timestamp, so a valid signature proves only that the sender knows the token
and the URL. Callers must pass the *public* URL Vobiz called, not the URL seen behind a proxy.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

SignatureVersion = Literal["v3", "v2", "ma-v3", "ma-v2"]
SignatureReason = Literal["valid", "missing", "missing-nonce", "no-token", "mismatch"]

V2_HEADER = "X-Vobiz-Signature-V2"
V2_NONCE_HEADER = "X-Vobiz-Signature-V2-Nonce"
V3_HEADER = "X-Vobiz-Signature-V3"
V3_NONCE_HEADER = "X-Vobiz-Signature-V3-Nonce"
MA_V2_HEADER = "X-Vobiz-Signature-MA-V2"
MA_V3_HEADER = "X-Vobiz-Signature-MA-V3"
MA_V2_NONCE_HEADER = "X-Vobiz-Signature-MA-V2-Nonce"
MA_V3_NONCE_HEADER = "X-Vobiz-Signature-MA-V3-Nonce"

NONCE_DIGITS = 20
_DIGEST_BYTES = hashlib.sha256().digest_size


@dataclass(frozen=True, slots=True)
class SignatureResult:
    """Outcome of :func:`verify_signature`.

    ``version`` names the header that validated (``None`` unless ``ok``). ``reason`` is ``"valid"``,
    ``"missing"`` (no signature header at all), ``"missing-nonce"`` (signatures but no nonce to
    check them with), ``"no-token"`` (no non-empty token to check with) or ``"mismatch"``.
    ``nonces`` are the nonces of every signature that validated (V2 and V3 carry one each): a
    replay keeps any one of them, so remembering them all catches a replay that drops a header.
    """

    ok: bool
    version: SignatureVersion | None
    reason: SignatureReason
    nonces: tuple[str, ...] = field(default=(), compare=False)  # the verdict is the value


@dataclass(frozen=True, slots=True)
class _Scheme:
    version: SignatureVersion
    header: str
    nonce_headers: tuple[str, ...]  # first one present wins
    dotted: bool  # V3 puts "." between URL and nonce
    parent: bool  # keyed with the parent (main) account token


# tried in this order: V3 is preferred, MA variants only after the account's own signatures
_SCHEMES = (
    _Scheme("v3", V3_HEADER, (V3_NONCE_HEADER,), dotted=True, parent=False),
    _Scheme("v2", V2_HEADER, (V2_NONCE_HEADER,), dotted=False, parent=False),
    # MA headers may carry their own nonce; Plivo-style senders reuse the plain V3/V2 nonce
    _Scheme("ma-v3", MA_V3_HEADER, (MA_V3_NONCE_HEADER, V3_NONCE_HEADER), dotted=True, parent=True),
    _Scheme("ma-v2", MA_V2_HEADER, (MA_V2_NONCE_HEADER, V2_NONCE_HEADER), dotted=False, parent=True),
)


def base_url(url: str) -> str:
    """``scheme://netloc/path`` of ``url``: query and fragment dropped, nothing else normalised.

    Case, port, path parameters (``;x``) and a missing trailing slash are kept exactly as given,
    because the signature covers the URL as Vobiz wrote it.
    """
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def compute_v2(auth_token: str, url: str, nonce: str) -> str:
    """base64(HMAC-SHA256(auth_token, base_url(url) + nonce)), all strings UTF-8."""
    return _b64(_digest(auth_token, url, nonce, dotted=False))


def compute_v3(auth_token: str, url: str, nonce: str) -> str:
    """base64(HMAC-SHA256(auth_token, base_url(url) + "." + nonce)), all strings UTF-8."""
    return _b64(_digest(auth_token, url, nonce, dotted=True))


def verify_signature(
    headers: Mapping[str, str],
    url: str,
    auth_token: str,
    *,
    parent_auth_token: str | None = None,
) -> SignatureResult:
    """Check a callback's signature headers against ``url`` (the public URL Vobiz requested).

    Header names are matched case-insensitively; values may carry surrounding whitespace, a
    trailing newline, missing base64 padding or a comma-separated list of signatures (any one
    valid suffices). Tries V3, V2, MA-V3, MA-V2; MA variants are keyed with ``parent_auth_token``
    when given, else with ``auth_token`` (a main account signs them with its own token). An empty
    token never validates. Digests are compared in constant time.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    seen_signature = seen_nonce = seen_key = False
    valid: list[tuple[SignatureVersion, str]] = []
    for scheme in _SCHEMES:  # every scheme, not the first valid: see ``SignatureResult.nonces``
        provided = lowered.get(scheme.header.lower(), "").strip()
        if not provided:
            continue
        seen_signature = True
        nonce = next(
            (n for n in (lowered.get(h.lower(), "").strip() for h in scheme.nonce_headers) if n),
            "",
        )
        if not nonce:
            continue
        seen_nonce = True
        key = (parent_auth_token or auth_token) if scheme.parent else auth_token
        if not key:
            continue
        seen_key = True
        expected = _digest(key, url, nonce, dotted=scheme.dotted)
        if _matches(provided, expected):
            valid.append((scheme.version, nonce))
    if valid:
        nonces = tuple(dict.fromkeys(nonce for _, nonce in valid))
        return SignatureResult(ok=True, version=valid[0][0], reason="valid", nonces=nonces)
    if not seen_signature:
        return SignatureResult(ok=False, version=None, reason="missing")
    if not seen_nonce:
        return SignatureResult(ok=False, version=None, reason="missing-nonce")
    if not seen_key:
        return SignatureResult(ok=False, version=None, reason="no-token")
    return SignatureResult(ok=False, version=None, reason="mismatch")


def sign_headers(
    url: str,
    auth_token: str,
    *,
    nonce: str | None = None,
    parent_auth_token: str | None = None,
) -> dict[str, str]:
    """The V2 and V3 headers Vobiz would send for a callback to ``url`` (for the emulator/tests).

    Each version gets its own random 20-digit nonce unless ``nonce`` is given (then both use it).
    With ``parent_auth_token``, MA-V2/MA-V3 headers keyed with it are added, reusing the nonces.
    """
    if not auth_token:
        raise ValueError("auth_token is empty; nothing signed with it would ever verify")
    nonce_v2 = nonce if nonce is not None else new_nonce()
    nonce_v3 = nonce if nonce is not None else new_nonce()
    out = {
        V2_HEADER: compute_v2(auth_token, url, nonce_v2),
        V2_NONCE_HEADER: nonce_v2,
        V3_HEADER: compute_v3(auth_token, url, nonce_v3),
        V3_NONCE_HEADER: nonce_v3,
    }
    if parent_auth_token:
        out[MA_V2_HEADER] = compute_v2(parent_auth_token, url, nonce_v2)
        out[MA_V3_HEADER] = compute_v3(parent_auth_token, url, nonce_v3)
    return out


def new_nonce() -> str:
    """A random nonce of exactly 20 decimal digits (leading zeros kept)."""
    return f"{secrets.randbelow(10**NONCE_DIGITS):0{NONCE_DIGITS}d}"


def _digest(key: str, url: str, nonce: str, *, dotted: bool) -> bytes:
    message = base_url(url) + ("." if dotted else "") + nonce
    return hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _matches(provided: str, expected: bytes) -> bool:
    """Any comma-separated candidate in ``provided`` decodes to ``expected`` (constant-time compare)."""
    found = False
    for candidate in provided.split(","):
        decoded = _decode(candidate.strip())
        # compare every candidate, never stopping early on a hit
        found |= decoded is not None and hmac.compare_digest(decoded, expected)
    return found


def _decode(value: str) -> bytes | None:
    """Standard or URL-safe base64, padding optional; ``None`` unless it is a SHA-256 digest."""
    try:
        raw = value.encode("ascii")
        raw = raw.replace(b"-", b"+").replace(b"_", b"/").rstrip(b"=")
        decoded = base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None
    return decoded if len(decoded) == _DIGEST_BYTES else None
