"""``python -m bench failover``: what a provider failover costs, per stage, on this machine: the
time from the failure to the first words or audio from the fallback.

The real SDKs against the project's fake servers on 127.0.0.1 (tests/contract), through the
failover wrappers of ``app/providers`` (one fresh breaker board per run, so every run fails over
rather than skipping an open breaker; the breaker-open path is measured on its own). All times are
``time.monotonic()`` (``SystemClock``); the fakes answer at once, so what is measured is the
failover's own cost: detecting the failure, opening the fallback, and the fallback's first output.

* **llm-500**: the primary answers HTTP 500 → the secondary (another fake, an OpenAI-compatible
  server) streams the reply. From the 500's arrival (the failover's stamp) to the secondary's
  first token, and to the first audio of its first sentence (Deepgram Aura fake).
* **llm-silent**: the primary accepts and never answers → after ``FIRST_EVENT_S`` the secondary is
  asked. From the request to the first token (the deadline dominates).
* **tts**: the primary voice (Deepgram Aura fake) breaks off mid-sentence and dies → the fallback
  (OpenAI speech fake, 24 kHz, resampled) says the sentence. From the break to the first fallback audio.
* **tts-breaker-open**: a call after the breaker opened: straight to the fallback. From the request
  to the first audio (no failure to wait for).
* **stt**: the primary recogniser (Deepgram fake) drops 0.5 s into a spoken sentence and its server
  stops listening; Deepgram's own reconnects (3, backing off 0.1/0.2/0.4 s) are refused, then the
  chain opens Whisper (tiny.en, embedded) and replays the sentence so far. Audio is fed in real
  time. From the drop to the switch, and from the drop to Whisper's final words (after the
  caller's end of speech, which is when a recogniser without interim words answers).
* **stt-no-failure**: the same sentence through Whisper alone (no failover): the baseline the
  ``stt`` figures compare with, measured in the same run, each run after a failing one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from typing import Any

import numpy as np

from app.clock import SystemClock
from app.providers.base import LLMOptions, Message, STTOptions, Transcript, TTSOptions
from app.providers.deepgram_stt import DeepgramSTT
from app.providers.deepgram_tts import DeepgramTTS
from app.providers.failover import (
    FIRST_EVENT_S,
    Breakers,
    CallFailovers,
    FailoverLLM,
    FailoverTTS,
    NamedModel,
)
from app.providers.failover_stt import FailoverSTT
from app.providers.openai_llm import OpenAILLM
from app.providers.openai_tts import OpenAITTS
from tests.contract.fake_deepgram import FakeDeepgram
from tests.contract.fake_openai import API_KEY, ErrorReply, FakeOpenAI, TextReply
from tests.servers import run_server, serve_in_thread

CLOCK = SystemClock()
SENTENCE = "What time do you open on Saturday?"


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


async def llm_once(primary_url: str, secondary_url: str, tts: DeepgramTTS) -> dict[str, float]:
    calls = CallFailovers().enter(CLOCK)
    primary = OpenAILLM(API_KEY, base_url=f"{primary_url}/v1")
    secondary = NamedModel(OpenAILLM("sk-2", base_url=f"{secondary_url}/compat/v1"), "secondary", "llama")
    chain = FailoverLLM([("openai", primary), ("secondary", secondary)], Breakers(), CLOCK)
    started = time.monotonic()
    first_token = None
    text = ""
    async for event in chain.stream([Message("user", "When do you open?")], [], LLMOptions(model="gpt-4o")):
        if first_token is None:
            first_token = time.monotonic()
        text += getattr(event, "text", "")
        if "." in text:
            break
    if not (first_token is not None and calls.events):
        raise RuntimeError("no failover happened")
    failed = calls.events[0].t
    async for _chunk in tts.synthesize(text.split(".")[0] + ".", TTSOptions()):
        first_audio = time.monotonic()
        break
    await primary.aclose()
    await secondary.inner.aclose()  # type: ignore[attr-defined]
    return {
        "request_to_failure_ms": ms(failed - started),
        "failure_to_first_token_ms": ms(first_token - failed),
        "failure_to_first_audio_ms": ms(first_audio - failed),
    }


async def tts_once(dg_url: str, oa_url: str, breakers: Breakers, die: bool) -> dict[str, float]:
    calls = CallFailovers().enter(CLOCK)
    primary = DeepgramTTS("test-key", base_url=dg_url, clock=CLOCK)
    fallback = OpenAITTS(API_KEY, model="tts-1", base_url=f"{oa_url}/v1")
    chain = FailoverTTS([("deepgram", primary), ("openai", fallback)], breakers, CLOCK)
    started = time.monotonic()
    first_after: float | None = None
    async for _chunk in chain.synthesize("We open at nine on Saturdays.", TTSOptions()):
        if calls.events and first_after is None:
            first_after = time.monotonic()
            break
    await fallback.aclose()
    if not (calls.events and first_after is not None):
        raise RuntimeError("no failover happened")
    failed = calls.events[0].t
    if not die:
        return {"request_to_first_audio_ms": ms(first_after - started)}
    return {"failure_to_first_audio_ms": ms(first_after - failed)}


async def stt_once(sentence: np.ndarray[Any, Any], whisper: Any, fail: bool = True) -> dict[str, float]:
    """One sentence through Deepgram (dropping 0.5 s into it) → Whisper; ``fail=False``: through
    Whisper alone, the same way (the baseline: what Whisper costs without a failover)."""
    calls = CallFailovers().enter(CLOCK)
    deepgram = FakeDeepgram(utterances=[SENTENCE], drop_after_speech_s=[0.5])
    dropped: list[float] = []
    with run_server(deepgram.app()) as dg:

        def kill() -> None:
            dropped.append(time.monotonic())
            for listening in dg.server.servers:
                listening.close()

        deepgram.on_drop = kill
        primary = DeepgramSTT(deepgram.api_key, base_url=dg.url, clock=CLOCK)
        links = [("deepgram", primary), ("whisper", whisper)] if fail else [("whisper", whisper)]
        chain = FailoverSTT(links, Breakers(), CLOCK)
        words: list[float] = []
        spoken: list[float] = []
        async with chain.stream(STTOptions(language="en-US")) as stream:

            async def read() -> None:
                async for event in stream.events():
                    if isinstance(event, Transcript) and event.is_final and event.text.strip():
                        words.append(time.monotonic())
                        return

            audio = np.concatenate([np.zeros(8000, np.int16), sentence, np.zeros(16000, np.int16)])
            async with asyncio.TaskGroup() as tg:
                reader = tg.create_task(read(), name="bench-failover-stt-read")
                for at in range(0, len(audio), 320):  # real time, 20 ms frames
                    frame = audio[at : at + 320]
                    await stream.send(frame, bool(np.abs(frame.astype(np.int32)).mean() > 300))
                    await asyncio.sleep(0.02)
                    if at + 320 >= 8000 + len(sentence) and not spoken:
                        spoken.append(time.monotonic())  # the caller's end of speech
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(reader), 30)
                reader.cancel()
    if not (words and spoken):
        raise RuntimeError("no words")
    if not fail:
        return {"speech_end_to_final_words_ms": ms(words[0] - spoken[0])}
    if not (dropped and calls.events):
        raise RuntimeError("no failover happened")
    return {
        "drop_to_switch_ms": ms(calls.events[0].t - dropped[0]),
        "drop_to_final_words_ms": ms(words[0] - dropped[0]),
        "speech_end_to_final_words_ms": ms(words[0] - spoken[0]),
    }


def summary(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    keys = runs[0].keys()
    return {
        k: {"median": statistics.median(r[k] for r in runs), "max": max(r[k] for r in runs)} for k in keys
    }


async def run(repeat: int, stt_repeat: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    deepgram = FakeDeepgram()
    primary, secondary = FakeOpenAI(), FakeOpenAI(api_key="sk-2")
    secondary.chat_fallback = lambda body: TextReply(["We open ", "at nine. ", "See you then."])
    with (
        serve_in_thread(deepgram.app()) as dg_url,
        serve_in_thread(primary.app) as primary_url,
        serve_in_thread(secondary.app) as secondary_url,
    ):
        tts = DeepgramTTS(deepgram.api_key, base_url=dg_url, clock=CLOCK)
        runs = []
        for _ in range(repeat):
            primary.reset()
            primary.script_chat(ErrorReply(500))
            runs.append(await llm_once(primary_url, secondary_url, tts))
        results["llm-500"] = summary(runs)
        primary.reset()
        primary.chat_first_token_delay = 3600.0  # accepts, never answers
        primary.chat_fallback = lambda body: TextReply(["never"])
        runs = []
        for _ in range(max(1, repeat // 3)):
            calls = CallFailovers().enter(CLOCK)
            llm = FailoverLLM(
                [
                    ("openai", OpenAILLM(API_KEY, base_url=f"{primary_url}/v1")),
                    ("secondary", OpenAILLM("sk-2", base_url=f"{secondary_url}/compat/v1")),
                ],
                Breakers(),
                CLOCK,
            )
            started = time.monotonic()
            async for _event in llm.stream([Message("user", "hi")], [], LLMOptions(model="gpt-4o")):
                runs.append({"request_to_first_token_ms": ms(time.monotonic() - started)})
                break
            assert calls.events
        results["llm-silent"] = summary(runs)

    openai = FakeOpenAI()
    runs, open_runs = [], []
    for _ in range(repeat):
        deepgram = FakeDeepgram()
        deepgram.speak.die_at_request = 0
        deepgram.speak.die_after_bytes = 4000
        with serve_in_thread(deepgram.app()) as dg_url, serve_in_thread(openai.app) as oa_url:
            breakers = Breakers(failures=1, cooldown_s=60.0)
            runs.append(await tts_once(dg_url, oa_url, breakers, die=True))
            open_runs.append(await tts_once(dg_url, oa_url, breakers, die=False))  # breaker now open
    results["tts"] = summary(runs)
    results["tts-breaker-open"] = summary(open_runs)

    from app.providers.whisper_stt import WhisperSTT, load_whisper
    from app.simulator.audio_prep import render_caller_audio
    from app.simulator.caller import Say

    whisper = WhisperSTT(model=load_whisper(), clock=CLOCK)
    sentence = render_caller_audio([Say(SENTENCE)], 16000, None)[0]
    failing, baseline = [], []
    for _ in range(stt_repeat):  # interleaved: a machine whose load moves moves both alike
        failing.append(await stt_once(sentence, whisper))
        baseline.append(await stt_once(sentence, whisper, False))
    results["stt"], results["stt-no-failure"] = summary(failing), summary(baseline)
    return results


def to_markdown(results: dict[str, Any]) -> str:
    lines = ["| stage | figure | median ms | max ms |", "|---|---|---:|---:|"]
    for stage, figures in results.items():
        for name, values in figures.items():
            lines.append(f"| {stage} | {name} | {values['median']:.0f} | {values['max']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=9, help="runs per stage (default 9)")
    parser.add_argument("--stt-repeat", type=int, default=3, help="runs of the STT failover (default 3)")
    args = parser.parse_args()
    if args.repeat < 1 or args.stt_repeat < 1:
        parser.error("--repeat and --stt-repeat must be at least 1")
    print(f"FIRST_EVENT_S = {FIRST_EVENT_S:g} s")
    print(to_markdown(asyncio.run(run(args.repeat, args.stt_repeat))))


if __name__ == "__main__":
    main()
