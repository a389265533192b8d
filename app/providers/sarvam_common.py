"""What Sarvam's speech-to-text (:mod:`app.providers.sarvam_stt`) and text-to-speech
(:mod:`app.providers.sarvam_tts`) share: the SDK client, error mapping, language codes, and
keeping the subscription key out of logs.

The key travels in the ``api-subscription-key`` header. The SDK's ``ApiError`` puts the request
headers (the key among them) in its ``str``: errors here are built from its status alone, and
never chained to it. The websockets client logs every handshake header at DEBUG
(``websockets.client``): :class:`RedactSubscriptionKey`, put on that logger at import, blanks
the key's value.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from sarvamai import AsyncSarvamAI
from sarvamai.core.api_error import ApiError
from sarvamai.environment import SarvamAIEnvironment
from websockets.exceptions import ConnectionClosed

from app.providers.errors import ProviderError

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_MODEL",
    "NOT_RETRYABLE_STATUS",
    "PROVIDER",
    "READ_TIMEOUT",
    "STT_LANGUAGES",
    "RedactSubscriptionKey",
    "closed_error",
    "make_client",
    "map_sarvam_error",
    "sarvam_language",
]

PROVIDER = "sarvam"
#: the languages of the realtime endpoint (``saaras:v3-realtime``), as Sarvam spells them
STT_LANGUAGES = (
    "en-IN", "hi-IN", "bn-IN", "kn-IN", "ml-IN", "mr-IN", "or-IN", "pa-IN", "ta-IN", "te-IN", "gu-IN",
    "as-IN", "ur-IN", "ne-IN", "kok-IN", "ks-IN", "sd-IN", "sa-IN", "sat-IN", "mni-IN", "brx-IN",
    "mai-IN", "doi-IN",
)  # fmt: skip
DEFAULT_MODEL = "saaras:v3-realtime"
CONNECT_TIMEOUT = 3.0  # seconds for a WebSocket handshake (STT), or a TTS response to start
READ_TIMEOUT = 8.0  # seconds between two pieces of a TTS response
NOT_RETRYABLE_STATUS = frozenset({400, 401, 402, 403, 404, 422})
_SUBSCRIPTION_HEADER = "api-subscription-key"


class RedactSubscriptionKey(logging.Filter):
    """Blanks the value of an ``api-subscription-key`` header in the websockets client's DEBUG
    handshake lines (``> %s: %s``), so a DEBUG log of that library never shows the key."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and str(args[0]).lower() == _SUBSCRIPTION_HEADER:
            record.args = (args[0], "<redacted>")
        return True


def _redact_websockets_client() -> None:
    for name in ("websockets.client", "websockets.protocol"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSubscriptionKey) for f in logger.filters):
            logger.addFilter(RedactSubscriptionKey())


_redact_websockets_client()


def make_client(
    api_key: str, base_url: str | None, http_client: httpx.AsyncClient | None = None
) -> AsyncSarvamAI:
    """An SDK client for ``base_url`` (``http[s]://host[:port]``; ``None``: Sarvam's cloud). The
    SDK opens WebSockets at ``environment.production`` and REST at ``environment.base``."""
    extra: dict[str, Any] = {} if http_client is None else {"httpx_client": http_client}
    if base_url is None:
        return AsyncSarvamAI(api_subscription_key=api_key, **extra)
    http = base_url.rstrip("/").replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    ws = http.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    env = SarvamAIEnvironment(base=http, creative=f"{http}/dubbing", production=ws)
    return AsyncSarvamAI(api_subscription_key=api_key, environment=env, **extra)


def map_sarvam_error(exc: BaseException, during: str) -> ProviderError:
    """``ProviderError`` for an SDK/transport failure while ``during``: the status only (an
    ``ApiError``'s text holds the request headers, the key among them). Not retryable: HTTP
    400/401/402/403/404/422; retryable: other statuses, lost connections, timeouts."""
    if isinstance(exc, ApiError):
        status = exc.status_code or 0
        kind = "authentication failed" if status in (401, 403) else "request refused"
        retryable = status not in NOT_RETRYABLE_STATUS
        return ProviderError(PROVIDER, f"{during}: HTTP {status} ({kind})", retryable=retryable)
    if isinstance(exc, ConnectionClosed):
        code = exc.rcvd.code if exc.rcvd is not None else 1006
        return closed_error(code, during)
    return ProviderError(PROVIDER, f"{during}: {type(exc).__name__}", retryable=True)


def closed_error(code: int, during: str) -> ProviderError:
    """The socket closed with ``code``: 4000 (Sarvam rejected the session's settings) and 1003
    (invalid key or quota; a rate limit says so first in an ``error`` frame) are not retried."""
    if code in (4000, 1003):
        return ProviderError(PROVIDER, f"{during}: connection closed ({code}, rejected)", retryable=False)
    return ProviderError(PROVIDER, f"{during}: connection closed ({code})", retryable=True)


def sarvam_language(tag: str, supported: tuple[str, ...] = STT_LANGUAGES) -> str:
    """The Sarvam code for a persona's language: itself when Sarvam knows it; ``en-IN`` for any
    English; ``od-IN``/``or-IN`` (Odia) as ``supported`` spells it; else ``auto`` (detect)."""
    if tag in supported:
        return tag
    lower = tag.lower()
    if lower.startswith("en"):
        return "en-IN"
    prefix = lower.split("-")[0]
    for code in supported:
        head = code.split("-")[0]
        if head == prefix or {head, prefix} == {"od", "or"}:
            return code
    return "auto"
