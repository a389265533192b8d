"""Usage per call, end to end: a call through the fake Vobiz on the cloud providers' real SDKs
(fake Deepgram and OpenAI servers on 127.0.0.1) ends with usage figures in its record that match
what the fakes saw, the same figures in /metrics, and ``voice-agent calls show`` printing them."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.clock import SystemClock
from app.config import Settings
from app.main import create_app
from app.records.record import CallRecord
from app.records.store import CallStore
from app.simulator.caller import HangUp, Say, Step, WaitForAgent, utterances
from app.simulator.connect import NetworkConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from tests.contract.fake_deepgram import FakeDeepgram
from tests.contract.fake_openai import API_KEY, FakeOpenAI, TextReply
from tests.e2e.test_cloud_providers import PERSONA, loud
from tests.servers import free_port, run_server, serve_in_thread

AUTH = "vobiz-auth-token"
MODEL = "gpt-4o-mini"  # priced by default: 0.15 / 0.60 USD per 1M tokens
FRAME_S = 0.02
PRICES = '{"stt": {"deepgram": 0.01}, "tts": {"deepgram": 20.0}}'  # replaces two defaults


async def metrics_when(url: str, ready: Callable[[str], bool]) -> str:
    """GET /metrics until ``ready`` holds for it (the call's end is counted just after it ends)."""
    async with httpx.AsyncClient() as client, asyncio.timeout(30.0):
        while True:
            text = (await client.get(f"{url}/metrics")).text
            if ready(text):
                return text
            await asyncio.sleep(0.05)


def sample(text: str, name: str, labels: str = "") -> float:
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, f"{prefix!r} in /metrics"
    return float(lines[0].removeprefix(prefix))


async def test_a_calls_usage_matches_what_the_providers_saw(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "default.md").write_text(
        PERSONA.replace("tools: [end_call]", f"llm_model: {MODEL}\ntools: [end_call]")
    )
    deepgram = FakeDeepgram(utterances=["What time do you open?"])
    openai = FakeOpenAI()
    openai.chat_fallback = lambda body: TextReply(["We open ", "at nine. ", "Anything else?"])
    database = f"sqlite+aiosqlite:///{tmp_path / 'calls.sqlite3'}"
    monkeypatch.setenv("PRICES", PRICES)
    with serve_in_thread(deepgram.app()) as dg_url, serve_in_thread(openai.app) as oa_url:
        port = free_port()
        settings = make_settings(
            public_url=f"http://127.0.0.1:{port}",
            signature_mode="enforce",
            vobiz_auth_token=AUTH,
            deepgram_api_key=deepgram.api_key,
            deepgram_base_url=dg_url,
            openai_api_key=API_KEY,
            openai_base_url=f"{oa_url}/v1",
            prompts_dir=tmp_path,
            providers="cloud",
            database_url=database,
        )
        with run_server(create_app(settings), port=port) as srv:
            spoken_before = len(deepgram.speak.requests)  # the greeting, rendered at start-up
            steps: list[Step] = [WaitForAgent(), Say("What time do you open?", audio=loud(1.0)),
                                 WaitForAgent(), HangUp()]  # fmt: skip
            audio = {i: s.audio for i, s in utterances(steps).items() if s.audio is not None}
            vobiz = FakeVobiz(NetworkConnector(), SystemClock(), PlatformConfig(auth_token=AUTH))
            answer = f"{srv.url}/vobiz/answer"
            rec = await vobiz.dial(answer, steps, audio, hangup_url=f"{srv.url}/vobiz/hangup")
            await vobiz.connector.aclose()
            metrics = await metrics_when(srv.url, lambda text: "voice_agent_cost_usd_total" in text
                                         and "voice_agent_calls_total{" in text)  # fmt: skip
    assert rec.protocol_errors == []
    store = CallStore.from_settings(settings)
    try:
        record = await store.get(rec.call_id)
    finally:
        await store.aclose()
    assert isinstance(record, CallRecord)
    usage = record.to_json()["usage"]

    # STT: the seconds of audio the recogniser received, within a frame of what the caller sent
    heard_s = sum(listen.bytes_received for listen in deepgram.listens) / 2 / 16000  # linear16 16 kHz
    sent_s = rec.caller.size / rec.sample_rate
    assert abs(usage["stt_seconds"] - heard_s) <= FRAME_S
    assert abs(usage["stt_seconds"] - sent_s) <= FRAME_S
    assert usage["stt"]["deepgram"]["seconds"] == usage["stt_seconds"]
    # LLM: the tokens the fake OpenAI reported, per model
    reported = openai.usage_sent
    assert reported, "the fake sent no usage chunk"
    assert {r["model"] for r in reported} == {MODEL}
    # each usage the call counted is one the fake sent: all of them, unless an early reply was
    # discarded after the fake had sent its whole stream but before the call read its last chunk
    # (on a busy machine), which the call then counts as started but not reported
    started, reported_n = usage["llm_requests"], usage["llm_requests_reported"]
    assert 1 <= reported_n <= len(reported)
    assert usage["llm"][MODEL]["requests"] == reported_n
    counted = [
        (sum(r["prompt_tokens"] for r in some), sum(r["completion_tokens"] for r in some))
        for some in itertools.combinations(reported, reported_n)
    ]
    tokens_in, tokens_out = usage["llm_input_tokens"], usage["llm_output_tokens"]
    assert (tokens_in, tokens_out) in counted
    assert started >= len(openai.requests) >= len(reported)
    assert usage["preemptive_wasted"] == record.preemptive_wasted
    # TTS: the characters of every sentence the call had synthesized (the greeting came from the cache)
    synthesized = [str(r.text) for r in deepgram.speak.requests[spoken_before:]]
    assert "We open at nine." in synthesized
    assert usage["tts_characters"] == sum(len(text) for text in synthesized)
    assert usage["tts"]["deepgram"]["characters"] == usage["tts_characters"]
    # the cost, from the PRICES setting and the defaults
    expected = (
        usage["stt_seconds"] / 60 * 0.01
        + (tokens_in * 0.15 + tokens_out * 0.60) / 1e6
        + usage["tts_characters"] * 20.0 / 1e6
    )
    assert usage["cost_usd"] == pytest.approx(expected, abs=3e-6)  # each part rounded to 1e-6
    assert usage["cost_usd"] > 0
    assert usage["unpriced"] == []

    # /metrics: the same figures
    assert sample(metrics, "voice_agent_stt_seconds_total", 'provider="deepgram"') == pytest.approx(
        usage["stt_seconds"]
    )
    llm_in = sample(metrics, "voice_agent_llm_tokens_total", f'direction="input",model="{MODEL}"')
    llm_out = sample(metrics, "voice_agent_llm_tokens_total", f'direction="output",model="{MODEL}"')
    assert (llm_in, llm_out) == (tokens_in, tokens_out)
    tts_chars = sample(metrics, "voice_agent_tts_characters_total", 'provider="deepgram"')
    assert tts_chars == usage["tts_characters"]
    assert sample(metrics, "voice_agent_cost_usd_total") == pytest.approx(usage["cost_usd"])

    # voice-agent calls show: the usage and the cost
    monkeypatch.chdir(tmp_path)  # no developer's .env
    show = ["calls", "show", rec.call_id]  # in a thread: the command runs its own event loop
    result = await asyncio.to_thread(CliRunner().invoke, cli, show, env={"DATABASE_URL": database})
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"usage: estimated cost ${usage['cost_usd']:.4f}" in out
    assert f"speech-to-text {usage['stt_seconds']:.1f} s; deepgram" in out
    assert f"language model {tokens_in} input + {tokens_out} output tokens" in out
    assert f"{MODEL}: {tokens_in} in, {tokens_out} out" in out
    assert f"text-to-speech {usage['tts_characters']} characters" in out
