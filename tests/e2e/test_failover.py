"""Failover mid-call, through the fake Vobiz over real sockets, with the real Deepgram and OpenAI
SDKs against their fake servers on 127.0.0.1: a stage whose provider dies goes on with the next of
its chain, the caller's sentence is answered, and the call's record shows the one switch."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from app.clock import SystemClock
from app.config import Settings
from app.main import create_app
from app.providers.base import LLMOptions, Message, TextDelta
from app.providers.failover import Breakers, CallFailovers, FailoverLLM
from app.providers.openai_llm import OpenAILLM
from app.simulator.audio_prep import render_caller_audio
from app.simulator.caller import HangUp, Say, Step, WaitForAgent, utterances
from app.simulator.connect import NetworkConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import CallRecording
from tests.contract.fake_deepgram import FakeDeepgram
from tests.contract.fake_openai import API_KEY, BrokenReply, ChatReply, ErrorReply, FakeOpenAI, TextReply
from tests.e2e.fake_agents import voice_like
from tests.servers import free_port, run_server, serve_in_thread

AUTH = "vobiz-auth-token"
CALLS_KEY = "calls-api-key-0123456789"
SECONDARY_KEY = "sk-secondary-key-9876543210"
APOLOGY = "Sorry, I had a problem there"
QUESTION = "What time do you open?"
ANSWER = ["We open ", "at nine. ", "Anything else?"]


def persona(tts: str) -> str:
    return f"""---
display_name: Test Bakery
greeting: Hello! How can I help you today?
tts_provider: {tts}
tools: [end_call]
---
You are the phone assistant of a bakery. Answer in one short sentence.
"""


def loud(seconds: float) -> npt.NDArray[np.int16]:
    return voice_like(seconds, amplitude=6000)  # voiced in every frame, as speech is


async def call(
    settings: Settings, steps: list[Step], audio: dict[int, Any]
) -> tuple[CallRecording, dict[str, Any], str]:
    """Dial the service once; the call's record (once completed) and the /metrics text."""
    port = int(str(settings.public_url).rsplit(":", 1)[1].rstrip("/"))
    with run_server(create_app(settings), port=port) as srv:
        vobiz = FakeVobiz(NetworkConnector(), SystemClock(), PlatformConfig(auth_token=AUTH))
        rec = await vobiz.dial(f"{srv.url}/vobiz/answer", steps, audio, hangup_url=f"{srv.url}/vobiz/hangup")
        await vobiz.connector.aclose()
        async with httpx.AsyncClient(
            base_url=srv.url, headers={"Authorization": f"Bearer {CALLS_KEY}"}
        ) as http:
            record = await completed_record(http, rec.call_id)
            metrics = (await http.get("/metrics")).text
    return rec, record, metrics


async def completed_record(http: httpx.AsyncClient, call_id: str, wait_s: float = 60.0) -> dict[str, Any]:
    """The call's record once the service has written its end (a condition, polled)."""
    for _ in range(int(wait_s / 0.05)):
        reply = await http.get(f"/calls/{call_id}")
        if reply.status_code == 200 and reply.json()["status"] == "completed":
            body: dict[str, Any] = reply.json()
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"the record of {call_id} was not completed in {wait_s:g} s")


def cloud_settings(make_settings: Callable[..., Settings], tmp_path: Path, **overrides: Any) -> Settings:
    port = free_port()
    return make_settings(
        public_url=f"http://127.0.0.1:{port}",
        signature_mode="enforce",
        vobiz_auth_token=AUTH,
        prompts_dir=tmp_path,
        providers="cloud",
        calls_api_key=CALLS_KEY,
        turn_model="off",
        **overrides,
    )


def the_switch(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(f["stage"], f["from"], f["to"]) for f in record["failovers"]]


def counted(metrics: str, stage: str, from_: str, to: str) -> float:
    line = f'voice_agent_failovers_total{{from="{from_}",stage="{stage}",to="{to}"}} '
    found = [float(x.removeprefix(line)) for x in metrics.splitlines() if x.startswith(line)]
    assert found, metrics
    return found[0]


STEPS: list[Step] = [WaitForAgent(), Say(QUESTION, audio=loud(1.0)), WaitForAgent(), HangUp()]


def step_audio(steps: list[Step]) -> dict[int, Any]:
    return {i: s.audio for i, s in utterances(steps).items() if s.audio is not None}


@pytest.mark.parametrize(
    "failure", [ErrorReply(500), BrokenReply(chunks=("We ",))], ids=["http-500", "dropped"]
)
async def test_the_language_model_fails_over_to_the_secondary_server(
    make_settings: Callable[..., Settings], tmp_path: Path, failure: ChatReply
) -> None:
    (tmp_path / "default.md").write_text(persona("deepgram"), encoding="utf-8")
    deepgram = FakeDeepgram(utterances=[QUESTION])
    primary = FakeOpenAI()
    primary.script_chat(failure)  # then every request is a 500: nothing more is scripted
    secondary = FakeOpenAI(api_key=SECONDARY_KEY)
    secondary.chat_fallback = lambda body: TextReply(ANSWER)
    with (
        serve_in_thread(deepgram.app()) as dg_url,
        serve_in_thread(primary.app) as primary_url,
        serve_in_thread(secondary.app) as secondary_url,
    ):
        settings = cloud_settings(
            make_settings,
            tmp_path,
            deepgram_api_key=deepgram.api_key,
            deepgram_base_url=dg_url,
            openai_api_key=API_KEY,
            openai_base_url=f"{primary_url}/v1",
            secondary_llm_base_url=f"{secondary_url}/compat/v1",  # an OpenAI-compatible server
            secondary_llm_api_key=SECONDARY_KEY,
            secondary_llm_model="llama-3.1-8b",
            llm_fallback=["secondary"],
        )
        rec, record, metrics = await call(settings, STEPS, step_audio(STEPS))
    assert rec.protocol_errors == []
    assert primary.requests  # (a reply prepared on the interim words may have asked it too, and been dropped)
    asked = secondary.requests[-1].body
    assert asked["model"] == "llama-3.1-8b"
    assert asked["messages"][-1] == {"role": "user", "content": QUESTION}
    spoken = [request.text for request in deepgram.speak.requests]
    assert spoken[-2:] == ["We open at nine.", "Anything else?"]
    assert not any(APOLOGY in str(text) for text in spoken)  # switched before a word was said
    assert the_switch(record) == [("llm", "openai", "secondary")]
    assert record["transcript"][-1]["text"] == "We open at nine. Anything else?"
    assert counted(metrics, "llm", "openai", "secondary") == 1.0


async def test_the_voice_fails_over_mid_reply(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    (tmp_path / "default.md").write_text(persona("deepgram"), encoding="utf-8")
    deepgram = FakeDeepgram(utterances=[QUESTION])
    # the greeting's two sentences are rendered at start-up; the next request (the reply) breaks
    # off mid-body and the voice service is dead from then on
    deepgram.speak.die_at_request = 2
    openai = FakeOpenAI()
    openai.chat_fallback = lambda body: TextReply(ANSWER)
    with serve_in_thread(deepgram.app()) as dg_url, serve_in_thread(openai.app) as oa_url:
        settings = cloud_settings(
            make_settings,
            tmp_path,
            deepgram_api_key=deepgram.api_key,
            deepgram_base_url=dg_url,
            openai_api_key=API_KEY,
            openai_base_url=f"{oa_url}/v1",
            openai_tts_base_url=f"{oa_url}/v1",
            openai_tts_model="tts-1",
            tts_fallback=["openai"],
        )
        rec, record, metrics = await call(settings, STEPS, step_audio(STEPS))
    assert rec.protocol_errors == []
    dead = deepgram.speak.requests[2]
    assert dead.bytes_sent > 0
    assert not dead.complete
    said = [r.body["input"] for r in openai.requests if r.path.endswith("/audio/speech")]
    assert said[-2:] == ["We open at nine.", "Anything else?"]  # the sentence again, then the rest
    assert not any(APOLOGY in text for text in said)
    assert the_switch(record) == [("tts", "deepgram", "openai")]
    assert record["transcript"][-1]["speaker"] == "agent"
    assert counted(metrics, "tts", "deepgram", "openai") == 1.0
    assert rec.end_reason != ""
    assert "app sent stop" not in rec.end_reason


async def test_the_recogniser_dies_mid_utterance_and_whisper_hears_the_sentence(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    (tmp_path / "default.md").write_text(persona("openai"), encoding="utf-8")
    deepgram = FakeDeepgram(utterances=[QUESTION], drop_after_speech_s=[0.5])
    openai = FakeOpenAI()
    openai.chat_fallback = lambda body: TextReply(ANSWER)
    steps: list[Step] = [WaitForAgent(), Say(QUESTION), WaitForAgent(timeout=60.0), HangUp()]
    audio = await asyncio.to_thread(render_caller_audio, steps, 16000, None)  # spoken, for Whisper
    with run_server(deepgram.app()) as dg, serve_in_thread(openai.app) as oa_url:

        def kill() -> None:  # on the fake's loop, before it drops the socket: nothing listens any more
            for listening in dg.server.servers:
                listening.close()

        deepgram.on_drop = kill
        settings = cloud_settings(
            make_settings,
            tmp_path,
            deepgram_api_key=deepgram.api_key,
            deepgram_base_url=dg.url,
            openai_api_key=API_KEY,
            openai_base_url=f"{oa_url}/v1",
            openai_tts_base_url=f"{oa_url}/v1",
            openai_tts_model="tts-1",
            stt_fallback=["whisper"],
        )
        rec, record, metrics = await call(settings, steps, audio)
    assert rec.protocol_errors == []
    assert deepgram.listens[0].dropped
    assert len(deepgram.listens) == 1
    heard = [r.body["messages"][-1] for r in openai.requests if r.path.endswith("/chat/completions")]
    assert heard, "the caller's sentence never reached the language model"
    words = heard[-1]["content"].lower()
    assert heard[-1]["role"] == "user"
    assert "time" in words
    assert "open" in words
    said = [r.body["input"] for r in openai.requests if r.path.endswith("/audio/speech")]
    assert said[-2:] == ["We open at nine.", "Anything else?"]
    assert not any(APOLOGY in text for text in said)
    assert the_switch(record) == [("stt", "deepgram", "whisper")]
    assert counted(metrics, "stt", "deepgram", "whisper") == 1.0


async def test_a_healthy_primary_streams_through_the_chain_and_a_silent_one_is_replaced() -> None:
    """The language-model chain with the real SDK: a primary that answers streams through (its
    first event was awaited in a task of its own) with no failover, also when closed early; a
    primary that accepts the request and says nothing is replaced once the first-event deadline
    passes, and the call's later requests go straight to the secondary."""
    primary, secondary = FakeOpenAI(), FakeOpenAI(api_key=SECONDARY_KEY)
    secondary.chat_fallback = lambda body: TextReply(["Secondary here."])
    clock = SystemClock()
    with serve_in_thread(primary.app) as primary_url, serve_in_thread(secondary.app) as secondary_url:
        first = OpenAILLM(API_KEY, base_url=f"{primary_url}/v1")
        second = OpenAILLM(SECONDARY_KEY, base_url=f"{secondary_url}/compat/v1")
        # a deadline a loaded machine's first request meets (the healthy primary must not fail over)
        chain = FailoverLLM([("openai", first), ("secondary", second)], Breakers(), clock, first_event_s=3.0)
        calls = CallFailovers().enter(clock)
        ask = [Message("user", "When do you open?")]
        primary.script_chat(TextReply(ANSWER), TextReply(ANSWER))
        events = [e async for e in chain.stream(ask, [], LLMOptions(model="gpt-4o"))]
        assert [e.text for e in events if isinstance(e, TextDelta)] == ANSWER
        async with contextlib.aclosing(chain.stream(ask, [], LLMOptions(model="gpt-4o"))) as early:
            assert await anext(early) == TextDelta(ANSWER[0])  # a barge-in closes it here
        assert calls.events == []
        primary.script_chat(TextReply(ANSWER, pause_after=0))  # accepted, then silent (never released)
        events = [e async for e in chain.stream(ask, [], LLMOptions(model="gpt-4o"))]
        assert [e.text for e in events if isinstance(e, TextDelta)] == ["Secondary here."]
        assert [(f.from_, f.to, f.reason) for f in calls.events] == [("openai", "secondary", "timed out")]
        asked = len(primary.requests)
        async with contextlib.aclosing(chain.stream(ask, [], LLMOptions(model="gpt-4o"))) as again:
            assert await anext(again) == TextDelta("Secondary here.")
        assert len(primary.requests) == asked  # the switch sticks
        await first.aclose()
        await second.aclose()
