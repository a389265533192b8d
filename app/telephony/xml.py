"""VobizXML for the answer webhook: build the ``<Stream>`` document, and parse one back.

Pure functions, no I/O. Builders return ``str`` documents whose prolog declares UTF-8, so the
HTTP layer must encode the body as UTF-8 and serve it as ``application/xml`` (PROTOCOL.md §1.2).

Exact in what we send: the WebSocket URL is the element *text* (never a ``url`` attribute, D22),
every value is XML-escaped (a bare ``&`` makes Vobiz drop the call with "Invalid Answer XML"),
attribute order is fixed, and combinations Vobiz rejects raise ``ValueError`` before they reach
a caller. Liberal in what we accept: :func:`parse_stream_xml` takes the variants seen in the wild.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import urlsplit

from app.telephony.errors import StreamXmlError

AudioTrack = Literal["inbound", "outbound", "both"]
CallbackMethod = Literal["GET", "POST"]

#: The only ``contentType`` values ``<Stream>`` accepts (PROTOCOL.md §1.3; 24 kHz is outbound only, D2).
CONTENT_TYPES: frozenset[str] = frozenset(
    {"audio/x-l16;rate=8000", "audio/x-l16;rate=16000", "audio/x-mulaw;rate=8000"}
)
#: What Vobiz assumes when ``contentType`` is absent.
DEFAULT_CONTENT_TYPE = "audio/x-l16;rate=8000"
#: Vobiz refuses answer documents larger than this (bytes, PROTOCOL.md §1.2).
MAX_DOCUMENT_BYTES = 100 * 1024
#: ``extraHeaders`` limit in bytes (UTF-8).
MAX_EXTRA_HEADERS_BYTES = 512
MAX_RETRIES_LIMIT = 10

PROLOG = '<?xml version="1.0" encoding="UTF-8"?>\n'

_AUDIO_TRACKS: frozenset[str] = frozenset(get_args(AudioTrack))
_METHODS: frozenset[str] = frozenset(get_args(CallbackMethod))
_STREAM_TAGS = ("Stream", "AudioStream")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_INTEGER = re.compile(r"[+-]?[0-9]+")
# characters XML 1.0 cannot carry at all, not even as character references
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_ATTR_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
)
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """The ``<Stream>`` element, field by field (PROTOCOL.md §1.3).

    ``url`` is the ``ws://``/``wss://`` endpoint Vobiz connects to, unescaped. ``stream_timeout`` is
    in seconds. ``extra_headers`` is the raw ``k1=v1,k2=v2`` string (it never reaches the socket,
    D21). ``max_retries`` is the reconnect budget (0-10). The dataclass does not validate itself so
    that :func:`parse_stream_xml` can describe whatever a document says; :func:`answer_xml` does.
    """

    url: str
    bidirectional: bool = True
    audio_track: AudioTrack = "inbound"
    keep_call_alive: bool = True
    content_type: str = "audio/x-mulaw;rate=8000"
    stream_timeout: int | None = None
    status_callback_url: str | None = None
    status_callback_method: CallbackMethod = "POST"
    extra_headers: str | None = None
    max_retries: int | None = None


# --------------------------------------------------------------------------- building


def answer_xml(stream: StreamSettings, *, hangup_after: bool = False) -> str:
    """The answer document: ``<Response><Stream …>url</Stream>[<Hangup/>]</Response>``.

    Raises ``ValueError`` for settings Vobiz would refuse or misread (see :func:`validate_settings`).
    ``hangup_after`` appends ``<Hangup/>``; without it the call ends by itself (cause 4010) once
    the stream ends.
    """
    validate_settings(stream)
    attrs: list[tuple[str, str]] = [
        ("bidirectional", _bool(stream.bidirectional)),
        ("audioTrack", stream.audio_track),
        ("keepCallAlive", _bool(stream.keep_call_alive)),
        ("contentType", stream.content_type),
    ]
    if stream.status_callback_url is not None:
        attrs.append(("statusCallbackUrl", stream.status_callback_url))
    if stream.status_callback_url is not None or stream.status_callback_method != "POST":
        attrs.append(("statusCallbackMethod", stream.status_callback_method))
    if stream.stream_timeout is not None:
        attrs.append(("streamTimeout", str(stream.stream_timeout)))
    if stream.extra_headers is not None:
        attrs.append(("extraHeaders", stream.extra_headers))
    if stream.max_retries is not None:
        attrs.append(("maxRetries", str(stream.max_retries)))
    rendered = "".join(f' {name}="{_escape_attr(value)}"' for name, value in attrs)
    body = f"<Stream{rendered}>{_escape_text(stream.url)}</Stream>"
    if hangup_after:
        body += "<Hangup/>"
    return f"{PROLOG}<Response>{body}</Response>"


def hangup_xml() -> str:
    """A document that hangs up at once (as the first verb, Vobiz treats it as a rejection)."""
    return f"{PROLOG}<Response><Hangup/></Response>"


def speak_hangup_xml(text: str) -> str:
    """Say ``text`` (Vobiz TTS, default voice and language), then hang up: a polite refusal."""
    if not text.strip():
        raise ValueError("speak text is empty")
    _check_chars("speak text", text)
    return f"{PROLOG}<Response><Speak>{_escape_text(text)}</Speak><Hangup/></Response>"


def voicemail_xml(text: str, wait_s: int = 30) -> str:
    """Wait (up to ``wait_s`` seconds) for an answering machine's beep, say ``text`` (Vobiz TTS),
    then hang up: a voicemail left on an outbound call."""
    if not text.strip():
        raise ValueError("voicemail text is empty")
    _check_chars("voicemail text", text)
    wait = max(1, min(int(wait_s), 120))
    return (
        f'{PROLOG}<Response><Wait length="{wait}" beep="true"/>'
        f"<Speak>{_escape_text(text)}</Speak><Hangup/></Response>"
    )


def dial_xml(number: str) -> str:
    """Connect the caller to ``number`` (E.164 digits, an optional leading ``+``)."""
    digits = number.strip()
    if not re.fullmatch(r"\+?[0-9]{6,15}", digits):
        raise ValueError(f"not a phone number: {number!r}")
    return f"{PROLOG}<Response><Dial><Number>{digits}</Number></Dial></Response>"


def validate_settings(stream: StreamSettings) -> None:
    """Raise ``ValueError`` unless ``stream`` is something we are willing to send to Vobiz."""
    _check_url("stream url", stream.url, ("ws", "wss"))
    if stream.audio_track not in _AUDIO_TRACKS:
        raise ValueError(f"audio_track must be one of {sorted(_AUDIO_TRACKS)}, got {stream.audio_track!r}")
    if stream.bidirectional and stream.audio_track == "both":
        raise ValueError(
            'audio_track="both" with bidirectional=True: Vobiz hangs up ("End Of XML Instructions");'
            ' use "inbound"'
        )
    if stream.keep_call_alive and not stream.bidirectional:
        raise ValueError("keep_call_alive requires bidirectional=True")
    if stream.content_type not in CONTENT_TYPES:
        raise ValueError(f"content_type must be one of {sorted(CONTENT_TYPES)}, got {stream.content_type!r}")
    if stream.status_callback_method not in _METHODS:
        raise ValueError(f"status_callback_method must be GET or POST, got {stream.status_callback_method!r}")
    if stream.status_callback_url is not None:
        _check_url("status_callback_url", stream.status_callback_url, ("http", "https"))
    timeout = stream.stream_timeout
    if timeout is not None and (not _is_int(timeout) or timeout <= 0):
        raise ValueError(f"stream_timeout must be a positive number of seconds, got {timeout!r}")
    if stream.max_retries is not None and (
        not _is_int(stream.max_retries) or not 0 <= stream.max_retries <= MAX_RETRIES_LIMIT
    ):
        raise ValueError(f"max_retries must be an integer 0-{MAX_RETRIES_LIMIT}, got {stream.max_retries!r}")
    if stream.extra_headers is not None:
        _check_chars("extra_headers", stream.extra_headers)
        if len(stream.extra_headers.encode("utf-8")) > MAX_EXTRA_HEADERS_BYTES:
            raise ValueError(f"extra_headers is longer than {MAX_EXTRA_HEADERS_BYTES} bytes")


def _check_url(what: str, url: str, schemes: tuple[str, ...]) -> None:
    _check_chars(what, url)
    if any(ch.isspace() for ch in url):
        raise ValueError(f"{what} contains whitespace: {url!r}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"{what} is not a URL: {url!r} ({exc})") from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        wanted = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ValueError(f"{what} must be a {wanted} URL with a host, got {url!r}")


def _check_chars(what: str, value: str) -> None:
    match = _XML_ILLEGAL.search(value)
    if match:
        raise ValueError(f"{what} contains a character XML cannot carry: {match.group()!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _escape_attr(value: str) -> str:
    return value.translate(_ATTR_ESCAPES)


def _escape_text(value: str) -> str:
    return value.translate(_TEXT_ESCAPES)


# --------------------------------------------------------------------------- parsing


def parse_stream_xml(document: str | bytes) -> StreamSettings:
    """The first ``<Stream>`` (or legacy ``<AudioStream>``) directly under ``<Response>``.

    Liberal: namespaces are ignored, booleans may be ``true``/``True``/``1``/``yes`` (and their
    negatives), integers may carry whitespace, ``contentType`` is compared without case or spaces,
    the URL falls back to a ``url`` attribute, unknown attributes are ignored. Absent attributes
    take *Vobiz's* defaults (``bidirectional``/``keepCallAlive`` false, ``audioTrack`` inbound,
    ``contentType`` ``audio/x-l16;rate=8000``), not this module's. The URL scheme is not checked.
    Raises :class:`StreamXmlError` naming the problem.
    """
    raw = document.encode("utf-8") if isinstance(document, str) else document
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise StreamXmlError(f"document is {len(raw)} bytes; Vobiz refuses answers over {MAX_DOCUMENT_BYTES}")
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise StreamXmlError("document has a DTD; VobizXML never uses one and it is not accepted")
    try:
        root = ET.fromstring(raw)
    except (ET.ParseError, ValueError) as exc:
        raise StreamXmlError(f"not well-formed XML: {exc}") from None
    if _local(root.tag) != "Response":
        raise StreamXmlError(f"root element is <{_local(root.tag)}>, expected <Response>")
    element = next((child for child in root if _local(child.tag) in _STREAM_TAGS), None)
    if element is None:
        raise StreamXmlError("no <Stream> element directly under <Response>")
    tag = _local(element.tag)
    attrs = {_local(name): value.strip() for name, value in element.attrib.items()}

    url = (element.text or "").strip() or attrs.get("url", "")
    if not url:
        raise StreamXmlError(f"<{tag}> has no URL (expected as the element text)")
    bidirectional = _parse_bool(tag, attrs, "bidirectional")
    track = attrs.get("audioTrack", "").lower() or "inbound"
    if track not in _AUDIO_TRACKS:
        raise StreamXmlError(f"<{tag}> audioTrack={track!r} is not one of {sorted(_AUDIO_TRACKS)}")
    if track == "both" and bidirectional:
        raise StreamXmlError(
            f'<{tag}> has audioTrack="both" with bidirectional="true": Vobiz would hang up'
            ' with "End Of XML Instructions"'
        )
    content_type = re.sub(r"\s+", "", attrs.get("contentType", "")).lower() or DEFAULT_CONTENT_TYPE
    if content_type not in CONTENT_TYPES:
        raise StreamXmlError(
            f"<{tag}> contentType={attrs['contentType']!r} is not supported;"
            f" use one of {sorted(CONTENT_TYPES)}"
        )
    method = attrs.get("statusCallbackMethod", "").upper() or "POST"
    if method not in _METHODS:
        raise StreamXmlError(f"<{tag}> statusCallbackMethod={method!r} is not GET or POST")
    return StreamSettings(
        url=url,
        bidirectional=bidirectional,
        audio_track=track,  # type: ignore[arg-type]  # checked against _AUDIO_TRACKS above
        keep_call_alive=_parse_bool(tag, attrs, "keepCallAlive"),
        content_type=content_type,
        stream_timeout=_parse_int(tag, attrs, "streamTimeout", minimum=1),
        status_callback_url=attrs.get("statusCallbackUrl") or None,
        status_callback_method=method,  # type: ignore[arg-type]  # checked against _METHODS above
        extra_headers=attrs.get("extraHeaders") or None,
        max_retries=_parse_int(tag, attrs, "maxRetries", minimum=0),
    )


def _local(name: str) -> str:
    """``{namespace}Local`` → ``Local``."""
    return name.rpartition("}")[2]


def _parse_bool(tag: str, attrs: dict[str, str], name: str) -> bool:
    value = attrs.get(name, "").lower()
    if value in _TRUE:
        return True
    if value in _FALSE or value == "":
        return False
    raise StreamXmlError(f"<{tag}> {name}={attrs[name]!r} is not a boolean")


def _parse_int(tag: str, attrs: dict[str, str], name: str, *, minimum: int) -> int | None:
    value = attrs.get(name, "")
    if value == "":
        return None
    if not _INTEGER.fullmatch(value):
        raise StreamXmlError(f"<{tag}> {name}={value!r} is not an integer")
    number = int(value)
    if number < minimum:
        raise StreamXmlError(f"<{tag}> {name}={value!r} must be at least {minimum}")
    return number
