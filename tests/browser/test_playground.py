"""The playground and the dashboard in a real browser.

Chromium's microphone is a WAV file: a pause while the agent greets (its checkpoint is acked),
then a question asked twice with a short pause between, so the second asking comes while the
agent is answering the first: a barge-in. Chromium plays the file in a loop, so a slow machine
gets more chances. The
page speaks the Vobiz protocol over the service's media WebSocket with the offline engines
behind it. The test waits for the agent's reply audio and transcript, for the cut, then signs
in to the dashboard and opens that call. Screenshots are kept in the test's temporary folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
from playwright.sync_api import Browser, Page, expect

from app.config import Settings
from app.main import create_app
from app.simulator.audio_prep import caller_voice
from tests.servers import serve_in_thread

KEY = "dashboard-key-for-the-browser-test"
QUESTION = "What are your opening hours?"
GREETING_S = 5.0  # silence while the agent greets
GAP_S = 2.4  # between the two askings: the agent's answer starts within it and lasts longer


@pytest.fixture
def microphone(tmp_path: Path) -> Path:
    speech = caller_voice().synthesize(QUESTION)
    gap = np.zeros(int(GAP_S * speech.sample_rate), dtype=np.int16)
    greeting = np.zeros(int(GREETING_S * speech.sample_rate), dtype=np.int16)
    pcm = np.concatenate([greeting, speech.pcm, gap, speech.pcm, gap])
    path = tmp_path / "microphone.wav"
    soundfile.write(path, pcm, speech.sample_rate, subtype="PCM_16")
    return path


@pytest.fixture
def service(make_settings: Callable[..., Settings]) -> Iterator[str]:
    settings = make_settings(
        providers="offline", playground=True, calls_api_key=KEY, public_url="http://127.0.0.1:1"
    )
    with serve_in_thread(create_app(settings)) as url:
        yield url


def shot(page: Page, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_talk_interrupt_then_find_the_call_in_the_dashboard(
    launch: Callable[[Path | None], Browser], microphone: Path, service: str, tmp_path: Path
) -> None:
    browser = launch(microphone)
    page = browser.new_page()
    page.goto(f"{service}/playground")
    page.click("#talk")
    expect(page.locator("#status")).to_have_text("On the call", timeout=30_000)
    # the agent heard the question and answered it
    expect(page.locator("#transcript li.caller").first).to_contain_text("opening", timeout=90_000)
    expect(page.locator("#transcript li.agent").nth(1)).to_be_visible(timeout=90_000)
    # the question, asked again over the answer, cut it: clearAudio honoured, the cut marked
    cut = page.locator("#transcript li.agent.cut").first
    expect(cut).to_contain_text("✂ cut", timeout=120_000)
    expect(page.locator("#latency tr").first).to_be_visible()
    state = page.evaluate("window.playground")
    assert state["audioFrames"] > 10  # the agent's playAudio reached the player
    assert state["cleared"] >= 1  # clearedAudio answered the cut
    assert state["played"]  # checkpoints acknowledged once their audio had played
    shot(page, tmp_path, "playground")
    call_id = state["callId"]
    page.click("#hangup")
    expect(page.locator("#status")).to_have_text("You hung up")

    # the dashboard: sign in with the key, find the call, open it
    page.goto(f"{service}/dashboard")
    page.fill("#key", KEY)
    page.click("button[type=submit]")
    row = page.locator(f"a[href^='/dashboard/calls/{call_id}']")
    expect(row).to_be_visible(timeout=30_000)
    row.click()
    expect(page.locator("h1")).to_contain_text("Call of")
    expect(page.locator(".transcript li.agent.cut .cutmark").first).to_be_visible()
    expect(page.locator(".transcript li.caller").first).to_contain_text("opening")
    shot(page, tmp_path, "dashboard-call")


def test_the_playground_refuses_a_browser_that_comes_through_a_proxy(
    launch: Callable[[Path | None], Browser], service: str
) -> None:
    page = launch(None).new_page()
    page.set_extra_http_headers({"X-Forwarded-For": "203.0.113.9"})
    response = page.goto(f"{service}/playground")
    assert response is not None
    assert response.status == 403


def test_the_wideband_line_sends_and_plays_l16_at_16_khz(
    launch: Callable[[Path | None], Browser], microphone: Path, service: str
) -> None:
    page = launch(microphone).new_page()
    page.goto(f"{service}/playground")
    page.select_option("#format", "l16")
    page.click("#talk")
    # the greeting, answered in the line's own format, played to its checkpoint
    expect(page.locator("#transcript li.agent").first).to_contain_text("Sunrise Bakery", timeout=60_000)
    page.wait_for_function("window.playground.played.length > 0", timeout=60_000)
    assert page.evaluate("window.playground.playing") == "audio/x-l16;rate=16000"
    page.click("#hangup")
