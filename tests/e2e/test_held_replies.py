"""Held (preemptive) replies, end to end: ``Respond(held=True)`` prepares a reply unheard,
``Commit`` plays it at once, ``Cancel`` discards it. The turn-taker does not hold replies yet, so
a test turn-taker holds the chosen turns and the test commits or cancels them at chosen times
on the virtual clock (as in test_conversation, every timing is exact)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine

import pytest

from agents.builtin import BUILTIN_TOOLS
from agents.tools import ToolContext, ToolRegistry, tool
from app.config import Settings
from app.pipeline.conversation import INTERRUPTED_MARK, Conversation
from app.pipeline.reply import ReplyState
from app.pipeline.turns import CallOver, Cancel, Commit, Respond, TurnAction, TurnEvent, TurnPolicy, TurnTaker
from app.providers.base import Message
from app.providers.scripted import Rule, ScriptedLLM, ToneTTS
from app.simulator.caller import HangUp, InterruptAfter, Silence, Step, WaitForAgent
from tests.e2e.test_conversation import GREETING, RULES, agent_lines, run_call, times, words

QUESTION = "What time do you open?"
ANSWER = RULES[0].reply  # two sentences
DECIDE_AT = 4.0  # when the test commits or cancels: the caller's turn ended at about 2.4 s
BEFORE, AFTER, HOURS = "Let me check the hours.", "We open at nine.", "open 09:00-17:00"


@dataclasses.dataclass
class HoldingTurns(TurnTaker):
    """Answers the caller's turns ``hold`` with a held reply (as the turn-taker does when the end
    of the turn is likely but not certain); the test commits or cancels it."""

    hold: frozenset[int] = frozenset({2})

    def handle(self, event: TurnEvent) -> list[TurnAction]:
        actions = super().handle(event)
        if isinstance(event, CallOver):
            return actions  # the caller's last words are written down, never answered
        return [
            dataclasses.replace(a, held=True) if isinstance(a, Respond) and a.turn in self.hold else a
            for a in actions
        ]


def not_preemptive(policy: TurnPolicy) -> TurnPolicy:
    """The turn-taker's own preemption off: the test chooses what to hold, commit or cancel."""
    return dataclasses.replace(policy, eot=dataclasses.replace(policy.eot, preemptive=False))


def plain(conversation: Conversation) -> None:
    conversation.turns = TurnTaker(not_preemptive(conversation.turns.policy))


def holding(conversation: Conversation) -> None:
    conversation.turns = HoldingTurns(not_preemptive(conversation.turns.policy))


def at(
    t: float, *actions: TurnAction, check: Callable[[Conversation], None] | None = None
) -> Callable[[Conversation], Coroutine[None, None, None]]:
    """A script that applies ``actions`` at ``t`` on the call's clock (after ``check``)."""

    async def script(conversation: Conversation) -> None:
        await conversation.clock.sleep(t - conversation.clock.now())
        assert 2 in conversation.replies, "the caller's turn had not ended yet"
        if check is not None:
            check(conversation)
        conversation._apply(list(actions))

    return script


def steps_after_question(rest: float = 4.0) -> list[Step]:
    return [WaitForAgent(), words(QUESTION), Silence(rest), HangUp()]


def prepared_unheard(llm: ScriptedLLM, tts: ToneTTS) -> Callable[[Conversation], None]:
    """Checks, just before the commit, that the reply was prepared but nothing of it is kept."""

    def check(conversation: Conversation) -> None:
        reply = conversation.replies[2]
        assert reply.held
        assert not reply.audible
        # the LLM answered the history plus the caller's words; the history does not have them
        assert llm.requests[-1][-1] == Message("user", QUESTION)
        assert [m.role for m in conversation.history] == ["system", "assistant"]
        assert [e.speaker for e in conversation.transcript] == ["agent"]
        assert tts.spoken == [GREETING, *ANSWER_SENTENCES]  # its audio is ready
        assert conversation.latency.turns[2].turn_end is None

    return check


ANSWER_SENTENCES = ["We open at nine tomorrow.", "Is there anything else?"]


async def test_a_held_reply_plays_nothing_until_committed_then_at_once(
    make_settings: Callable[..., Settings],
) -> None:
    llm, tts = ScriptedLLM(RULES), ToneTTS()
    check = prepared_unheard(llm, tts)
    call = await run_call(
        make_settings,
        steps_after_question(),
        [QUESTION],
        llm=llm,
        tts=tts,
        setup=holding,
        during=at(DECIDE_AT, Commit(2), check=check),
    )
    conversation, rec = call.conversation, call.rec
    # nothing of turn 2 went out before the commit: no playAudio, no checkpoint
    checkpoints = [e for e in rec.events if e.kind == "checkpoint" and e.detail["name"].startswith("t2-")]
    assert min(e.t for e in checkpoints) > DECIDE_AT
    assert times(rec, "agent_audio_start") == [pytest.approx(0.02), DECIDE_AT]  # heard at once
    stamps = conversation.latency.turns[2]
    assert stamps.first_play_audio == DECIDE_AT  # written at the commit's instant
    assert stamps.turn_end == DECIDE_AT
    # prepared before the commit: the LLM's first token came with the final transcript
    assert stamps.stt_final is not None
    assert stamps.llm_first_token == stamps.stt_final < DECIDE_AT
    assert stamps.speech_end is not None
    assert stamps.speech_end < stamps.stt_final
    # from the commit on it is an ordinary reply: written down, heard in full, once
    assert conversation.history[1:] == [
        Message("assistant", GREETING),
        Message("user", QUESTION),
        Message("assistant", ANSWER),
    ]
    assert conversation.replies[2].user_index == 2
    caller = [e for e in conversation.transcript if e.speaker == "caller"]
    assert [(e.t, e.text) for e in caller] == [(DECIDE_AT, QUESTION)]
    assert agent_lines(call) == [(GREETING, False), (ANSWER, False)]
    assert conversation.replies[2].state is ReplyState.FINISHED
    assert len(llm.requests) == 1  # the prepared answer was used, not asked again
    assert (conversation.preemptive_started, conversation.preemptive_committed) == (1, 1)
    assert conversation.preemptive_wasted == 0


async def test_a_cancelled_held_reply_is_never_heard_nor_kept(
    make_settings: Callable[..., Settings],
) -> None:
    llm, tts = ScriptedLLM(RULES), ToneTTS()
    call = await run_call(
        make_settings,
        steps_after_question(),
        [QUESTION],
        llm=llm,
        tts=tts,
        setup=holding,
        during=at(DECIDE_AT, Cancel(2), check=prepared_unheard(llm, tts)),
    )
    conversation, rec = call.conversation, call.rec
    assert times(rec, "agent_audio_start") == [pytest.approx(0.02)]  # the greeting only
    assert [e.detail["name"] for e in rec.events if e.kind == "checkpoint"] == ["t1-s1"]
    assert rec.events_of("clear_audio") == []
    assert [m.role for m in conversation.history] == ["system", "assistant"]
    assert agent_lines(call) == [(GREETING, False)]
    assert [e.speaker for e in conversation.transcript] == ["agent"]
    reply = conversation.replies[2]
    assert reply.state is ReplyState.CANCELLED
    assert not reply.audible
    assert reply.task is not None
    assert reply.task.done()
    assert 2 not in conversation.latency.turns  # no stamps, no "interrupted" mark
    assert llm.closed == len(llm.requests) == 1  # its stream was closed
    assert (conversation.preemptive_started, conversation.preemptive_committed) == (1, 0)
    assert conversation.preemptive_wasted == 1


def hours_call(ran: list[float]) -> tuple[ScriptedLLM, ToolRegistry]:
    @tool
    async def lookup_hours(ctx: ToolContext) -> str:
        """The opening hours."""
        ran.append(ctx.clock.now())
        return HOURS

    llm = ScriptedLLM([Rule(r"open", BEFORE, tool="lookup_hours", after_tool=AFTER)])
    return llm, ToolRegistry({"lookup_hours": lookup_hours, **BUILTIN_TOOLS})


async def test_a_held_reply_runs_its_tool_only_once_committed(
    make_settings: Callable[..., Settings],
) -> None:
    ran: list[float] = []
    llm, tools = hours_call(ran)

    def before_commit(conversation: Conversation) -> None:
        assert ran == []  # the model asked for the tool long ago
        assert len(llm.requests) == 1
        assert conversation.replies[2].responder.result.text == BEFORE

    call = await run_call(
        make_settings,
        steps_after_question(),
        [QUESTION],
        llm=llm,
        tools=tools,
        setup=holding,
        during=at(DECIDE_AT, Commit(2), check=before_commit),
    )
    conversation = call.conversation
    assert ran == [DECIDE_AT]  # at the commit's instant
    assert conversation.latency.turns[2].first_play_audio == DECIDE_AT  # "let me check" plays meanwhile
    [asked] = llm.requests[1][-2].tool_calls
    assert conversation.history[3:] == [
        Message("assistant", BEFORE, tool_calls=(asked,)),
        Message("tool", HOURS, tool_call_id=asked.id),
        Message("assistant", AFTER),
    ]
    assert agent_lines(call)[1] == (f"{BEFORE} {AFTER}", False)


async def test_a_held_reply_cancelled_while_its_tool_waits_never_runs_it(
    make_settings: Callable[..., Settings],
) -> None:
    ran: list[float] = []
    llm, tools = hours_call(ran)
    call = await run_call(
        make_settings,
        steps_after_question(),
        [QUESTION],
        llm=llm,
        tools=tools,
        setup=holding,
        during=at(DECIDE_AT, Cancel(2)),
    )
    conversation = call.conversation
    assert ran == []
    assert len(llm.requests) == 1  # no round after a tool result
    task = conversation.replies[2].task
    assert task is not None
    assert task.cancelled()
    assert [m.role for m in conversation.history] == ["system", "assistant"]
    assert agent_lines(call) == [(GREETING, False)]
    assert conversation.preemptive_wasted == 1


async def test_a_committed_reply_is_barged_into_like_any_other(
    make_settings: Callable[..., Settings],
) -> None:
    story, barge = "Tell me a story", "Stop, what time do you open?"
    steps: list[Step] = [WaitForAgent(), words(story), InterruptAfter(1.0, words(barge)), WaitForAgent()]
    script = at(DECIDE_AT, Commit(2))
    call = await run_call(make_settings, [*steps, HangUp()], [story, barge], setup=holding, during=script)
    conversation, rec = call.conversation, call.rec
    assert conversation.latency.turns[2].first_play_audio == DECIDE_AT
    assert conversation.barge_ins == 1
    assert len(rec.events_of("clear_audio")) == 1
    story_reply, answer = conversation.replies[2], conversation.replies[3]
    assert (story_reply.state, story_reply.heard) == (ReplyState.CANCELLED, "Once upon a time")
    assert conversation.latency.turns[2].interrupted
    # the history has what was heard of the committed reply, then the caller's interruption
    assert conversation.history[2:] == [
        Message("user", story),
        Message("assistant", "Once upon a time" + INTERRUPTED_MARK),
        Message("user", barge),
        Message("assistant", ANSWER),
    ]
    assert agent_lines(call) == [(GREETING, False), ("Once upon a time", True), (ANSWER, False)]
    assert answer.state is ReplyState.FINISHED
    assert (conversation.preemptive_started, conversation.preemptive_committed) == (1, 1)
    assert conversation.preemptive_wasted == 0


async def test_a_reply_still_held_when_the_call_ends_is_discarded(
    make_settings: Callable[..., Settings],
) -> None:
    llm = ScriptedLLM(RULES)
    call = await run_call(make_settings, steps_after_question(), [QUESTION], llm=llm, setup=holding)
    conversation = call.conversation
    assert times(call.rec, "agent_audio_start") == [pytest.approx(0.02)]
    assert conversation.replies[2].state is ReplyState.CANCELLED
    assert [m.role for m in conversation.history] == ["system", "assistant"]
    assert len(llm.requests) == 1
    assert (conversation.preemptive_started, conversation.preemptive_wasted) == (1, 1)


async def test_a_held_reply_cancelled_before_its_llm_request_costs_nothing(
    make_settings: Callable[..., Settings],
) -> None:
    llm = ScriptedLLM(RULES)
    # prepared and abandoned in one go: its task never ran
    script = at(DECIDE_AT, Respond(3, "Tell me a story", held=True), Cancel(3))
    call = await run_call(
        make_settings, steps_after_question(), [QUESTION], llm=llm, setup=plain, during=script
    )
    conversation = call.conversation
    assert conversation.replies[3].state is ReplyState.CANCELLED
    assert all(r[-1].content != "Tell me a story" for r in llm.requests)
    assert (conversation.preemptive_started, conversation.preemptive_wasted) == (1, 0)
    assert agent_lines(call) == [(GREETING, False), (ANSWER, False)]  # turn 2 was answered as usual
