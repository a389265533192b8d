"""``X-Voice-Agent-Signature: sha256=<hex>``: HMAC-SHA256 of the raw body under the webhook secret."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Voice-Agent-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The header's value for ``body`` (the exact bytes sent)."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str) -> bool:
    """True when ``header`` is the signature of ``body`` (compared in constant time)."""
    return hmac.compare_digest(sign(body, secret).encode(), header.strip().encode())
