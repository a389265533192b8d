"""The Hindi and Tamil example personas hold their scenarios' conversations on Sarvam: the
service with ``SARVAM_API_KEY``, the real ``sarvamai`` SDK talking to the fake Sarvam on
127.0.0.1 (realtime STT and Bulbul streaming), the persona's intents as the scripted language
model, and the fake Vobiz dialling over real sockets in real time.

The fake recogniser "hears" each caller line of the scenario (``utterances``) when the caller's
voiced audio ends; the expectations of ``scenarios/sarvam/*.yaml`` are checked against what the
agent asked Bulbul to say.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from app.clock import SystemClock
from app.config import Settings
from app.main import create_app
from app.scenarios import CallFacts, check, find_scenarios, load_scenario
from app.simulator.caller import Say, Step, utterances
from app.simulator.connect import NetworkConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from tests.contract.fake_sarvam import FakeSarvam
from tests.e2e.fake_agents import voice_like
from tests.servers import free_port, run_server, serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
AUTH = "vobiz-auth-token"
KEY = "sarvam-e2e-key"
SCENARIOS = find_scenarios(ROOT / "scenarios" / "sarvam")


def test_both_personas_have_sarvam_scenarios() -> None:
    assert {load_scenario(path).persona for path in SCENARIOS} == {"hindi", "tamil"}


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_a_persona_scenario_on_sarvam(
    path: Path, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    scenario = load_scenario(path)
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    shutil.copy(ROOT / "prompts" / f"{scenario.persona}.md", prompts)
    said = [step.text for step in scenario.steps if isinstance(step, Say)]
    # every caller line as voiced audio (the fake hears its words), 1 s each
    steps: list[Step] = [
        dataclasses.replace(s, audio=voice_like(1.0, amplitude=6000)) if isinstance(s, Say) else s
        for s in scenario.steps
    ]
    sarvam = FakeSarvam(api_key=KEY, utterances=list(said))
    with serve_in_thread(sarvam.app()) as sarvam_url:
        port = free_port()
        settings = make_settings(
            public_url=f"http://127.0.0.1:{port}",
            signature_mode="enforce",
            vobiz_auth_token=AUTH,
            sarvam_api_key=KEY,
            sarvam_base_url=sarvam_url,
            prompts_dir=prompts,
            default_persona=scenario.persona,
            providers="auto",
            turn_model="off",
        )
        with run_server(create_app(settings), port=port) as srv:
            audio = {i: s.audio for i, s in utterances(steps).items() if s.audio is not None}
            vobiz = FakeVobiz(NetworkConnector(), SystemClock(), PlatformConfig(auth_token=AUTH))
            answer = f"{srv.url}/vobiz/answer"
            rec = await vobiz.dial(answer, steps, audio, hangup_url=f"{srv.url}/vobiz/hangup")
            await vobiz.connector.aclose()

    spoken = [request.text for request in sarvam.speeches if request.status == 200]
    failures = check(scenario.expect, CallFacts(rec, agent_lines=spoken))
    assert failures == []
    assert rec.protocol_errors == []
    # Sarvam heard both caller lines in the persona's language, at 16 kHz linear16
    assert sarvam.utterances == []
    calls = [s for s in sarvam.sockets if s.events("session.begin")]
    assert calls
    persona_language = {"hindi": "hi-IN", "tamil": "ta-IN"}[scenario.persona]
    assert {(s.query["language_code"], s.query["sample_rate"]) for s in calls} == {
        (persona_language, "16000")
    }
    finals = [m["text"] for s in calls for m in s.events("transcript.final")]
    assert finals == said
    # Bulbul spoke the persona's language and voice at the call's rate (μ-law 8 kHz)
    bodies = [r.body for r in sarvam.speeches]
    assert {(b["language_code"], b["speech_sample_rate"], b["model"]) for b in bodies} == {
        (persona_language, 8000, "bulbul:v3")
    }
    assert {b["speaker"] for b in bodies} == {"priya" if scenario.persona == "hindi" else "vijay"}
