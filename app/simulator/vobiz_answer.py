"""How the fake Vobiz reads an answer document and signs its callbacks: its own code.

The emulator checks the app, so it must not share the app's understanding: this module parses
``<Response><Stream>`` with the standard library's XML parser and the rules of PROTOCOL.md §1
(not ``app.telephony.xml``), and signs callbacks with HMAC-SHA256 as PROTOCOL.md §9 describes
(not ``app.telephony.signature``). A bug in the app's reading of the protocol then shows up as
a disagreement, end to end. ``tests/unit/test_vobiz_answer.py`` cross-checks both against the
``vobiz`` SDK.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass

__all__ = ["AnswerRefused", "AnsweredStream", "read_answer", "signature_headers"]

#: Vobiz refuses answers over 100 KiB (PROTOCOL.md §1.2).
_MAX_BYTES = 100 * 1024
#: contentType → (encoding, sample rate in Hz), PROTOCOL.md §1.3; absent means L16 at 8 kHz.
_FORMATS = {
    "audio/x-l16;rate=8000": ("l16", 8000),
    "audio/x-l16;rate=16000": ("l16", 16000),
    "audio/x-mulaw;rate=8000": ("mulaw", 8000),
}
_YES, _NO = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class AnswerRefused(ValueError):
    """The document is one Vobiz would not run; the message says why."""


@dataclass(frozen=True, slots=True)
class AnsweredStream:
    """The ``<Stream>`` of an answer. ``url`` is the element's text ("" when it has none: real
    Vobiz ignores a ``url`` attribute); ``stream_timeout`` is in seconds, None when absent."""

    url: str
    bidirectional: bool
    audio_track: str
    keep_call_alive: bool
    content_type: str
    encoding: str  # "l16" | "mulaw"
    sample_rate: int
    stream_timeout: int | None
    status_callback_url: str | None
    status_callback_method: str


def _name(tag: str) -> str:
    return tag.split("}")[-1]  # {namespace}Stream → Stream


def _flag(attributes: dict[str, str], name: str) -> bool:
    value = attributes.get(name, "false").strip().lower()
    if value in _YES:
        return True
    if value in _NO or not value:
        return False
    raise AnswerRefused(f"{name}={attributes[name]!r} is not true or false")


def read_answer(document: str) -> AnsweredStream:
    """The first ``<Stream>`` (or legacy ``<AudioStream>``) directly under ``<Response>``."""
    data = document.encode("utf-8")
    if len(data) > _MAX_BYTES:
        raise AnswerRefused(f"the answer is {len(data)} bytes, over Vobiz's {_MAX_BYTES}")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise AnswerRefused("the answer has a DTD")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise AnswerRefused(f"not well-formed XML: {exc}") from None
    if _name(root.tag) != "Response":
        raise AnswerRefused(f"the root element is <{_name(root.tag)}>, not <Response>")
    streams = [child for child in root if _name(child.tag) in ("Stream", "AudioStream")]
    if not streams:
        raise AnswerRefused("no <Stream> directly under <Response>")
    element = streams[0]
    attributes = {_name(key): value for key, value in element.attrib.items()}
    bidirectional = _flag(attributes, "bidirectional")
    track = attributes.get("audioTrack", "inbound").strip().lower() or "inbound"
    if track not in ("inbound", "outbound", "both"):
        raise AnswerRefused(f"audioTrack={track!r} is not inbound, outbound or both")
    if bidirectional and track == "both":
        raise AnswerRefused('audioTrack="both" with bidirectional="true" ends the call')
    content_type = "".join(attributes.get("contentType", "").split()).lower() or "audio/x-l16;rate=8000"
    if content_type not in _FORMATS:
        raise AnswerRefused(f"contentType={attributes['contentType']!r} is not one Vobiz streams")
    encoding, rate = _FORMATS[content_type]
    method = attributes.get("statusCallbackMethod", "POST").strip().upper() or "POST"
    if method not in ("GET", "POST"):
        raise AnswerRefused(f"statusCallbackMethod={method!r} is not GET or POST")
    timeout_text = attributes.get("streamTimeout", "").strip()
    timeout = None
    if timeout_text:
        if not timeout_text.lstrip("+").isdigit() or int(timeout_text) < 1:
            raise AnswerRefused(f"streamTimeout={timeout_text!r} is not a positive whole number")
        timeout = int(timeout_text)
    retries = attributes.get("maxRetries", "").strip()
    if retries and not retries.lstrip("+").isdigit():
        raise AnswerRefused(f"maxRetries={retries!r} is not a whole number")
    return AnsweredStream(
        url=(element.text or "").strip(),
        bidirectional=bidirectional,
        audio_track=track,
        keep_call_alive=_flag(attributes, "keepCallAlive"),
        content_type=content_type,
        encoding=encoding,
        sample_rate=rate,
        stream_timeout=timeout,
        status_callback_url=attributes.get("statusCallbackUrl", "").strip() or None,
        status_callback_method=method,
    )


def _hmac64(token: str, message: str) -> str:
    digest = hmac.new(token.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_headers(url: str, auth_token: str) -> dict[str, str]:
    """The headers Vobiz signs a callback to ``url`` with: V2 over ``base + nonce``, V3 over
    ``base + "." + nonce``, where ``base`` is the URL without its query or fragment; each with
    its own random 20-digit nonce."""
    base = url.split("#", 1)[0].split("?", 1)[0]
    v2_nonce = "".join(secrets.choice("0123456789") for _ in range(20))
    v3_nonce = "".join(secrets.choice("0123456789") for _ in range(20))
    return {
        "X-Vobiz-Signature-V2": _hmac64(auth_token, base + v2_nonce),
        "X-Vobiz-Signature-V2-Nonce": v2_nonce,
        "X-Vobiz-Signature-V3": _hmac64(auth_token, f"{base}.{v3_nonce}"),
        "X-Vobiz-Signature-V3-Nonce": v3_nonce,
    }
