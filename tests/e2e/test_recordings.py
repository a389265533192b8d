"""Call recordings end to end through the fake Vobiz on the virtual clock: the right channel
(the agent as heard) goes silent at the barge-in's ``clearAudio``, the left holds the caller's
speech, the disclosure line is said first, the endpoint serves the file to the key holder only,
and retention deletes an old file at start-up."""

from __future__ import annotations

import asyncio
import os
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt

from agents.builtin import BUILTIN_TOOLS
from agents.tools import ToolRegistry
from app.api.deps import AppContext
from app.audio.wav_stream import wav_header
from app.clock import FakeClock
from app.config import Settings
from app.main import create_app
from app.pipeline.control import VobizCallControl
from app.pipeline.conversation import Conversation, Providers
from app.pipeline.factory import conversation_config
from app.providers.scripted import ScriptedLLM, ScriptedSTT, ToneTTS
from app.recordings import recording_on
from app.simulator.caller import HangUp, InterruptAfter, Step, WaitForAgent, utterances
from app.simulator.connect import AsgiConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import CallRecording
from app.simulator.vobiz_rest import create_fake_rest_app
from app.simulator.vobiz_rest_state import FakeVobizState
from tests.e2e.test_conversation import ANSWER, AUTH_ID, AUTH_TOKEN, RULES, words

KEY = "recordings-key-0123456789"
DISCLOSURE = "This call may be recorded."
GREETING = "Hello, thanks for calling."
PERSONA = f"""---
display_name: Test Line
greeting: {GREETING}
recording: on
recording_disclosure: {DISCLOSURE}
tools: [end_call]
---
You answer the phone.
"""
STORY, STOP = "Tell me a story", "Stop, what time do you open?"
FRAME = 160  # 20 ms at 8 kHz, the μ-law line's rate and so the recording's


@dataclass
class Recorded:
    app_settings: Settings
    rec: CallRecording
    conversation: Conversation
    wav_rate: int
    left: npt.NDArray[np.int16]
    right: npt.NDArray[np.int16]
    response: httpx.Response
    refused: httpx.Response
    record: httpx.Response


def read_wav(data: bytes, path: Path) -> tuple[int, npt.NDArray[np.int16]]:
    path.write_bytes(data)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (2, 2)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
        return wav.getframerate(), frames


async def record_a_call(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    steps: list[Step],
    heard: list[str],
    **extra: object,
) -> Recorded:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "default.md").write_text(PERSONA)
    clock = FakeClock()
    made: list[Conversation] = []

    def factory(claims: object, ctx: AppContext) -> Conversation:
        persona = ctx.personas["default"]
        conversation = Conversation(
            config=conversation_config(persona, recording=recording_on(ctx.settings, persona)),
            providers=Providers(ScriptedSTT(heard), ScriptedLLM(RULES), ToneTTS()),
            clock=clock,
            control=VobizCallControl(ctx.vobiz, claims.call_id, "https://agent.example.com/transfer"),  # type: ignore[attr-defined]
            tools=ToolRegistry(BUILTIN_TOOLS),
            call_id=claims.call_id,  # type: ignore[attr-defined]
            persona=persona.name,
        )
        made.append(conversation)
        return conversation

    state = FakeVobizState()
    rest_app = create_fake_rest_app(AUTH_ID, AUTH_TOKEN, state)
    rest_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=rest_app), base_url="http://vobiz")
    settings = make_settings(
        prompts_dir=prompts,
        calls_api_key=KEY,
        signature_mode="enforce",
        vobiz_auth_id=AUTH_ID,
        vobiz_auth_token=AUTH_TOKEN,
        vobiz_api_base_url="http://vobiz/api/v1",
        **extra,
    )
    app = create_app(settings, clock=clock, agent_factory=factory, vobiz_http=rest_http)
    connector = AsgiConnector(app)
    vobiz = FakeVobiz(connector, clock, PlatformConfig(auth_id=AUTH_ID, auth_token=AUTH_TOKEN))
    vobiz.attach_rest(state)
    audio = {i: say.audio for i, say in utterances(steps).items() if say.audio is not None}
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent")
    try:
        async with app.router.lifespan_context(app):
            rec = await clock.run(vobiz.dial(ANSWER, steps, audio))
            url = f"/calls/{rec.call_id}/recording"
            response = await api.get(url, headers={"Authorization": f"Bearer {KEY}"})
            refused = await api.get(url)
            record = await api.get(f"/calls/{rec.call_id}", headers={"X-API-Key": KEY})
    finally:
        await api.aclose()
        await connector.aclose()
        await rest_http.aclose()
    assert rec.protocol_errors == [], rec.protocol_errors
    rate, frames = read_wav(response.content, tmp_path / "served.wav")
    return Recorded(settings, rec, made[0], rate, frames[:, 0], frames[:, 1], response, refused, record)


def times(rec: CallRecording, kind: str) -> list[float]:
    return [e.t for e in rec.events if e.kind == kind]


def loud_frames(track: npt.NDArray[np.int16], threshold: int = 300) -> npt.NDArray[np.intp]:
    """Indices of the 20 ms frames whose peak is above ``threshold``."""
    n = len(track) // FRAME
    peaks = np.abs(track[: n * FRAME].astype(np.int32)).reshape(n, FRAME).max(axis=1)
    return np.flatnonzero(peaks > threshold)


async def test_the_right_channel_stops_at_the_barge_in_and_the_left_holds_the_caller(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    steps: list[Step] = [
        WaitForAgent(),
        words(STORY),
        InterruptAfter(1.0, words(STOP)),
        WaitForAgent(),
        HangUp(),
    ]
    call = await record_a_call(make_settings, tmp_path, steps, [STORY, STOP])
    rec = call.rec
    assert call.response.status_code == 200
    assert call.response.headers["content-type"] == "audio/wav"
    assert call.wav_rate == 8000
    assert call.record.json()["recording"] == f"{rec.call_id}.wav"

    # the disclosure was said first, with the greeting, and heard whole
    agent_lines = [e for e in call.conversation.transcript if e.speaker == "agent"]
    assert agent_lines[0].text == f"{DISCLOSURE} {GREETING}"
    assert not agent_lines[0].interrupted
    assert agent_lines[1].interrupted  # the story, cut

    # the recording's time 0 is the stream's start: line its agent audio up with the phone's
    first_agent = loud_frames(call.right)[0]
    offset = round(times(rec, "agent_audio_start")[0] / 0.02) - int(first_agent)

    def frame_at(t: float) -> int:
        return round(t / 0.02) - offset

    # the right channel goes quiet within two frames of the clearAudio, until the next reply
    clear = frame_at(times(rec, "clear_audio")[0])
    resumed = frame_at(next(t for t in times(rec, "agent_audio_start") if t > times(rec, "clear_audio")[0]))
    agent = set(loud_frames(call.right).tolist())
    assert clear - 1 in agent  # it was talking up to the cut
    assert not [f for f in agent if clear + 2 <= f < resumed - 1]
    assert resumed in agent or resumed + 1 in agent
    # what was queued and never heard (about a second of story) is not in the file
    story_end = max(f for f in agent if f < clear + 2)
    assert story_end <= clear + 1

    # the left channel holds the caller's speech where the caller spoke, and silence elsewhere
    caller = set(loud_frames(call.left).tolist())
    spoken: set[int] = set()
    for start, end in zip(times(rec, "caller_speech_start"), times(rec, "caller_speech_end"), strict=True):
        spoken.update(range(frame_at(start) + 1, frame_at(end) - 1))
    assert spoken
    assert spoken <= caller
    assert len(caller - spoken) <= 4 * len(times(rec, "caller_speech_start"))  # edges only

    # the frames the phone played are the frames in the file, frame for frame (±1 at the edges)
    phone = set(loud_frames(rec.agent[::2]).tolist())  # the phone's track is 16 kHz
    shifted = {f - offset for f in phone}
    assert len(shifted ^ agent) <= 2 * len(times(rec, "agent_audio_start")) + 2

    # no key: refused
    assert call.refused.status_code == 401


async def test_without_recording_no_file_and_a_404(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    steps: list[Step] = [WaitForAgent(), HangUp()]
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "default.md").write_text(PERSONA.replace("recording: on", "recording: off"))
    settings = make_settings(prompts_dir=prompts, calls_api_key=KEY, recording=True)
    clock = FakeClock()
    app = create_app(settings, clock=clock)  # the echo agent: RECORDING=on, the persona says off
    connector = AsgiConnector(app)
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent")
    try:
        rec = await clock.run(FakeVobiz(connector, clock).dial(ANSWER, steps, {}))
        response = await api.get(f"/calls/{rec.call_id}/recording", headers={"X-API-Key": KEY})
        traversal = await api.get("/calls/..%2F..%2Fcalls.sqlite3/recording", headers={"X-API-Key": KEY})
    finally:
        await api.aclose()
        await connector.aclose()
    assert response.status_code == 404
    assert traversal.status_code == 404
    assert not (settings.data_dir / "recordings").exists() or not any(
        (settings.data_dir / "recordings").iterdir()
    )


async def test_retention_deletes_an_old_recording_at_start_up(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(recording=True, recording_retention_days=7, calls_api_key=KEY)
    folder = settings.data_dir / "recordings"
    folder.mkdir(parents=True)
    old, recent = folder / "CA-old.wav", folder / "CA-recent.wav"
    wav = wav_header(FRAME, 8000) + bytes(FRAME * 4)
    old.write_bytes(wav)
    recent.write_bytes(wav + b"partial tail of a crashed write")
    twenty_days_ago = time.time() - 20 * 86400
    os.utime(old, (twenty_days_ago, twenty_days_ago))
    app = create_app(settings, clock=FakeClock())
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent")
    try:
        async with app.router.lifespan_context(app):
            gone = await api.get("/calls/CA-old/recording", headers={"X-API-Key": KEY})
            kept = await api.get("/calls/CA-recent/recording", headers={"X-API-Key": KEY})
            await asyncio.sleep(0)
    finally:
        await api.aclose()
    assert not old.exists()
    assert recent.exists()
    assert (gone.status_code, kept.status_code) == (404, 200)
    assert kept.content == wav  # as far as its header says: a crash's partial tail is not served
