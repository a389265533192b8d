"""A peer that never sends ``playedStream`` (Vobiz may lose it, PROTOCOL.md §3.3): the agent's
turns still finish once their audio has played plus a margin, on the virtual clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from app.config import Settings
from app.pipeline.turns import TurnPolicy
from app.simulator.caller import HangUp, Silence, Step, WaitForAgent
from tests.e2e.test_conversation import GREETING, RULES, agent_lines, run_call, times, words

MARGIN_S = 2.0  # Playout's default ack_margin_s


async def test_idle_reprompt_and_hang_up_without_acks(make_settings: Callable[..., Settings]) -> None:
    policy = TurnPolicy(idle_reprompt_s=4.0, max_reprompts=1)
    call = await run_call(make_settings, [Silence(60), HangUp()], [], policy=policy, acks_checkpoints=False)
    rec = call.rec
    assert times(rec, "played_stream") == []  # the peer never acked
    assert [text for text, _ in agent_lines(call)] == [GREETING, policy.reprompt, policy.idle_goodbye]
    starts, ends = times(rec, "agent_audio_start"), times(rec, "agent_audio_end")
    # the greeting's turn ends MARGIN_S after it played; then 4 s of quiet, then the reprompt
    assert starts[1] - ends[0] == pytest.approx(MARGIN_S + 4.0, abs=0.25)
    assert rec.end_reason.startswith("app sent stop")
    assert [r.method for r in call.rest.requests_to("DELETE")] == ["DELETE"]
    assert call.conversation.playout.acks_lost == len(times(rec, "checkpoint"))  # each one taken as played


async def test_goodbye_still_hangs_up_without_acks(make_settings: Callable[..., Settings]) -> None:
    steps: list[Step] = [WaitForAgent(), words("ok bye"), Silence(30), HangUp()]
    call = await run_call(make_settings, steps, ["ok bye"], acks_checkpoints=False)
    rec = call.rec
    assert agent_lines(call)[-1] == (RULES[2].reply, False)
    assert rec.end_reason.startswith("app sent stop")
    # the stop waits for the goodbye to have played, plus the margin for its lost ack
    assert times(rec, "stop")[0] == pytest.approx(times(rec, "agent_audio_end")[-1] + MARGIN_S, abs=0.25)
    assert len(call.rest.requests_to("DELETE")) == 1
    assert rec.duration < 15
