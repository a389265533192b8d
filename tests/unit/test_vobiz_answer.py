"""The fake Vobiz's own answer reader and callback signer, cross-checked against the ``vobiz`` SDK
and the app: they are separate implementations, so agreeing means something."""

from __future__ import annotations

import dataclasses

import pytest
from vobiz import vobizxml
from vobiz.utils import validate_signature as sdk_validate_v2
from vobiz.utils.signature_v3 import get_signature_v3 as sdk_signature_v3

from app.simulator.vobiz_answer import AnswerRefused, read_answer, signature_headers
from app.telephony.signature import verify_signature
from app.telephony.xml import StreamSettings, answer_xml

WS = "wss://agent.example.com/vobiz/media/TOKEN123"
CB = "https://agent.example.com/vobiz/stream-status"
TOKEN = "fake-vobiz-token-0123456789"

SETTINGS = [
    StreamSettings(url=WS, status_callback_url=CB),
    StreamSettings(url=WS, content_type="audio/x-l16;rate=16000", stream_timeout=600, max_retries=3),
    StreamSettings(url=WS, content_type="audio/x-l16;rate=8000", status_callback_url=CB,
                   status_callback_method="GET"),
    StreamSettings(url="ws://127.0.0.1:9000/m?a=1&b=2", bidirectional=False, keep_call_alive=False,
                   audio_track="both"),
]  # fmt: skip


@pytest.mark.parametrize("settings", SETTINGS)
def test_the_fake_reads_what_the_app_writes(settings: StreamSettings) -> None:
    stream = read_answer(answer_xml(settings))
    assert (stream.url, stream.bidirectional, stream.audio_track, stream.keep_call_alive) == (
        settings.url,
        settings.bidirectional,
        settings.audio_track,
        settings.keep_call_alive,
    )
    assert stream.content_type == settings.content_type
    assert stream.stream_timeout == settings.stream_timeout
    assert stream.status_callback_url == settings.status_callback_url
    assert stream.status_callback_method == settings.status_callback_method


@pytest.mark.parametrize("settings", SETTINGS)
def test_the_fake_reads_what_the_sdk_writes(settings: StreamSettings) -> None:
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
        )
    )
    stream = read_answer(response.to_string())
    assert stream.url == settings.url
    assert stream.bidirectional is settings.bidirectional
    assert stream.keep_call_alive is settings.keep_call_alive
    assert (stream.encoding, stream.sample_rate) == {
        "audio/x-l16;rate=8000": ("l16", 8000),
        "audio/x-l16;rate=16000": ("l16", 16000),
        "audio/x-mulaw;rate=8000": ("mulaw", 8000),
    }[settings.content_type]


@pytest.mark.parametrize(
    ("document", "why"),
    [
        ("<Response><Stream>", "not well-formed"),
        ("<Reply><Stream>wss://a/b</Stream></Reply>", "root element"),
        ("<Response><Speak>hi</Speak></Response>", "no <Stream>"),
        ('<Response><Stream contentType="audio/x-l16;rate=24000">wss://a/b</Stream></Response>',
         "contentType"),
        ('<Response><Stream bidirectional="maybe">wss://a/b</Stream></Response>', "bidirectional"),
        ('<Response><Stream bidirectional="true" audioTrack="both">wss://a/b</Stream></Response>', "both"),
        ('<Response><Stream streamTimeout="0">wss://a/b</Stream></Response>', "streamTimeout"),
        ('<!DOCTYPE x><Response><Stream>wss://a/b</Stream></Response>', "DTD"),
    ],
)  # fmt: skip
def test_the_fake_refuses_what_vobiz_would(document: str, why: str) -> None:
    with pytest.raises(AnswerRefused, match=why):
        read_answer(document)


def test_a_url_attribute_is_not_a_stream_url() -> None:
    assert read_answer('<Response><Stream url="wss://a/b"/></Response>').url == ""


def test_no_content_type_means_l16_at_8k() -> None:
    stream = read_answer(f"<Response><Stream>{WS}</Stream></Response>")
    assert (stream.encoding, stream.sample_rate, stream.bidirectional) == ("l16", 8000, False)


def test_the_fakes_signatures_verify_with_the_sdk_and_the_app() -> None:
    url = "https://tunnel.example.net:8443/vobiz/hangup?CallUUID=abc&x=%20y"
    for _ in range(10):
        headers = signature_headers(url, TOKEN)
        v2, v2_nonce = headers["X-Vobiz-Signature-V2"], headers["X-Vobiz-Signature-V2-Nonce"]
        v3, v3_nonce = headers["X-Vobiz-Signature-V3"], headers["X-Vobiz-Signature-V3-Nonce"]
        assert len(v2_nonce) == len(v3_nonce) == 20
        assert v2_nonce.isdigit()
        assert v3_nonce.isdigit()
        assert sdk_validate_v2(url, v2_nonce, v2, TOKEN) is True
        assert sdk_validate_v2(url, v2_nonce, v2, TOKEN + "x") is False
        base = url.split("?", 1)[0]
        assert sdk_signature_v3(TOKEN, base, v3_nonce).decode() == v3
        assert verify_signature(headers, url, TOKEN).ok
        assert not verify_signature(headers, url, TOKEN + "x").ok


def test_answered_stream_is_frozen() -> None:
    stream = read_answer(f"<Response><Stream>{WS}</Stream></Response>")
    with pytest.raises(dataclasses.FrozenInstanceError):
        stream.url = "x"  # type: ignore[misc]
