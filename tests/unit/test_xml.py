"""Answer-webhook XML: the parsed structure (not a byte snapshot), escaping, validation, liberal
parsing, SDK cross-check."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from vobiz import vobizxml

from app.telephony.errors import StreamXmlError
from app.telephony.xml import StreamSettings, answer_xml, hangup_xml, parse_stream_xml, speak_hangup_xml

PROLOG = '<?xml version="1.0" encoding="UTF-8"?>\n'
WS = "wss://agent.example.com/vobiz/media/TOKEN123"
CB = "https://agent.example.com/vobiz/stream-status"
L16_8K = "audio/x-l16;rate=8000"
TYPICAL = StreamSettings(url=WS, status_callback_url=CB)


def stream_of(document: str) -> ET.Element:
    element = ET.fromstring(document.encode("utf-8")).find("Stream")
    assert element is not None
    return element


Node = tuple[str, dict[str, str], str | None, list["Node"]]


def tree(document: str) -> Node:
    """The document as (tag, attributes, text, children): attribute order and quoting aside."""
    assert document.startswith(PROLOG)  # an XML declaration naming UTF-8

    def node(element: ET.Element) -> Node:
        return (element.tag, dict(element.attrib), element.text, [node(child) for child in element])

    return node(ET.fromstring(document.encode("utf-8")))


def stream_node(url: str, **attributes: str) -> Node:
    return ("Response", {}, None, [("Stream", attributes, url, [])])


def wrap(stream: str) -> str:
    return f"<Response>{stream}</Response>"


# --------------------------------------------------------------------------- building


def test_typical_document() -> None:
    assert tree(answer_xml(TYPICAL)) == stream_node(
        WS,
        bidirectional="true",
        audioTrack="inbound",
        keepCallAlive="true",
        contentType="audio/x-mulaw;rate=8000",
        statusCallbackUrl=CB,
        statusCallbackMethod="POST",
    )


def test_every_optional_attribute_and_hangup() -> None:
    settings = StreamSettings(
        url=WS,
        content_type="audio/x-l16;rate=16000",
        stream_timeout=600,
        status_callback_url=CB,
        status_callback_method="GET",
        extra_headers="callId=abc,persona=sales",
        max_retries=3,
    )
    stream = {
        "bidirectional": "true",
        "audioTrack": "inbound",
        "keepCallAlive": "true",
        "contentType": "audio/x-l16;rate=16000",
        "statusCallbackUrl": CB,
        "statusCallbackMethod": "GET",
        "streamTimeout": "600",
        "extraHeaders": "callId=abc,persona=sales",
        "maxRetries": "3",
    }
    assert tree(answer_xml(settings, hangup_after=True)) == (
        "Response",
        {},
        None,
        [("Stream", stream, WS, []), ("Hangup", {}, None, [])],
    )


def test_optional_attributes_omitted_when_unset() -> None:
    receive_only = StreamSettings(url="ws://127.0.0.1:9000/m", bidirectional=False, keep_call_alive=False)
    assert tree(answer_xml(receive_only)) == stream_node(
        "ws://127.0.0.1:9000/m",
        bidirectional="false",
        audioTrack="inbound",
        keepCallAlive="false",
        contentType="audio/x-mulaw;rate=8000",
    )
    # receive-only streams may take both tracks
    both = dataclasses.replace(receive_only, audio_track="both")
    assert stream_of(answer_xml(both)).get("audioTrack") == "both"


def test_escaping_of_url_and_callback() -> None:
    url = 'wss://agent.example.com/m?call=a&token=b<c>"d"'
    callback = 'https://agent.example.com/status?x=1&y=<2>&z="3"'
    extra = 'a="1"&b=<2>'
    document = answer_xml(StreamSettings(url=url, status_callback_url=callback, extra_headers=extra))
    assert 'wss://agent.example.com/m?call=a&amp;token=b&lt;c&gt;"d"</Stream>' in document
    assert 'statusCallbackUrl="https://agent.example.com/status?x=1&amp;y=&lt;2&gt;&amp;z=&quot;3&quot;"' in (
        document
    )
    assert "&token" not in document
    assert "&y" not in document
    element = stream_of(document)
    assert element.text == url
    assert element.get("statusCallbackUrl") == callback
    assert element.get("extraHeaders") == extra
    assert "url" not in element.attrib


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"audio_track": "both"}, "End Of XML Instructions"),
        ({"keep_call_alive": True, "bidirectional": False}, "requires bidirectional"),
        ({"url": "https://agent.example.com/m"}, "ws:// or wss://"),
        ({"url": "/vobiz/media/x"}, "ws:// or wss://"),
        ({"url": "wss:///no-host"}, "with a host"),
        ({"url": ""}, "ws:// or wss://"),
        ({"url": "wss://a.example/m x"}, "whitespace"),
        ({"url": "wss://a.example/m\x00"}, "XML cannot carry"),
        ({"url": "wss://[::1/m"}, "not a URL"),
        ({"content_type": "audio/x-l16;rate=24000"}, "content_type"),
        ({"content_type": "audio/x-mulaw"}, "content_type"),
        ({"content_type": "audio/x-mulaw; rate=8000"}, "content_type"),
        ({"content_type": "audio/pcmu"}, "content_type"),
        ({"audio_track": "caller"}, "audio_track"),
        ({"status_callback_method": "PUT"}, "GET or POST"),
        ({"status_callback_url": "ftp://agent.example.com/s"}, "http:// or https://"),
        ({"status_callback_url": "https://a.example/s?x=1\n"}, "whitespace"),
        ({"stream_timeout": 0}, "stream_timeout"),
        ({"stream_timeout": -5}, "stream_timeout"),
        ({"stream_timeout": True}, "stream_timeout"),
        ({"max_retries": 11}, "max_retries"),
        ({"max_retries": -1}, "max_retries"),
        ({"extra_headers": "k=" + "v" * 511}, "512 bytes"),
        ({"extra_headers": "k=\x07"}, "XML cannot carry"),
    ],
)
def test_answer_xml_refuses(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        answer_xml(dataclasses.replace(TYPICAL, **changes))


def test_answer_xml_accepts_boundaries() -> None:
    edge = dataclasses.replace(
        TYPICAL, url="WSS://A.example:443/m", max_retries=10, stream_timeout=1, extra_headers="k=" + "v" * 510
    )
    attrs = stream_of(answer_xml(edge)).attrib
    assert (attrs["maxRetries"], attrs["streamTimeout"], len(attrs["extraHeaders"])) == ("10", "1", 512)
    assert stream_of(answer_xml(dataclasses.replace(TYPICAL, max_retries=0))).get("maxRetries") == "0"


def test_hangup_xml() -> None:
    assert tree(hangup_xml()) == ("Response", {}, None, [("Hangup", {}, None, [])])


def test_speak_hangup_xml() -> None:
    assert tree(speak_hangup_xml("Sorry, we're closed.")) == (
        "Response",
        {},
        None,
        [("Speak", {}, "Sorry, we're closed.", []), ("Hangup", {}, None, [])],
    )
    document = speak_hangup_xml('Tom & Jerry <say> "hi"')
    root = ET.fromstring(document.encode("utf-8"))
    assert [child.tag for child in root] == ["Speak", "Hangup"]
    assert root[0].text == 'Tom & Jerry <say> "hi"'


@pytest.mark.parametrize("text", ["", "   ", "bell \x07"])
def test_speak_hangup_xml_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="speak text"):
        speak_hangup_xml(text)


# --------------------------------------------------------------------------- parsing

ROUND_TRIP = [
    TYPICAL,
    StreamSettings(url=WS),
    StreamSettings(url="ws://127.0.0.1:8000/m?a=1&b=2", bidirectional=False, keep_call_alive=False),
    StreamSettings(url=WS, bidirectional=False, keep_call_alive=False, audio_track="both"),
    StreamSettings(url=WS, bidirectional=False, keep_call_alive=False, audio_track="outbound"),
    StreamSettings(url=WS, content_type="audio/x-l16;rate=8000", status_callback_method="GET"),
    StreamSettings(
        url=WS + "?q=<&>",
        content_type="audio/x-l16;rate=16000",
        stream_timeout=86400,
        status_callback_url=CB + "?a=1&b='2'",
        status_callback_method="GET",
        extra_headers="a=1,b=2",
        max_retries=0,
    ),
]


@pytest.mark.parametrize("settings", ROUND_TRIP)
@pytest.mark.parametrize("hangup_after", [False, True])
def test_round_trip(settings: StreamSettings, hangup_after: bool) -> None:
    document = answer_xml(settings, hangup_after=hangup_after)
    assert parse_stream_xml(document) == settings
    assert parse_stream_xml(document.encode("utf-8")) == settings


def vobiz_parsed(**changes: Any) -> StreamSettings:
    """What a document with ``WS`` as its URL means, with Vobiz's defaults for absent attributes."""
    base = StreamSettings(url=WS, bidirectional=False, keep_call_alive=False, content_type=L16_8K)
    return dataclasses.replace(base, **changes)


def stream_doc(attrs: str = "", body: str = WS, tag: str = "Stream") -> str:
    return wrap(f"<{tag} {attrs}>{body}</{tag}>")


BIDI = 'bidirectional="true" keepCallAlive="true"'
BOTH_ON = {"bidirectional": True, "keep_call_alive": True}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(stream_doc(), vobiz_parsed(), id="vobiz-defaults"),
        pytest.param(
            stream_doc('bidirectional="True" keepCallAlive="1" audioTrack="Inbound"'),
            vobiz_parsed(**BOTH_ON),
            id="bool-spellings",
        ),
        pytest.param(
            wrap(f'<Stream url="{WS}" bidirectional="yes" keepCallAlive="TRUE"/>'),
            vobiz_parsed(**BOTH_ON),
            id="url-attribute-fallback",
        ),
        pytest.param(
            stream_doc('url="wss://ignored.example/x" bidirectional="false"', body=f"\n   {WS}\n  "),
            vobiz_parsed(),
            id="text-wins-and-is-stripped",
        ),
        pytest.param(
            stream_doc('bidirectional="0" contentType=" Audio/X-MULAW; rate=8000 "', tag="AudioStream"),
            vobiz_parsed(content_type="audio/x-mulaw;rate=8000"),
            id="audiostream-alias-and-content-type-case",
        ),
        pytest.param(
            stream_doc(
                f'{BIDI} streamTimeout=" 120 " maxRetries="+2" statusCallbackMethod="get"'
                f' statusCallbackUrl=" {CB} " extraHeaders="" noiseCancellation="true" someFutureThing="x"'
            ),
            vobiz_parsed(
                **BOTH_ON,
                stream_timeout=120,
                max_retries=2,
                status_callback_url=CB,
                status_callback_method="GET",
            ),
            id="ints-as-strings-lowercase-method-unknown-attrs-empty-optional",
        ),
        pytest.param(
            '<?xml version="1.0"?>\n<Response>\n  <Speak>Hello</Speak>\n  <Wait length="1"/>\n'
            f"  <Stream {BIDI}>{WS}</Stream>\n"
            "  <Stream>wss://second.example/x</Stream>\n  <Hangup/>\n</Response>\n",
            vobiz_parsed(**BOTH_ON),
            id="pretty-printed-first-stream-wins",
        ),
        pytest.param(
            f'<Response xmlns="urn:x"><Stream {BIDI}>{WS}</Stream></Response>',
            vobiz_parsed(**BOTH_ON),
            id="namespaced",
        ),
    ],
)
def test_liberal_parsing(document: str, expected: StreamSettings) -> None:
    assert parse_stream_xml(document) == expected


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param("", "not well-formed XML", id="empty"),
        pytest.param("wss://agent.example.com/m", "not well-formed XML", id="plain-text"),
        pytest.param(b"<Response><Stream>", "not well-formed XML", id="truncated"),
        pytest.param(b"<Response>\xff</Response>", "not well-formed XML", id="bad-utf8"),
        pytest.param(f"<Stream>{WS}</Stream>", "root element is <Stream>", id="no-response-root"),
        pytest.param("<Response><Speak>hi</Speak><Hangup/></Response>", "no <Stream>", id="no-stream"),
        pytest.param(wrap(f"<PreAnswer><Stream>{WS}</Stream></PreAnswer>"), "no <Stream>", id="nested"),
        pytest.param(stream_doc(body="   "), "<Stream> has no URL", id="no-url"),
        pytest.param(wrap('<AudioStream url=""/>'), "<AudioStream> has no URL", id="no-url-alias"),
        pytest.param(
            stream_doc('bidirectional="true" audioTrack="both"'),
            'Vobiz would hang up with "End Of XML Instructions"',
            id="both-with-bidirectional",
        ),
        pytest.param(
            stream_doc('contentType="audio/x-l16;rate=24000"'),
            "contentType='audio/x-l16;rate=24000' is not supported",
            id="content-type-24k",
        ),
        pytest.param(stream_doc('contentType="audio/wav"'), "is not supported", id="content-type-wav"),
        pytest.param(stream_doc('audioTrack="caller"'), "audioTrack='caller'", id="bad-track"),
        pytest.param(stream_doc('bidirectional="maybe"'), "not a boolean", id="bad-bool"),
        pytest.param(stream_doc('streamTimeout="1h"'), "not an integer", id="bad-int"),
        pytest.param(stream_doc('streamTimeout="0"'), "at least 1", id="zero-timeout"),
        pytest.param(stream_doc('maxRetries="-1"'), "at least 0", id="negative-retries"),
        pytest.param(stream_doc('statusCallbackMethod="PUT"'), "not GET or POST", id="bad-method"),
        pytest.param('<!DOCTYPE r [<!ENTITY a "aaaa">]>' + stream_doc(body=f"{WS}&a;"), "DTD", id="dtd"),
        pytest.param(stream_doc() + " " * 102400, "refuses answers over 102400", id="over-100kb"),
    ],
)
def test_parse_errors(document: str | bytes, message: str) -> None:
    with pytest.raises(StreamXmlError, match=re.escape(message)) as info:
        parse_stream_xml(document)
    assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------------- official SDK cross-check

SDK_CASES = [
    TYPICAL,
    StreamSettings(url=WS + "?call=1&persona=a"),
    StreamSettings(
        url=WS,
        content_type="audio/x-l16;rate=16000",
        stream_timeout=3600,
        status_callback_url=CB + "?x=1&y=2",
        status_callback_method="GET",
        extra_headers="a=1,b=2",
    ),
    StreamSettings(
        url="ws://127.0.0.1:8000/m", bidirectional=False, keep_call_alive=False, audio_track="both"
    ),
]


def sdk_document(settings: StreamSettings) -> str:
    """The same <Stream> built by the official vobiz-python SDK (lxml-based, written by others)."""
    response = vobizxml.ResponseElement()
    response.add(
        vobizxml.StreamElement(
            settings.url,
            bidirectional=settings.bidirectional,
            audioTrack=settings.audio_track,
            keepCallAlive=settings.keep_call_alive,
            contentType=settings.content_type,
            streamTimeout=settings.stream_timeout,
            statusCallbackUrl=settings.status_callback_url,
            statusCallbackMethod=settings.status_callback_method if settings.status_callback_url else None,
            extraHeaders=settings.extra_headers,
        )
    )
    document = response.to_string()
    assert isinstance(document, str)
    return document


@pytest.mark.parametrize("settings", SDK_CASES)
def test_sdk_document_parses_like_ours(settings: StreamSettings) -> None:
    ours = answer_xml(settings)
    theirs = sdk_document(settings)
    assert parse_stream_xml(theirs) == parse_stream_xml(ours) == settings


@pytest.mark.parametrize("settings", SDK_CASES)
def test_sdk_element_matches_ours(settings: StreamSettings) -> None:
    ours = stream_of(answer_xml(settings))
    theirs = stream_of(sdk_document(settings))
    assert (ours.text, ours.attrib) == ((theirs.text or "").strip(), theirs.attrib)
