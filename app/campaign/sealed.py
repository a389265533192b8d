"""A contact's variables, sealed into the URLs Vobiz fetches for its call (pure).

The answer and machine-detection URLs land in Vobiz's and proxies' logs, so the values (a name,
a due date) travel encrypted and authenticated (AES-256-GCM): nobody without the key can read
them, and nobody can forge values into a persona's prompt through a crafted URL. The key is
derived (HKDF) from ``STREAM_TOKEN_SECRET`` when set, else from ``VOBIZ_AUTH_TOKEN``: the
campaign command and the service read the same settings. Format: base64url(nonce || ciphertext).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

DOMAIN = b"voice-agent campaign variables/aes-256-gcm"
MAX_SEALED_CHARS = 2000  # a callback field is at most 2048 characters (app/telephony/callback.py)
_NONCE = 12


class SealError(ValueError):
    pass


def campaign_key(stream_token_secret: str, vobiz_auth_token: str) -> bytes:
    secret = (stream_token_secret or vobiz_auth_token).encode()
    if len(secret) < 8:
        raise SealError("set VOBIZ_AUTH_TOKEN (or STREAM_TOKEN_SECRET): it keys the campaign's variables")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DOMAIN).derive(secret)


def seal(key: bytes, values: Mapping[str, str]) -> str:
    """``values`` as URL-safe text; ``SealError`` if too long for a callback field."""
    plain = json.dumps(dict(values), ensure_ascii=False, separators=(",", ":")).encode()
    nonce = secrets.token_bytes(_NONCE)
    text = base64.urlsafe_b64encode(nonce + AESGCM(key).encrypt(nonce, plain, DOMAIN)).decode().rstrip("=")
    if len(text) > MAX_SEALED_CHARS:
        raise SealError(f"a contact's values are too long ({len(plain)} bytes); shorten them")
    return text


def unseal(key: bytes, text: str) -> dict[str, str]:
    """The values sealed in ``text``; ``SealError`` if it is not one of ours, or was altered."""
    if not text or len(text) > MAX_SEALED_CHARS:
        raise SealError("no sealed values")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        plain = AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], DOMAIN)
        values = json.loads(plain)
    except (ValueError, InvalidTag) as exc:
        raise SealError("sealed values do not verify") from exc
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in values.items()
    ):
        raise SealError("sealed values are not a mapping of text")
    return values
