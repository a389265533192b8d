"""A whole call on the cloud providers' real SDKs: the service with Deepgram and OpenAI keys,
the SDKs talking to protocol-faithful fake Deepgram and OpenAI servers on 127.0.0.1, and the
fake Vobiz dialling over real sockets in real time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from app.clock import SystemClock
from app.config import Settings
from app.main import create_app
from app.simulator.caller import HangUp, Say, Step, WaitForAgent, utterances
from app.simulator.connect import NetworkConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from tests.contract.fake_deepgram import FakeDeepgram
from tests.contract.fake_openai import API_KEY, FakeOpenAI, TextReply
from tests.e2e.fake_agents import voice_like
from tests.servers import free_port, run_server, serve_in_thread

AUTH = "vobiz-auth-token"


def loud(seconds: float) -> npt.NDArray[np.int16]:
    return voice_like(seconds, amplitude=6000)  # voiced in every frame, as speech is


PERSONA = """---
display_name: Test Bakery
greeting: Hello! How can I help you today?
tools: [end_call]
---
You are the phone assistant of a bakery. Answer in one short sentence.
"""


async def test_a_call_on_deepgram_and_openai(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    (tmp_path / "default.md").write_text(PERSONA, encoding="utf-8")
    deepgram = FakeDeepgram(utterances=["What time do you open?"])
    openai = FakeOpenAI()
    # every request gets the answer: a reply prepared on the interim words ("What time") and
    # thrown away when the final words differ costs one request more
    openai.chat_fallback = lambda body: TextReply(["We open ", "at nine. ", "Anything else?"])
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
        )
        app = create_app(settings)
        with run_server(app, port=port) as srv:
            steps: list[Step] = [
                WaitForAgent(),
                Say("What time do you open?", audio=loud(1.0)),
                WaitForAgent(),
                HangUp(),
            ]
            audio = {i: s.audio for i, s in utterances(steps).items() if s.audio is not None}
            vobiz = FakeVobiz(NetworkConnector(), SystemClock(), PlatformConfig(auth_token=AUTH))
            answer = f"{srv.url}/vobiz/answer"
            rec = await vobiz.dial(answer, steps, audio, hangup_url=f"{srv.url}/vobiz/hangup")
            await vobiz.connector.aclose()
    assert rec.protocol_errors == []
    # the greeting and the answer were both spoken (Aura REST streaming) and heard
    assert len([e for e in rec.events if e.kind == "agent_audio_start"]) >= 2
    assert len(rec.turns) == 1
    assert rec.turns[0].latency < 1.5
    spoken = [request.text for request in deepgram.speak.requests]
    assert spoken[:2] == ["Hello!", "How can I help you today?"]
    assert spoken[-2:] == ["We open at nine.", "Anything else?"]
    discarded = len(openai.requests) - 1  # replies prepared early and thrown away
    assert len(spoken) <= 4 + discarded
    # every sentence of the call on one kept-alive connection (a discarded one mid-sentence closes its own)
    assert len(deepgram.speak.connections) <= 1 + discarded
    # Deepgram heard the caller as 16 kHz linear16 with the persona's model
    listen = deepgram.listens[0]
    assert (listen.param("encoding"), listen.param("sample_rate"), listen.param("model")) == (
        "linear16",
        "16000",
        "nova-3",
    )
    # OpenAI got the persona's prompt, the greeting as heard, and the question
    body = openai.requests[-1].body
    roles = [(m["role"], m.get("content")) for m in body["messages"]]
    assert roles[0][0] == "system"
    assert roles[1:] == [
        ("assistant", "Hello! How can I help you today?"),
        ("user", "What time do you open?"),
    ]
    assert body["model"] == "gpt-6-luna"
    assert [t["function"]["name"] for t in body["tools"]] == ["end_call"]


async def test_a_recogniser_that_never_connects_ends_the_call_with_an_apology(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    (tmp_path / "default.md").write_text(PERSONA, encoding="utf-8")
    deepgram = FakeDeepgram(listen_status=[503] * 10)  # every listen upgrade refused, retryably
    with serve_in_thread(deepgram.app()) as dg_url:
        port = free_port()
        settings = make_settings(
            public_url=f"http://127.0.0.1:{port}",
            signature_mode="enforce",
            vobiz_auth_token=AUTH,
            deepgram_api_key=deepgram.api_key,
            deepgram_base_url=dg_url,
            openai_api_key=API_KEY,
            openai_base_url="http://127.0.0.1:9/v1",  # never reached
            prompts_dir=tmp_path,
            providers="cloud",
        )
        with run_server(create_app(settings), port=port) as srv:
            steps: list[Step] = [WaitForAgent(timeout=10.0), WaitForAgent(timeout=5.0)]
            vobiz = FakeVobiz(NetworkConnector(), SystemClock(), PlatformConfig(auth_token=AUTH))
            answer = f"{srv.url}/vobiz/answer"
            rec = await vobiz.dial(answer, steps, {}, hangup_url=f"{srv.url}/vobiz/hangup")
            await vobiz.connector.aclose()
    assert len(deepgram.listens) == 4  # the first connect and three retries, backing off
    assert rec.protocol_errors == []
    spoken = " ".join(str(request.text) for request in deepgram.speak.requests)
    # the greeting was rendered once at start-up (fixed lines are cached); then, for the call,
    # the apology and goodbye
    assert spoken == (
        "Hello! How can I help you today? "
        "Sorry, I had a problem there. Could you say that again? Thank you for calling. Goodbye!"
    )
    # no greeting to a call nobody can hear: four sentences played (apology, goodbye), then it hangs up
    assert len(rec.events_of("checkpoint")) == 4
    assert rec.end_reason.startswith("app sent stop")
