"""The fakes' benchmark knobs (``bench.turns``'s realistic profile): repeated interims, time to
first byte of Aura audio and of a chat reply, and chat replies chosen from the request."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np

from app.providers.base import LLMOptions, Message, TextDelta, TTSOptions
from app.providers.deepgram_tts import DeepgramTTS
from app.providers.openai_llm import OpenAILLM
from tests.contract.fake_deepgram import FakeDeepgram, ListenSocket, _Recogniser
from tests.contract.fake_openai import API_KEY, FakeOpenAI, TextReply
from tests.servers import serve_in_thread

QUERY = [("sample_rate", "16000"), ("interim_results", "true"), ("endpointing", "300")]


def interims(fake: FakeDeepgram) -> list[str]:
    """The interim transcripts for 1 s of loud audio, then 0.4 s of quiet."""
    recogniser = _Recogniser(ListenSocket(True, QUERY), fake)
    loud = np.full(16000, 5000, "<i2").tobytes()
    quiet = np.zeros(6400, "<i2").tobytes()
    sent = recogniser.feed(loud) + recogniser.feed(quiet)
    finals = [m for m in sent if m["type"] == "Results" and m["is_final"]]
    assert [m["channel"]["alternatives"][0]["transcript"] for m in finals] == ["one two three four"]
    return [
        m["channel"]["alternatives"][0]["transcript"]
        for m in sent
        if m["type"] == "Results" and not m["is_final"]
    ]


def test_interims_come_once_by_default_and_every_interim_every_s_when_set() -> None:
    assert interims(FakeDeepgram(utterances=["one two three four"])) == ["one two"]
    # at 0.2, 0.5 and 0.8 s of speech
    grown = interims(FakeDeepgram(utterances=["one two three four"], interim_every_s=0.3))
    assert grown == ["one two", "one two three", "one two three four"]


async def test_aura_audio_starts_after_the_speak_connect_delay() -> None:
    fake = FakeDeepgram(api_key="test-key")
    fake.speak.connect_delay = 0.25
    with serve_in_thread(fake.app()) as url:
        tts = DeepgramTTS("test-key", base_url=url)
        started = time.monotonic()
        async with contextlib.aclosing(tts.synthesize("Hello there.", TTSOptions())) as audio:
            async for _ in audio:
                first = time.monotonic() - started
                break
        await tts.aclose()
    assert first >= 0.25


async def test_chat_fallback_answers_from_the_request_after_the_first_token_delay() -> None:
    fake = FakeOpenAI()
    seen: list[Any] = []

    def answer(body: Any) -> TextReply:
        seen.append(body["messages"][-1]["content"])
        return TextReply(["We open ", "at nine."])

    fake.chat_fallback = answer
    fake.chat_first_token_delay = 0.25
    with serve_in_thread(fake.app) as url:
        llm = OpenAILLM(API_KEY, base_url=f"{url}/v1")
        started = time.monotonic()
        text, first = "", None
        async for event in llm.stream([Message("user", "When do you open?")], [], LLMOptions()):
            if isinstance(event, TextDelta):
                first = first if first is not None else time.monotonic() - started
                text += event.text
        await llm.aclose()
    assert seen == ["When do you open?"]
    assert text == "We open at nine."
    assert first is not None
    assert first >= 0.25
