"""Inbound parsing (liberal) and outbound commands (exact), PROTOCOL.md §3, §4, §10."""

from __future__ import annotations

import base64
import json

import pytest

from app.telephony import events as ev

NESTED_START = {
    "sequenceNumber": 0,
    "event": "start",
    "start": {
        "callId": "5401fd2e-6344-40df-a22c-c8ffea7a92e7",
        "streamId": "c4dfd815-a92a-4140-ab85-5ff28c004116",
        "accountId": "500025",
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 16000},
    },
    "extra_headers": "{}",
}

TOP_LEVEL_START = {  # the older docs and some reference servers
    "event": "start",
    "streamId": "S-1",
    "callId": "CALL_abc123xyz",
    "start": {"mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": "8000"}, "auth_id": "MA_X"},
}


def test_start_nested_ids() -> None:
    event = ev.parse_inbound(json.dumps(NESTED_START))
    assert event == ev.StartEvent(
        call_id="5401fd2e-6344-40df-a22c-c8ffea7a92e7",
        stream_id="c4dfd815-a92a-4140-ab85-5ff28c004116",
        encoding="audio/x-l16",
        sample_rate=16000,
        account_id="500025",
        tracks=("inbound",),
    )


def test_start_top_level_ids_and_string_rate() -> None:
    event = ev.parse_inbound(json.dumps(TOP_LEVEL_START).encode())
    assert isinstance(event, ev.StartEvent)
    assert (event.call_id, event.stream_id) == ("CALL_abc123xyz", "S-1")
    assert (event.encoding, event.sample_rate, event.account_id) == ("audio/x-mulaw", 8000, "MA_X")


def test_start_without_media_format_defaults_to_l16() -> None:
    event = ev.parse_inbound('{"event":"start","start":{"callId":"c","streamId":"s"}}')
    assert isinstance(event, ev.StartEvent)
    assert (event.encoding, event.sample_rate) == ("audio/x-l16", None)


def test_media_real_capture_shape() -> None:
    raw = bytes(range(160))
    frame = {
        "sequenceNumber": 2,
        "streamId": "c4dfd815",
        "event": "media",
        "media": {
            "track": "inbound",
            "timestamp": "1778597597091",
            "chunk": 2,
            "payload": base64.b64encode(raw).decode(),
        },
        "extra_headers": "{}",
    }
    assert ev.parse_inbound(json.dumps(frame)) == ev.MediaEvent(raw, "inbound")


def test_media_old_shape_without_track() -> None:
    msg = '{"event":"media","media":{"payload":"//8=","timestamp":123,"contentType":"audio/x-mulaw"}}'
    assert ev.parse_inbound(msg) == ev.MediaEvent(b"\xff\xff", "inbound")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('{"event":"playedStream","name":"response-3"}', ev.PlayedStreamEvent("response-3")),
        ('{"event":"playedStream","streamId":"s","name":"n"}', ev.PlayedStreamEvent("n")),
        ('{"event":"clearedAudio","streamId":"s1"}', ev.ClearedAudioEvent("s1")),
        ('{"sequenceNumber":0,"event":"clearedAudio","streamId":"s2"}', ev.ClearedAudioEvent("s2")),
        ('{"event":"clearedAudio"}', ev.ClearedAudioEvent(None)),
        ('{"event":"stop","streamId":"s","reason":"call_ended"}', ev.StopEvent("call_ended")),
        ('{"event":"stop"}', ev.StopEvent(None)),
        ('{"event":"dtmf","dtmf":{"digit":"5"}}', ev.DtmfEvent("5")),
        ('{"event":"dtmf","digit":7}', ev.DtmfEvent("7")),
        ('{"event":"mark","mark":{}}', ev.UnknownEvent("mark")),
    ],
)
def test_control_events(message: str, expected: ev.InboundEvent) -> None:
    assert ev.parse_inbound(message) == expected


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json", "not JSON"),
        ("", "not JSON"),
        ("[1,2]", "JSON list"),
        ('"media"', "JSON str"),
        ('{"no":"event"}', "no 'event'"),
        ('{"event":5}', "no 'event'"),
        ('{"event":"media"}', "without a 'media'"),
        ('{"event":"media","media":{"payload":5}}', "'payload' string"),
        ('{"event":"media","media":{"payload":"!!notbase64"}}', "not valid base64"),
        ('{"event":"media","media":{"payload":"AAA"}}', "not valid base64"),
        ('{"event":"start","start":{"streamId":"s"}}', "without callId"),
        ('{"event":"start","start":{"callId":"c","streamId":"s","mediaFormat":[]}}', "not an object"),
        (
            '{"event":"start","start":{"callId":"c","streamId":"s","mediaFormat":{"sampleRate":"x"}}}',
            "not a number",
        ),
        ('{"event":"playedStream"}', "without a 'name'"),
        ('{"event":"dtmf","dtmf":{}}', "without a digit"),
    ],
)
def test_malformed_frames_raise_protocol_error(message: str, reason: str) -> None:
    with pytest.raises(ev.ProtocolError, match=reason):
        ev.parse_inbound(message)


def test_play_audio_is_exact() -> None:
    message = json.loads(ev.play_audio("sid-1", "audio/x-mulaw", 8000, b"\x00\xff"))
    assert message == {
        "event": "playAudio",
        "streamId": "sid-1",
        "media": {"contentType": "audio/x-mulaw", "sampleRate": 8000, "payload": "AP8="},
    }


def test_stream_id_with_quotes_is_escaped() -> None:
    message = json.loads(ev.play_audio('a"b\\c', "audio/x-l16", 24000, b""))
    assert message["streamId"] == 'a"b\\c'
    assert message["media"]["sampleRate"] == 24000


def test_other_commands() -> None:
    assert json.loads(ev.checkpoint("s", "turn-1")) == {
        "event": "checkpoint",
        "streamId": "s",
        "name": "turn-1",
    }
    assert json.loads(ev.clear_audio("s")) == {"event": "clearAudio", "streamId": "s"}
    assert json.loads(ev.stop("s")) == {"event": "stop", "streamId": "s"}
