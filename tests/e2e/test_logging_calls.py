"""What a call writes to the log: JSON lines that all carry the call's id, no secret, and no
transcript text or phone number (at DEBUG too)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from agents.builtin import BUILTIN_TOOLS
from agents.tools import ToolRegistry
from app.api.deps import AppContext
from app.clock import FakeClock, SystemClock
from app.config import Settings
from app.logs import JsonFormatter, KeyValueFormatter, configure_logging, extra_fields
from app.main import create_app
from app.pipeline.conversation import Conversation, ConversationConfig, Providers
from app.providers.scripted import Rule, ScriptedLLM, ScriptedSTT, ToneTTS
from app.scenarios import load_scenario, run_scenario
from app.simulator.caller import HangUp, Say, Step, WaitForAgent, utterances
from app.simulator.connect import NetworkConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.telephony.token import StreamClaims
from tests.contract.fake_deepgram import FakeDeepgram
from tests.contract.fake_openai import API_KEY, FakeOpenAI, TextReply
from tests.e2e.test_cloud_providers import PERSONA, loud
from tests.e2e.test_metrics import Unused, dial, scrape, value, words
from tests.servers import free_port, run_server, serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "What time do you open?"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The service's log set-up as ``serve`` makes it (JSON, DEBUG), into a buffer; the "app"
    logger is restored afterwards."""
    logger = logging.getLogger("app")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    out = io.StringIO()
    configure_logging("DEBUG", "json", stream=out)
    yield out
    logger.handlers[:], logger.level, logger.propagate = saved


def tone_call_app(make_settings: Callable[..., Settings], clock: FakeClock) -> FastAPI:
    """The answer's voice fails, so the apology goes out in the fallback voice: the responder
    logs the failure without naming the call (the context does)."""

    def factory(claims: StreamClaims, ctx: AppContext) -> Conversation:
        return Conversation(
            config=ConversationConfig(),
            providers=Providers(
                ScriptedSTT([QUESTION]),
                ScriptedLLM([Rule("open", "We open at nine.")]),
                ToneTTS(fail_on="nine"),
                fallback_tts=ToneTTS(),
            ),
            clock=ctx.clock,
            control=Unused(),
            tools=ToolRegistry(BUILTIN_TOOLS),
            call_id=claims.call_id,
            persona=claims.persona,
        )

    return create_app(make_settings(prompts_dir=ROOT / "prompts"), clock=clock, agent_factory=factory)


async def test_every_json_line_of_a_call_carries_its_id(
    json_log: io.StringIO, make_settings: Callable[..., Settings]
) -> None:
    clock = FakeClock()
    app = tone_call_app(make_settings, clock)
    json_log.seek(0)
    json_log.truncate()  # start-up lines are nobody's call
    steps: list[Step] = [WaitForAgent(), words(QUESTION), WaitForAgent(), HangUp()]
    rec = await dial(app, clock, steps)
    entries = [json.loads(line) for line in json_log.getvalue().splitlines()]
    messages = [e["message"] for e in entries]
    for wanted in ("call answered", "stream started", "turn latency", "call ended", "call summary"):
        assert wanted in messages
    # the responder names no call: the context of the call's tasks does
    failed = next(e for e in entries if e["message"] == "reply failed: tone-tts")
    assert (failed["logger"], failed["call_id"]) == ("app.responder", rec.call_id)
    assert [e for e in entries if e.get("call_id") != rec.call_id] == []
    (turn,) = [e for e in entries if e["message"] == "turn latency"]
    assert turn["turn"] == 2  # the greeting was turn 1
    assert set(turn) >= {f"{stage}_ms" for stage in ("stt_final", "llm_first_token", "first_play_audio")}
    summary = next(e for e in entries if e["message"] == "call summary")
    assert (summary["turns"], summary["barge_ins"], summary["provider_errors"]) == (1, 0, 1)
    assert all(e["level"] in {"DEBUG", "INFO", "WARNING"} for e in entries)
    # the apology was spoken in the fallback voice: the turn was heard, and the error counted
    samples = await scrape(app)
    assert value(samples, "voice_agent_turn_latency_seconds_count", stage="first_play_audio") == 1
    assert value(samples, "voice_agent_provider_errors_total") == 1


def rendered(record: logging.LogRecord) -> str:
    """Everything a log line could show of ``record``, in both formats, plus its raw args."""
    return "\n".join(
        [
            JsonFormatter().format(record),
            KeyValueFormatter("%(message)s").format(record),
            repr(record.args),
            repr(extra_fields(record)),
        ]
    )


async def test_no_secret_reaches_any_log_record(
    caplog: pytest.LogCaptureFixture, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A whole call on the cloud SDKs (fake Deepgram and OpenAI on 127.0.0.1) with every key
    set, every logger at DEBUG: no key, token or secret appears in any record."""
    caplog.set_level(logging.DEBUG)
    (tmp_path / "default.md").write_text(PERSONA, encoding="utf-8")
    deepgram = FakeDeepgram(utterances=[QUESTION])
    openai = FakeOpenAI()
    openai.script_chat(TextReply(["We open ", "at nine. ", "Anything else?"]))
    vobiz_token, token_secret = "vobiz-auth-token-7c1e9a", "stream-token-secret-5b2d8f1e"
    with serve_in_thread(deepgram.app()) as dg_url, serve_in_thread(openai.app) as oa_url:
        port = free_port()
        settings = make_settings(
            public_url=f"http://127.0.0.1:{port}",
            signature_mode="enforce",
            vobiz_auth_id="MA_LOGTEST0000000001",
            vobiz_auth_token=vobiz_token,
            stream_token_secret=token_secret,
            deepgram_api_key=deepgram.api_key,
            deepgram_base_url=dg_url,
            openai_api_key=API_KEY,
            openai_base_url=f"{oa_url}/v1",
            prompts_dir=tmp_path,
            providers="cloud",
        )
        with run_server(create_app(settings), port=port) as srv:
            steps: list[Step] = [WaitForAgent(), Say(QUESTION, audio=loud(1.0)), WaitForAgent(), HangUp()]
            audio = {i: s.audio for i, s in utterances(steps).items() if s.audio is not None}
            vobiz = FakeVobiz(NetworkConnector(), SystemClock(), PlatformConfig(auth_token=vobiz_token))
            rec = await vobiz.dial(
                f"{srv.url}/vobiz/answer", steps, audio, hangup_url=f"{srv.url}/vobiz/hangup"
            )
            await vobiz.connector.aclose()
    assert rec.protocol_errors == []
    assert len(rec.turns) == 1  # the keys were really used: the call was answered
    secrets = [deepgram.api_key, API_KEY, vobiz_token, token_secret]
    assert len(caplog.records) > 20
    for record in caplog.records:
        text = rendered(record)
        for secret in secrets:
            assert secret not in text, (record.name, record.getMessage())


def pii_pattern(texts: list[str], numbers: list[str]) -> re.Pattern[str]:
    """Any of the call's lines (whole, case and punctuation aside) or numbers (as digits)."""
    lines = {re.sub(r"[^a-z0-9 ]", "", t.lower()).strip() for t in texts}
    alternatives = [r"\W+".join(map(re.escape, line.split())) for line in lines if len(line) >= 8]
    alternatives += [re.escape(n[-10:]) for n in numbers]
    return re.compile("|".join(alternatives), re.IGNORECASE)


async def test_no_transcript_or_phone_number_in_the_log(
    json_log: io.StringIO, caplog: pytest.LogCaptureFixture, make_settings: Callable[..., Settings]
) -> None:
    """A booking on the embedded engines (the caller's name, day and time said aloud), the
    service's loggers at DEBUG: no record's message, args or fields holds what was said or a
    phone number, and neither does the JSON the service writes.

    Libraries log content at DEBUG (``piper.voice`` the text it speaks, ``aiosqlite`` SQL
    parameters); the service's log set-up routes only its own loggers, so that never reaches
    its output, as the last assertion shows."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("app").addHandler(caplog.handler)  # the fixture restores the handlers
    scenario = load_scenario(ROOT / "scenarios" / "clinic-booking.yaml")
    outcome = await run_scenario(scenario, make_settings(prompts_dir=ROOT / "prompts"))
    assert outcome.failures == []
    assert outcome.facts is not None
    recording = outcome.facts.recording
    said = [line.text for line in recording.transcript + recording.heard]
    assert any("John Smith" in text for text in said)
    pattern = pii_pattern([*said, "John Smith"], ["+14155550100", "14155550199"])
    assert pattern.search("booked John Smith on Monday")  # the check itself finds them
    assert pattern.search("from +14155550100")
    own = [r for r in caplog.records if r.name.startswith("app")]
    assert any(r.getMessage() == "turn latency" for r in own)
    assert [(r.name, r.getMessage()) for r in own if pattern.search(rendered(r))] == []
    written = json_log.getvalue()
    assert '"message":"turn latency"' in written
    assert pattern.findall(written) == []
    assert any(pattern.search(rendered(r)) for r in caplog.records if r.name == "piper.voice")
