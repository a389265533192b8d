"""DTMF on a live call: a real ``CallSession`` and ``Conversation`` (scripted providers) over an
in-memory socket on the virtual clock. Keys are counted, logged without the digit."""

from __future__ import annotations

import json
import logging

import pytest

from agents.tools import ToolRegistry
from app.clock import FakeClock
from app.pipeline.conversation import Conversation, ConversationConfig, Providers
from app.pipeline.session import CallSession, SessionConfig, TransportClosed
from app.providers.scripted import ScriptedLLM, ScriptedSTT, ToneTTS

CALL_ID = "call-dtmf-1"


class ScriptedSocket:
    """Delivers ``frames`` in order, then stays quiet for ``linger_s`` and closes."""

    def __init__(self, clock: FakeClock, frames: list[str], linger_s: float = 1.0) -> None:
        self.clock = clock
        self.frames = list(frames)
        self.linger_s = linger_s
        self.sent: list[str] = []

    async def receive(self) -> str | bytes:
        if self.frames:
            return self.frames.pop(0)
        await self.clock.sleep(self.linger_s)
        raise TransportClosed(1000)

    async def send(self, message: str) -> None:
        self.sent.append(message)

    async def close(self, code: int = 1000) -> None:
        pass


class NoControl:
    async def hang_up(self) -> None:
        pass

    async def transfer(self) -> str:
        return "Transfer is not available."

    async def send_dtmf(self, digits: str) -> str:
        return "error: not available"


def start_frame() -> str:
    start = {
        "callId": CALL_ID,
        "streamId": "stream-1",
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
    }
    return json.dumps({"event": "start", "sequenceNumber": 0, "start": start})


def dtmf_frame(digit: str) -> str:
    return json.dumps({"event": "dtmf", "streamId": "stream-1", "dtmf": {"digit": digit}})


async def test_dtmf_is_counted_and_logged_without_the_digit(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    conversation = Conversation(
        config=ConversationConfig(greeting="Hello."),
        providers=Providers(ScriptedSTT(), ScriptedLLM(), ToneTTS()),
        clock=clock,
        control=NoControl(),
        tools=ToolRegistry({}),
        call_id=CALL_ID,
        persona="default",
    )
    socket = ScriptedSocket(clock, [start_frame(), dtmf_frame("7"), dtmf_frame("3")])
    session = CallSession(
        call_id=CALL_ID, transport=socket, agent=conversation, clock=clock, config=SessionConfig()
    )
    with caplog.at_level(logging.DEBUG, logger="app.conversation"):
        assert await clock.run(session.run()) == "socket-closed"
    assert conversation.keys.received == 2
    records = [r for r in caplog.records if r.name == "app.conversation" and "key" in r.getMessage()]
    assert [(r.levelno, getattr(r, "count", None)) for r in records] == [
        (logging.DEBUG, 1),
        (logging.DEBUG, 2),
    ]
    for record in records:
        fields = [v for k, v in vars(record).items() if k not in ("msg", "message", "args")]
        for digit in ("7", "3"):
            assert digit not in record.getMessage()
            assert digit not in fields
    assert any('"playAudio"' in m for m in socket.sent)  # the call was live: the greeting played
