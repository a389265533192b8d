"""The app driven through the fake Vobiz on the virtual clock: exact timings, no sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, NamedTuple

import httpx
import numpy as np
import pytest

from app.clock import FakeClock
from app.config import Settings
from app.main import create_app
from app.pipeline.session import Agent
from app.simulator.caller import HangUp, InterruptAfter, Say, Silence, Step, WaitForAgent, utterances
from app.simulator.connect import AsgiConnector, TapConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import PCM, CallRecording
from app.simulator.vobiz_rest import create_fake_rest_app
from app.simulator.vobiz_rest_state import FakeVobizState
from app.telephony.rest import VobizClient
from tests.e2e.fake_agents import TurnAgent, tone

ANSWER = "https://agent.example.com/vobiz/answer"
AUTH_TOKEN = "simulator-auth-token"


def speech(seconds: float) -> Say:
    return Say(text=f"{seconds:g} s of caller audio", audio=tone(seconds, 300, 6000))


def clean(rec: CallRecording) -> CallRecording:
    """``rec``, once the test has failed on any protocol error: every test of a correct app
    goes through this (``simulate`` does it for you)."""
    assert rec.protocol_errors == [], [f"{v.t:.2f}s {v.rule}: {v.detail}" for v in rec.protocol_errors]
    return rec


class Simulated(NamedTuple):
    rec: CallRecording
    clock: FakeClock
    app: Any
    tap: TapConnector  # every webhook request and media frame of the call


async def simulate(
    make_settings: Callable[..., Settings],
    steps: list[Step],
    agent: Agent | None = None,
    *,
    platform: PlatformConfig | None = None,
    audio: dict[int, PCM] | None = None,
    **overrides: Any,
) -> Simulated:
    """One call of the real app (echo agent unless ``agent``) on the virtual clock; fails the
    test on any protocol error. ``audio``: the caller's rendered audio (default: each Say's)."""
    clock = FakeClock()
    # the fake Vobiz's stream status callbacks (and the app taking them) are part of what is checked
    base = {"signature_mode": "enforce", "vobiz_auth_token": AUTH_TOKEN, "stream_status_callbacks": True}
    settings = make_settings(**(base | overrides))
    app = create_app(settings, clock=clock, agent_factory=(lambda claims, ctx: agent) if agent else None)
    tap = TapConnector(AsgiConnector(app))
    vobiz = FakeVobiz(tap, clock, platform or PlatformConfig(auth_token=AUTH_TOKEN))
    if audio is None:
        audio = {i: say.audio for i, say in utterances(steps).items() if say.audio is not None}
    try:
        rec = await clock.run(vobiz.dial(ANSWER, steps, audio))
    finally:
        await tap.aclose()
    return Simulated(clean(rec), clock, app, tap)


def kinds(rec: CallRecording) -> list[str]:
    return [e.kind for e in rec.events if e.kind != "status_callback"]


def first(rec: CallRecording, kind: str, after: float = -1.0) -> float:
    return next(e.t for e in rec.events if e.kind == kind and e.t > after)


def rms(rec: CallRecording, track: str, start: float, end: float) -> float:
    pcm = getattr(rec, track)[int(start * rec.sample_rate) : int(end * rec.sample_rate)]
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0


async def test_greeting_heard_question_answered_checkpoints_acked(
    make_settings: Callable[..., Settings],
) -> None:
    agent = TurnAgent(greeting_s=1.0, reply_s=1.5)
    steps: list[Step] = [WaitForAgent(), speech(1.0), WaitForAgent(), HangUp()]
    rec = (await simulate(make_settings, steps, agent)).rec
    assert rec.protocol_errors == []
    # greeting: heard from the tick after the start frame; its 1 s of audio becomes 51 frames
    # (the last one padded), and the ack comes when the last frame has finished playing
    assert first(rec, "agent_audio_start") == pytest.approx(0.02)
    acks = {e.detail["name"]: e.t for e in rec.events if e.kind == "played_stream"}
    assert acks["greeting"] == pytest.approx(0.02 + 51 * 0.02)
    assert rms(rec, "agent", 0.1, 0.9) > 4000
    # the caller waits for 0.8 s of quiet, then speaks 1 s
    caller_start = first(rec, "caller_speech_start")
    assert caller_start == pytest.approx(first(rec, "agent_audio_end") + 0.8)
    assert first(rec, "caller_speech_end") == pytest.approx(caller_start + 0.98)
    # the agent answers after 10 quiet frames (200 ms) plus one frame in transit
    assert len(rec.turns) == 1
    turn = rec.turns[0]
    assert turn.caller_end == pytest.approx(caller_start + 1.0)
    assert turn.latency == pytest.approx(0.22)
    assert acks["reply-1"] == pytest.approx(turn.agent_start + 76 * 0.02)
    assert rms(rec, "agent", turn.agent_start + 0.1, turn.agent_start + 1.4) > 4000
    # caller and agent tracks are aligned on one timeline
    assert abs(len(rec.caller) - len(rec.agent)) <= rec.sample_rate // 50
    assert rms(rec, "caller", caller_start + 0.1, caller_start + 0.9) > 3000
    assert rec.end_reason == "caller hung up"
    assert kinds(rec)[-1] == "hangup"


async def test_the_same_call_has_the_same_timings(make_settings: Callable[..., Settings]) -> None:
    steps: list[Step] = [WaitForAgent(), speech(0.6), WaitForAgent(), HangUp()]
    one = (await simulate(make_settings, steps, TurnAgent())).rec
    two = (await simulate(make_settings, steps, TurnAgent())).rec
    assert [(e.t, e.kind) for e in one.events] == [(e.t, e.kind) for e in two.events]


async def test_barge_in_cuts_the_agent_at_once(make_settings: Callable[..., Settings]) -> None:
    agent = TurnAgent(greeting_s=0.5, reply_s=3.0)
    steps: list[Step] = [
        WaitForAgent(),
        speech(0.5),
        InterruptAfter(1.0, speech(0.6)),
        WaitForAgent(),
        HangUp(),
    ]
    rec = (await simulate(make_settings, steps, agent)).rec
    assert rec.protocol_errors == []
    barge = first(rec, "barge_in")
    reply_start = rec.turns[0].agent_start
    assert barge == pytest.approx(reply_start + 1.0, abs=0.021)
    clear = next(e for e in rec.events if e.kind == "clear_audio")
    # the agent acts on the 3rd voiced frame; everything still queued was dropped
    assert clear.t == pytest.approx(barge + 0.04)
    assert clear.detail["dropped_s"] > 1.5
    assert clear.detail["voided"] == ["reply-1"]
    assert first(rec, "cleared_audio") == pytest.approx(clear.t + 0.02)
    acked = [e.detail["name"] for e in rec.events if e.kind == "played_stream"]
    assert "reply-1" not in acked  # flushed audio never gets its playedStream
    assert "reply-2" in acked
    # the caller's ear goes quiet right after the clear, until the next reply
    assert rms(rec, "agent", clear.t + 0.02, rec.turns[1].agent_start - 0.02) < 50
    assert agent.cleared == 1


async def test_app_hangs_up_with_stop_after_its_goodbye(make_settings: Callable[..., Settings]) -> None:
    agent = TurnAgent(greeting_s=0.8, stop_after_greeting=True)
    rec = (await simulate(make_settings, [Silence(10), HangUp()], agent)).rec
    assert rec.protocol_errors == []
    assert rec.end_reason.startswith("app sent stop")
    stop_t = first(rec, "stop")
    assert stop_t >= first(rec, "played_stream")
    statuses = [e.detail["event"] for e in rec.events if e.kind == "status_callback"]
    assert statuses[0] == "StartStream"
    assert statuses[-2:] == ["StopStream", "Hangup"]
    assert rec.duration < 1.0


async def test_caller_hang_up_closes_the_socket_and_posts_hangup(
    make_settings: Callable[..., Settings],
) -> None:
    rec, _, app, _ = await simulate(make_settings, [speech(0.4), HangUp()])
    assert rec.end_reason == "caller hung up"
    hangup = [e for e in rec.events if e.kind == "status_callback" and e.detail["event"] == "Hangup"]
    assert hangup[0].detail["status"] == 204  # signed, accepted by the app in enforce mode
    assert "stop" not in kinds(rec)
    assert app.state.ctx.registry.finished[-1].end_reason == "socket-closed"
    assert rec.duration == pytest.approx(0.4)


async def test_rest_hangup_ends_the_call(make_settings: Callable[..., Settings]) -> None:
    clock = FakeClock()
    app = create_app(make_settings(signature_mode="enforce", vobiz_auth_token=AUTH_TOKEN), clock=clock)
    connector = AsgiConnector(app)
    vobiz = FakeVobiz(connector, clock, PlatformConfig(auth_token=AUTH_TOKEN))

    async def on_hangup(call_uuid: str) -> None:
        assert vobiz.hang_up(call_uuid)

    state = FakeVobizState(on_hangup=on_hangup)
    rest_app = create_fake_rest_app("MA_SIMULATOR00000001", AUTH_TOKEN, state)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=rest_app), base_url="http://vobiz")
    client = VobizClient("MA_SIMULATOR00000001", AUTH_TOKEN, "http://vobiz/api/v1", http=http)

    async def hang_up_later() -> bool:
        await clock.sleep(2.0)
        state.add_live_call("call-rest")
        return await client.hangup_call("call-rest")

    async def both() -> tuple[CallRecording, bool]:
        async with asyncio.TaskGroup() as tg:
            call = tg.create_task(vobiz.dial(ANSWER, [Silence(30), HangUp()], {}, call_id="call-rest"))
            hung = tg.create_task(hang_up_later())
        return call.result(), hung.result()

    rec, hung = await clock.run(both())
    await connector.aclose()
    await http.aclose()
    clean(rec)
    assert hung is True
    assert rec.end_reason == "hung up over the REST API"
    assert rec.duration == pytest.approx(2.0, abs=0.021)
    assert rec.events[-2].detail == {"by": "api", "reason": "hung up over the REST API"}


async def test_a_minute_of_silence_runs_on_the_virtual_clock(make_settings: Callable[..., Settings]) -> None:
    rec, clock, _, _ = await simulate(make_settings, [Silence(60), HangUp()])
    assert rec.duration == pytest.approx(60.0)
    assert len(rec.caller) == 60 * 16000  # every 20 ms frame of the minute
    assert rec.protocol_errors == []
    assert clock.now() == pytest.approx(60.0, abs=0.05)


def forms(sim: Simulated, event: str) -> list[dict[str, str]]:
    return [r.form for r in sim.tap.requests if r.form.get("Event") == event]


async def test_stream_timeout_stops_the_stream_then_the_call_ends(
    make_settings: Callable[..., Settings],
) -> None:
    """streamTimeout="2" (STREAM_TIMEOUT_SECONDS): Vobiz stops the stream after 2 s of it,
    posts StopStream, and with no XML left hangs up with 4010 (PROTOCOL.md §1.3, §4.4)."""
    sim = await simulate(make_settings, [Silence(10), HangUp()], stream_timeout_seconds=2)
    rec = sim.rec
    assert rec.end_reason == "stream timeout (End Of XML Instructions)"
    assert rec.duration == pytest.approx(2.0)
    media = [f for f in sim.tap.sockets[0].sent if '"event": "media"' in f]
    assert len(media) == 100  # exactly 2 s of 20 ms frames
    assert sim.tap.sockets[0].close_code == 1000
    events = [r.form["Event"] for r in sim.tap.requests if r.form["Event"] != "PlayedStream"]
    assert events == ["StartApp", "StartStream", "StopStream", "Hangup"]  # echo-N acks aside
    (stop,) = forms(sim, "StopStream")
    assert stop["StreamID"] == json.loads(sim.tap.sockets[0].sent[0])["start"]["streamId"]
    (hangup,) = forms(sim, "Hangup")
    assert (hangup["HangupCauseCode"], hangup["HangupSource"], hangup["Duration"]) == ("4010", "Vobiz", "2")
    assert all(r.status < 300 for r in sim.tap.requests)  # the app accepted every signed callback


async def test_no_stream_timeout_no_stop_stream(make_settings: Callable[..., Settings]) -> None:
    sim = await simulate(make_settings, [Silence(3), HangUp()])  # the app asks for 86400 s
    assert sim.rec.end_reason == "caller hung up"
    assert forms(sim, "StopStream") == []  # a caller hang-up is not a server-side stop (D18)


async def test_wall_times_are_a_fixed_epoch_plus_virtual_time(
    make_settings: Callable[..., Settings],
) -> None:
    sim = await simulate(make_settings, [Silence(61.5), HangUp()])
    (start,) = forms(sim, "StartStream")
    assert start["Timestamp"] == "2026-01-01 00:00:00"
    (hangup,) = forms(sim, "Hangup")
    assert hangup["EndTime"] == "2026-01-01 00:01:01"
    (answer,) = forms(sim, "StartApp")
    assert answer["Direction"] == "inbound"
    assert "ALegUUID" not in answer  # outbound calls only (PROTOCOL.md §1.1)
    assert "ALegRequestUUID" not in answer
