"""Every call's start and end reach the call listeners, however the call ends."""

from __future__ import annotations

from collections.abc import Callable

from app.clock import FakeClock
from app.config import Settings
from app.main import create_app
from app.pipeline.lifecycle import CallInfo, CallOutcome
from app.simulator.caller import HangUp, Silence, Step
from app.simulator.connect import AsgiConnector
from app.simulator.platform import FakeVobiz, PlatformConfig

ANSWER = "https://agent.example.com/vobiz/answer"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, CallInfo, CallOutcome | None]] = []

    async def call_started(self, call: CallInfo) -> None:
        self.events.append(("started", call, None))

    async def call_ended(self, call: CallInfo, outcome: CallOutcome) -> None:
        self.events.append(("ended", call, outcome))


class Broken:
    async def call_started(self, call: CallInfo) -> None:
        raise RuntimeError("listener bug")

    async def call_ended(self, call: CallInfo, outcome: CallOutcome) -> None:
        raise RuntimeError("listener bug")


async def test_start_and_end_with_numbers_persona_and_reason(make_settings: Callable[..., Settings]) -> None:
    clock, recorder = FakeClock(), Recorder()
    app = create_app(make_settings(), clock=clock, listeners=[Broken(), recorder])
    vobiz = FakeVobiz(AsgiConnector(app), clock, PlatformConfig())
    steps: list[Step] = [Silence(1.0), HangUp()]
    rec = await clock.run(
        vobiz.dial(ANSWER, steps, {}, from_number="+1 415 555 0100", to_number="14155550199")
    )
    assert rec.protocol_errors == []
    assert [kind for kind, _, _ in recorder.events] == ["started", "ended"]  # the broken one did not stop it
    _, call, outcome = recorder.events[1]
    assert (call.call_id, call.persona, call.caller, call.called) == (rec.call_id, "default", "14155550100",
                                                                      "14155550199")  # fmt: skip
    assert outcome is not None
    assert outcome.reason == "socket-closed"  # the caller hung up: Vobiz closes the socket
    assert outcome.stats.frames_in == 50  # 1 s of caller audio, 20 ms a frame
    assert outcome.ended_at >= call.started_at
