"""Each strictness rule of the fake Vobiz, triggered by a deliberately wrong app."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi import FastAPI, Response, WebSocket
from starlette.websockets import WebSocketDisconnect

from app.clock import FakeClock
from app.simulator.caller import HangUp, Silence
from app.simulator.connect import AsgiConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import CallRecording


@dataclass(frozen=True)
class Until:
    """In a wrong app's frame list: read the socket until Vobiz sends this event."""

    event: str


Misbehave = Callable[[str], list[str | bytes | Until]]  # stream id -> what the wrong app does

GOOD_XML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Stream bidirectional="true" '
    'audioTrack="inbound" keepCallAlive="true" contentType="{ct}">ws://app/media</Stream></Response>'
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def play(sid: str | None, mime: str = "audio/x-mulaw", rate: object = 8000, payload: str = "") -> str:
    message: dict[str, object] = {
        "event": "playAudio",
        "media": {"contentType": mime, "sampleRate": rate, "payload": payload or b64(b"\xff" * 160)},
    }
    if sid is not None:
        message["streamId"] = sid
    return json.dumps(message)


def command(event: str, sid: str, **fields: str) -> str:
    return json.dumps({"event": event, "streamId": sid, **fields})


def wrong_app(
    frames: Misbehave, *, xml: str, content_type: str = "application/xml", refuse: bool = False
) -> FastAPI:
    """An app that answers with ``xml`` and sends ``frames``. ``app.state.sockets`` counts the
    media sockets opened; ``app.state.heard`` lists the events Vobiz sent (``media`` aside)."""
    app = FastAPI()
    app.state.sockets = 0
    app.state.heard = []

    async def read(ws: WebSocket) -> str:
        event = str(json.loads(await ws.receive_text())["event"])
        if event != "media":
            app.state.heard.append(event)
        return event

    @app.post("/answer")
    async def answer() -> Response:
        return Response(xml, media_type=content_type)

    @app.post("/hangup")
    async def hangup() -> Response:
        return Response(status_code=204)

    @app.websocket("/media")
    async def media(ws: WebSocket) -> None:
        if refuse:
            await ws.close(1008)
            return
        await ws.accept()
        app.state.sockets += 1
        start = json.loads(await ws.receive_text())
        try:
            for frame in frames(start["start"]["streamId"]):
                if isinstance(frame, Until):
                    while await read(ws) != frame.event:
                        pass
                elif isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_text(frame)
            while True:
                await read(ws)
        except WebSocketDisconnect:
            return

    return app


async def call(app: FastAPI, seconds: float = 0.5) -> CallRecording:
    clock = FakeClock()
    connector = AsgiConnector(app)
    vobiz = FakeVobiz(connector, clock, PlatformConfig(hangup_url="http://app/hangup"))
    try:
        return await clock.run(vobiz.dial("http://app/answer", [Silence(seconds), HangUp()], {}))
    finally:
        await connector.aclose()


async def rules_broken(app: FastAPI, seconds: float = 0.5) -> list[str]:
    return [v.rule for v in (await call(app, seconds)).protocol_errors]


MULAW = GOOD_XML.format(ct="audio/x-mulaw;rate=8000")
L16 = GOOD_XML.format(ct="audio/x-l16;rate=8000")

CASES: list[tuple[str, str, Misbehave]] = [
    (
        "a correct app",
        MULAW,
        lambda sid: [play(sid), json.dumps({"event": "checkpoint", "streamId": sid, "name": "a"})],
    ),
    ("playaudio-format-mismatch", MULAW, lambda sid: [play(sid, "audio/x-l16", 16000, b64(b"\0" * 640))]),
    ("playaudio-format-mismatch", MULAW, lambda sid: [play(sid, "audio/x-mulaw", 16000)]),
    ("playaudio-content-type", MULAW, lambda sid: [play(sid, "audio/x-mulaw;rate=8000")]),
    ("playaudio-sample-rate", MULAW, lambda sid: [play(sid, rate="8000")]),
    ("missing-stream-id", MULAW, lambda sid: [play(None)]),
    ("wrong-stream-id", MULAW, lambda sid: [play("someone-else")]),
    ("playaudio-bad-base64", MULAW, lambda sid: [play(sid, payload="@@not base64@@")]),
    ("playaudio-odd-length", L16, lambda sid: [play(sid, "audio/x-l16", 8000, b64(b"\0" * 321))]),
    (
        "audio-during-clear",
        MULAW,
        lambda sid: [command("clearAudio", sid), play(sid)],
    ),
    ("bad-json", MULAW, lambda sid: ["{not json"]),
    ("binary-frame", MULAW, lambda sid: [b"\x00\x01"]),
    ("unknown-command", MULAW, lambda sid: [command("mark", sid)]),
    ("checkpoint-no-name", MULAW, lambda sid: [command("checkpoint", sid)]),
    ("no-event", MULAW, lambda sid: ["[1, 2]"]),
]


@pytest.mark.parametrize(("rule", "xml", "frames"), CASES, ids=[c[0] for c in CASES])
async def test_each_rule(rule: str, xml: str, frames: Misbehave) -> None:
    broken = await rules_broken(wrong_app(frames, xml=xml))
    assert broken == ([] if rule == "a correct app" else [rule])


async def test_audio_after_cleared_audio_is_fine() -> None:
    """The hold ends with clearedAudio: audio sent after it breaks no rule, and is played
    (its checkpoint is acked). Sent before it, the same audio is "audio-during-clear"."""

    def frames(sid: str) -> list[str | bytes | Until]:
        clear: list[str | bytes | Until] = [play(sid), command("clearAudio", sid), Until("clearedAudio")]
        loud = play(sid, payload=b64(b"\x80" * 160))  # μ-law 0x80: full scale
        return [*clear, loud, command("checkpoint", sid, name="after")]

    app = wrong_app(frames, xml=MULAW)
    rec = await call(app)
    assert rec.protocol_errors == []
    assert app.state.heard == ["clearedAudio", "playedStream"]
    cleared = next(e.t for e in rec.events if e.kind == "cleared_audio")
    played = next(e.t for e in rec.events if e.kind == "played_stream")
    assert played == pytest.approx(cleared + 0.02 + 0.02)  # 20 ms of audio, acked the tick after
    assert int(abs(rec.agent[int(cleared * 16000) :]).max()) > 20000  # it was heard

    def too_early(sid: str) -> list[str | bytes | Until]:
        return [command("clearAudio", sid), play(sid), Until("clearedAudio"), play(sid)]

    assert await rules_broken(wrong_app(too_early, xml=MULAW)) == ["audio-during-clear"]


async def test_stream_url_as_an_attribute_is_refused() -> None:
    """Vobiz reads the URL only from the element text (D22): no socket, one protocol error."""
    xml = MULAW.replace(">ws://app/media</Stream>", ' url="ws://app/media"/>')
    assert 'url="ws://app/media"/>' in xml
    app = wrong_app(lambda sid: [play(sid)], xml=xml)
    rec = await call(app)
    assert [v.rule for v in rec.protocol_errors] == ["stream-url-not-text"]
    assert app.state.sockets == 0
    assert rec.end_reason == "Invalid Answer XML: no stream URL"
    # the same document with the URL as text connects
    fixed = wrong_app(lambda sid: [play(sid)], xml=MULAW)
    assert await rules_broken(fixed) == []
    assert fixed.state.sockets == 1


async def test_both_tracks_with_bidirectional_is_refused_like_vobiz() -> None:
    xml = MULAW.replace('audioTrack="inbound"', 'audioTrack="both"')
    assert await rules_broken(wrong_app(lambda sid: [], xml=xml)) == ["answer-xml"]


async def test_answer_served_as_html() -> None:
    broken = await rules_broken(wrong_app(lambda sid: [], xml=MULAW, content_type="text/html"))
    assert broken == ["answer-content-type"]


async def test_stream_without_keep_call_alive() -> None:
    xml = MULAW.replace(' keepCallAlive="true"', "")
    assert await rules_broken(wrong_app(lambda sid: [], xml=xml)) == ["stream-not-kept-alive"]


async def test_play_audio_on_a_one_way_stream() -> None:
    xml = MULAW.replace('bidirectional="true"', 'bidirectional="false"')
    broken = await rules_broken(wrong_app(lambda sid: [play(sid)], xml=xml))
    assert broken == ["not-bidirectional"]


async def test_refused_socket() -> None:
    assert await rules_broken(wrong_app(lambda sid: [], xml=MULAW, refuse=True)) == ["socket-refused"]


async def test_a_call_answered_with_the_official_sdks_xml() -> None:
    """Cross-check with code nobody here wrote: vobiz-python's StreamElement drives a clean call."""
    from vobiz import vobizxml

    response = vobizxml.ResponseElement()
    response.add(
        vobizxml.StreamElement(
            "ws://app/media",
            bidirectional=True,
            audioTrack="inbound",
            keepCallAlive=True,
            contentType="audio/x-mulaw;rate=8000",
        )
    )
    sdk_xml = response.to_string()
    broken = await rules_broken(wrong_app(lambda sid: [play(sid)], xml=sdk_xml))
    assert broken == []
