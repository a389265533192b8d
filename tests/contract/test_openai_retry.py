"""The responder's one quick retry and first-token deadline, with the real OpenAI providers
against the stricter fake OpenAI (127.0.0.1); every wait is on the virtual clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest

from app.audio.formats import MULAW_8K
from app.clock import FakeClock
from app.pipeline.latency import TurnStamps
from app.pipeline.playout import Playout
from app.pipeline.responder import FIRST_TOKEN_S, RETRY_WAIT_S, Responder
from app.pipeline.turns import Floor
from app.providers.base import LLMOptions, Message, ToolCall, TTSOptions
from app.providers.openai_llm import OpenAILLM
from app.providers.openai_tts import OpenAITTS
from tests.contract.fake_openai import API_KEY, ErrorReply, FakeOpenAI, InStreamError, TextReply
from tests.servers import serve_in_thread

HISTORY = [Message("system", "You are brief."), Message("user", "Hello?")]
APOLOGY = "Sorry, I had a problem there."


@dataclass
class Wire:
    """The playout's sink (frames are only counted) and the floor it reads."""

    frames: int = 0
    floor: Floor = Floor.SPEAKING

    async def send_frame(self, payload: bytes, mark: int | None = None) -> None:
        self.frames += 1

    def checkpoint(self, name: str) -> None:
        pass

    def clear(self) -> None:
        pass


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve_in_thread(fake.app) as url:
        yield fake, url


@pytest.fixture
def fake(served: tuple[FakeOpenAI, str]) -> Iterator[FakeOpenAI]:
    served[0].reset()
    yield served[0]
    if served[0].requests:
        served[0].release()  # a reply left stalled by the test ends now


@pytest.fixture
async def engines(
    served: tuple[FakeOpenAI, str], fake: FakeOpenAI
) -> AsyncIterator[tuple[OpenAILLM, OpenAITTS]]:
    llm = OpenAILLM(API_KEY, base_url=f"{served[1]}/v1")
    tts = OpenAITTS(API_KEY, model="gpt-4o-mini-tts", base_url=f"{served[1]}/v1")
    yield llm, tts
    await llm.aclose()
    await tts.aclose()


async def until(condition: Callable[[], bool]) -> None:
    """Wait (real time, bounded) for the HTTP side to bring the responder to ``condition``."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the responder never got there")


async def no_tool(call: ToolCall) -> str:
    raise AssertionError("no tool expected")


def make(engines: tuple[OpenAILLM, OpenAITTS], clock: FakeClock) -> Responder:
    playout = Playout(clock=clock, sink=Wire(), turns=Wire())
    return Responder(
        turn=1,
        playout=playout,
        tts=engines[1],
        tts_options=TTSOptions(),
        out_format=MULAW_8K,
        clock=clock,
        stamps=TurnStamps(1),
        apology=APOLOGY,
    )


async def reply_stepping(
    engines: tuple[OpenAILLM, OpenAITTS], fake: FakeOpenAI, waits: list[float]
) -> Responder:
    """Run one reply; each of ``waits`` is a sleep the responder must reach (measured from the
    clock's time then, once the fake has seen the first request), and the clock is moved past it."""
    clock = FakeClock()
    responder = make(engines, clock)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(responder.reply(engines[0], HISTORY, [], LLMOptions(), no_tool))
        for wait in waits:
            due = clock.now() + wait
            await until(lambda due=due: (due in clock.deadlines() and bool(fake.requests)) or task.done())  # type: ignore[misc]
            assert not task.done(), "the reply ended without the expected wait"
            await clock.advance(wait)
        await asyncio.wait_for(asyncio.shield(task), 30)
    return responder


async def test_a_429_is_retried_once_after_its_retry_after(
    engines: tuple[OpenAILLM, OpenAITTS], fake: FakeOpenAI
) -> None:
    fake.script_chat(ErrorReply(429, type="requests", code="rate_limit_exceeded", retry_after="0.5"))
    fake.script_chat(TextReply(["Hello there."]))
    responder = await reply_stepping(engines, fake, [0.5])
    assert not responder.result.failed
    assert responder.result.spoken == [(0, "Hello there.")]
    assert [r.path for r in fake.requests].count("/v1/chat/completions") == 2


async def test_a_retry_after_beyond_a_second_is_not_waited_for(
    engines: tuple[OpenAILLM, OpenAITTS], fake: FakeOpenAI
) -> None:
    fake.script_chat(ErrorReply(429, type="requests", code="rate_limit_exceeded", retry_after="5"))
    responder = await reply_stepping(engines, fake, [])
    assert responder.result.failed
    assert responder.result.spoken == [(0, APOLOGY)]


async def test_a_5xx_of_the_voice_is_retried_once_quickly(
    engines: tuple[OpenAILLM, OpenAITTS], fake: FakeOpenAI
) -> None:
    fake.script_chat(TextReply(["Hello there."]))
    fake.script_speech(ErrorReply(503))
    responder = await reply_stepping(engines, fake, [RETRY_WAIT_S])
    assert not responder.result.failed
    assert not responder.result.tts_failed
    assert responder.result.spoken == [(0, "Hello there.")]


async def test_nothing_is_retried_once_part_of_the_round_was_spoken(
    engines: tuple[OpenAILLM, OpenAITTS], fake: FakeOpenAI
) -> None:
    fake.script_chat(InStreamError(chunks=("Hello there. And", " then")))
    responder = await reply_stepping(engines, fake, [])
    assert responder.result.failed
    assert responder.result.spoken == [(0, "Hello there."), (0, APOLOGY)]
    assert [r.path for r in fake.requests].count("/v1/chat/completions") == 1


async def test_a_stalled_first_token_hits_the_deadline_and_is_retried(
    engines: tuple[OpenAILLM, OpenAITTS], fake: FakeOpenAI
) -> None:
    fake.script_chat(TextReply(["Late."], pause_after=1))  # the role chunk, then nothing
    fake.script_chat(TextReply(["Hello again."]))
    responder = await reply_stepping(engines, fake, [FIRST_TOKEN_S, RETRY_WAIT_S])
    assert not responder.result.failed
    assert responder.result.spoken == [(0, "Hello again.")]
