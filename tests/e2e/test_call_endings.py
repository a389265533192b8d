"""How calls end, through the fake Vobiz and the real app (scripted providers, virtual clock):
nothing said is lost when the caller hangs up (the cut reply, the last words), and each ending
has its own reason in the record and in ``calls_total{reason}``."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect

from app.audio.formats import AudioFormat
from app.clock import FakeClock
from app.config import Settings
from app.main import conversation_factory, create_app
from app.providers.registry import ProviderSet
from app.providers.scripted import Rule, ScriptedLLM, ScriptedSTT, ToneTTS
from app.records.record import CallRecord
from app.records.store import CallStore
from app.simulator.caller import HangUp, InterruptAfter, Step, WaitForAgent
from app.simulator.simulate import SimulateOptions, run_simulation
from tests.e2e.test_media_socket import media_frame, start_frame, token_for, wait_finished
from tests.e2e.test_metrics import dial, scrape, value, words
from tests.servers import run_server

ROOT = Path(__file__).resolve().parents[2]
STORY = "Tell me a story"
CUT_IN = "Sorry, wait, make that four people instead"
RULES = [
    Rule(r"story", "Once upon a time there was a very long story that went on and on for quite a while."),
    Rule(r"bye", "Goodbye, and thanks for calling.", tool="end_call"),
]


def scripted_app(
    make_settings: Callable[..., Settings], clock: FakeClock, heard: list[str], llm: ScriptedLLM | None = None
) -> FastAPI:
    llm = llm or ScriptedLLM(RULES)
    providers = ProviderSet(stt=ScriptedSTT(heard), llm=llm, tts={"offline": ToneTTS()})
    settings = make_settings(prompts_dir=ROOT / "prompts")
    return create_app(settings, clock=clock, agent_factory=conversation_factory(providers))


async def record_of(app: FastAPI, call_id: str) -> CallRecord:
    store: CallStore = app.state.call_records
    record = await store.get(call_id)
    assert record is not None
    return record


def lines(record: CallRecord) -> list[tuple[str, str, bool]]:
    return [(x["speaker"], x["text"], x["interrupted"]) for x in record.transcript]


async def test_caller_cuts_into_a_reply_then_hangs_up_at_once(make_settings: Callable[..., Settings]) -> None:
    clock = FakeClock()
    app = scripted_app(make_settings, clock, [STORY, CUT_IN])
    steps: list[Step] = [WaitForAgent(), words(STORY), InterruptAfter(1.5, words(CUT_IN, 1.2)), HangUp()]
    rec = await dial(app, clock, steps)
    record = await record_of(app, rec.call_id)
    *_, (who, cut, interrupted), last = lines(record)
    assert (who, interrupted) == ("agent", True)
    story = RULES[0].reply
    assert story.startswith(cut)  # only the words the caller heard
    assert 0 < len(cut) < len(story)
    assert last == ("caller", CUT_IN, False)  # flushed from the recogniser after the hang-up
    assert record.end_reason == "socket-closed"


async def test_caller_says_a_sentence_and_hangs_up_before_the_answer(
    make_settings: Callable[..., Settings],
) -> None:
    clock, llm = FakeClock(), ScriptedLLM(RULES)
    app = scripted_app(make_settings, clock, [STORY], llm)
    rec = await dial(app, clock, [WaitForAgent(), words(STORY), HangUp()])
    record = await record_of(app, rec.call_id)
    assert lines(record)[-1] == ("caller", STORY, False)
    assert [speaker for speaker, *_ in lines(record)] == ["agent", "caller"]  # nothing spoken after
    assert llm.requests == []  # written down, never answered


async def test_the_agents_hang_up_has_its_own_reason(make_settings: Callable[..., Settings]) -> None:
    clock = FakeClock()
    app = scripted_app(make_settings, clock, ["Thanks, bye"])
    rec = await dial(app, clock, [WaitForAgent(), words("Thanks, bye"), WaitForAgent()])
    assert rec.end_reason == "app sent stop (End Of XML Instructions)"
    record = await record_of(app, rec.call_id)
    assert record.end_reason == "agent-hangup"
    samples = await scrape(app)
    assert value(samples, "voice_agent_calls_total", reason="agent-hangup") == 1
    assert value(samples, "voice_agent_calls_total", reason="socket-closed") == 0


@pytest.mark.parametrize("heard", [[STORY], []], ids=["words", "silence"])
async def test_a_caller_hang_up_is_counted_as_socket_closed(
    make_settings: Callable[..., Settings], heard: list[str]
) -> None:
    clock = FakeClock()
    app = scripted_app(make_settings, clock, heard)
    await dial(app, clock, [WaitForAgent(), HangUp()])
    samples = await scrape(app)
    assert value(samples, "voice_agent_calls_total", reason="socket-closed") == 1
    assert value(samples, "voice_agent_calls_total", reason="agent-hangup") == 0


def abort(ws: ClientConnection, how: str) -> None:
    """Drop the TCP connection without a close frame: a reset (RST) or a bare FIN."""
    transport = ws.transport
    if how == "rst":
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()


async def test_stop_then_an_abrupt_close_is_never_an_error(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    app = create_app(make_settings())
    calls = [f"call-{how}-{i}" for i in range(5) for how in ("rst", "fin")]
    with run_server(app) as srv:
        for call_id in calls:
            async with connect(f"{srv.ws_url}/vobiz/media/{token_for(call_id)}") as ws:
                await ws.send(start_frame(call_id, AudioFormat("mulaw", 8000)))
                await ws.send(media_frame(b"\xff" * 160))
                await ws.send('{"event":"stop","streamId":"stream-1"}')
                abort(ws, call_id.split("-")[1])
            await wait_finished(srv, calls.index(call_id) + 1)
        for _ in range(200):  # the listeners run after the session has left the registry
            samples = await scrape(app)
            if value(samples, "voice_agent_active_calls") == 0:
                break
            await asyncio.sleep(0.01)
        for call_id in calls:
            record = await record_of(app, call_id)
            assert (record.status, record.end_reason) == ("completed", "stream-stopped"), call_id
    assert value(samples, "voice_agent_calls_total", reason="stream-stopped") == len(calls)
    assert value(samples, "voice_agent_calls_total", reason="error") == 0
    assert "Exception in ASGI application" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ── the same endings with the embedded engines (Whisper, the intent model, the offline voice) ──

HOURS_REPLY = "We open at seven in the morning and close at six, every day except Monday."


async def simulate_offline(make_settings: Callable[..., Settings], script: str) -> CallRecord:
    settings = make_settings(prompts_dir=ROOT / "prompts", providers="offline")
    options = SimulateOptions(script=script, virtual=True, persona="default")
    rec = await run_simulation(options, settings, lambda _: None)
    assert rec.protocol_errors == []
    store = CallStore.from_settings(settings)
    try:
        record = await store.get(rec.call_id)
    finally:
        await store.aclose()
    assert record is not None
    return record


async def test_embedded_engines_keep_the_cut_reply_and_the_last_words(
    make_settings: Callable[..., Settings],
) -> None:
    script = "\n".join(
        [
            "wait",
            "say What are your opening hours?",
            "interrupt 1.5 Sorry, wait, make that four people instead",
            "hangup",
        ]
    )
    record = await simulate_offline(make_settings, script)
    print("LINES", lines(record))
    *_, (who, cut, interrupted), (speaker, last, _) = lines(record)
    assert (who, interrupted) == ("agent", True)
    assert HOURS_REPLY.startswith(cut)  # only the words the caller heard
    assert 0 < len(cut) < len(HOURS_REPLY)
    assert speaker == "caller"
    assert "four people" in last.lower()  # Whisper transcribed the buffered audio after the hang-up


async def test_embedded_engines_keep_a_sentence_said_just_before_the_hang_up(
    make_settings: Callable[..., Settings],
) -> None:
    record = await simulate_offline(make_settings, "wait\nsay Where is your shop?\nhangup")
    (speaker, last, _) = lines(record)[-1]
    assert speaker == "caller"
    assert "where" in last.lower()
    assert "shop" in last.lower()
