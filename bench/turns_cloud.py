"""``bench.turns``'s realistic profile: the real ``deepgram-sdk`` and ``openai`` clients against
the contract tests' fake servers (``tests.contract``) on 127.0.0.1, with the published delays.

- Deepgram live STT: interim results every 300 ms of speech, the final after the app's
  ``endpointing`` (300 ms) of quiet; the words are the caller's lines in order;
- OpenAI chat: the first token 350 ms after the request, the reply chosen by the same rules as
  the zero-latency profile's (a long one, ≥ 6 s of audio, for the menu);
- Deepgram Aura TTS: the first byte 200 ms after each sentence is flushed.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from app.clock import SystemClock
from app.config import Settings
from app.providers.registry import build_providers
from bench.turns_run import Profile
from bench.turns_scripts import LONG_ANSWER, Behaviour, heard_lines
from tests.contract.fake_deepgram import FakeDeepgram
from tests.contract.fake_openai import API_KEY, FakeOpenAI, TextReply
from tests.servers import serve_in_thread

INTERIM_EVERY_S = 0.3
LLM_FIRST_TOKEN_S = 0.35
TTS_FIRST_BYTE_S = 0.2
DEEPGRAM_KEY = "bench-deepgram-key"
# the fake Aura speaks 20 ms a character: twice the long answer is about 6 s
REPLIES = [
    ("menu", f"{LONG_ANSWER} {LONG_ANSWER}"),
    ("open", "We open at seven tomorrow."),
    (r"book|table|people", "A table for four tonight, lovely."),
    (r"number|\d", "Thanks, I have noted your number."),
    ("tomorrow", "Tomorrow it is."),
]


def answer(body: Any) -> TextReply:
    """The fake OpenAI's reply to a chat request: by rule on the caller's last words."""
    said = next((m.get("content") or "" for m in reversed(body["messages"]) if m["role"] == "user"), "")
    reply = next((r for p, r in REPLIES if re.search(p, str(said), re.IGNORECASE)), f"You said {said}")
    words = reply.split(" ")
    return TextReply([w if i == 0 else f" {w}" for i, w in enumerate(words)])


@contextlib.contextmanager
def realistic() -> Iterator[Profile]:
    deepgram = FakeDeepgram(api_key=DEEPGRAM_KEY, interim_every_s=INTERIM_EVERY_S)
    deepgram.speak.connect_delay = TTS_FIRST_BYTE_S  # Aura's first byte
    openai = FakeOpenAI()
    openai.chat_fallback = answer
    openai.chat_first_token_delay = LLM_FIRST_TOKEN_S
    with serve_in_thread(deepgram.app()) as dg_url, serve_in_thread(openai.app) as oa_url:
        settings = Settings(
            _env_file=None,
            providers="cloud",
            deepgram_api_key=DEEPGRAM_KEY,
            deepgram_base_url=dg_url,
            openai_api_key=API_KEY,
            openai_base_url=f"{oa_url}/v1",
        )
        shared = build_providers(settings, SystemClock())
        assert shared is not None

        def before_call(behaviour: Behaviour) -> None:
            deepgram.utterances = heard_lines(behaviour)

        def requests() -> int:
            return sum(1 for r in openai.requests if r.path.endswith("/chat/completions"))

        yield Profile(lambda _: shared, before_call, requests, shared)
