"""A call still live when the drain times out (``CallSession.shut_down``) ends politely: the reply
in flight is cut, the caller hears the persona's shutdown line in full, then the agent hangs up
and the call's end reason is ``shutdown`` (fake Vobiz, scripted providers, virtual clock)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from app.api.deps import AppContext
from app.clock import FakeClock
from app.config import Settings
from app.pipeline.conversation import Conversation
from app.simulator.caller import Silence, Step, WaitForAgent, utterances
from app.simulator.connect import AsgiConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from tests.e2e.test_call_endings import RULES, STORY, lines, record_of, scripted_app
from tests.e2e.test_metrics import ANSWER, scrape, value, words


async def shut_down_mid_reply(ctx: AppContext, clock: FakeClock) -> None:
    """1.5 s into the agent's answer (turn 2, after the greeting): the drain's ``CLOSE``."""
    speaking_since: float | None = None
    while True:
        await clock.sleep(0.1)
        live = ctx.registry.sessions()
        agent = live[0].agent if live else None
        if isinstance(agent, Conversation) and agent.turns.turn == 2 and agent.turns.agent_speaking:
            speaking_since = speaking_since if speaking_since is not None else clock.now()
            if clock.now() - speaking_since >= 1.5:
                live[0].shut_down()
                live[0].shut_down()  # idempotent: the drain applies it on every tick
                return


async def test_a_live_conversation_hears_its_shutdown_line_then_is_hung_up(
    make_settings: Callable[..., Settings],
) -> None:
    clock = FakeClock()
    app = scripted_app(make_settings, clock, [STORY])
    ctx: AppContext = app.state.ctx
    steps: list[Step] = [WaitForAgent(), words(STORY), Silence(60.0)]
    audio = {i: say.audio for i, say in utterances(steps).items() if say.audio is not None}
    connector = AsgiConnector(app)
    vobiz = FakeVobiz(connector, clock, PlatformConfig())
    try:
        rec, _ = await clock.run(
            asyncio.gather(vobiz.dial(ANSWER, steps, audio), shut_down_mid_reply(ctx, clock))
        )
    finally:
        await connector.aclose()
    assert rec.end_reason.startswith("app sent stop")  # the agent hung up, not the caller
    assert rec.duration < 30  # long before the caller's minute of silence was over
    record = await record_of(app, rec.call_id)
    assert record.end_reason == "shutdown"
    *_, (who, cut, interrupted), last = lines(record)
    assert (who, interrupted) == ("agent", True)  # the story, cut where the caller stopped hearing it
    assert RULES[0].reply.startswith(cut)
    assert cut != RULES[0].reply
    shutdown_line = ctx.personas["default"].settings.shutdown_line
    assert last == ("agent", shutdown_line, False)  # heard in full before the hang-up
    samples = await scrape(app)
    assert value(samples, "voice_agent_calls_total", reason="shutdown") == 1
