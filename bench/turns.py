"""Turn-taking: how the agent treats scripted callers' behaviours, under three provider profiles.

Run ``python -m bench turns`` (``--quick``: 2 calls per behaviour instead of 5; ``--profiles
zero embedded``; ``--json PATH``). Each call is dialled through the fake Vobiz over real
WebSockets to the service on 127.0.0.1, in real time, one call at a time; the callers' lines are
spoken by the offline TTS (Piper), synthesised once per run and trimmed to their sound, with
exact pauses inserted as silence. Behaviours (``bench.turns_scripts``): a complete question; an
unfinished phrase, a pause of 0.5/1.0/1.5 s, the rest; a phone number in three chunks with
0.8 s pauses; "um", 1.0 s, "I think tomorrow"; a backchannel, a noise burst and a real
interruption said 1.5 s into a long answer. Profiles:

- ``zero``: ``ScriptedSTT`` (the caller's lines in order, 0.15 s endpointing, interim words),
  ``ScriptedLLM`` (a short answer to each line, a long one to "Tell me about your menu"),
  ``ToneTTS``;
- ``embedded``: the offline engines as ``voice-agent simulate`` uses them (Whisper tiny.en, the
  bench persona's intents, Piper).

The measurements are in ``bench.turns_measure``; their method is in ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

from app.clock import SystemClock
from app.config import Settings
from app.providers.registry import ProviderSet, build_providers
from app.providers.scripted import Rule, ScriptedLLM, ScriptedSTT, ToneTTS
from bench.harness import write_json
from bench.turns_cloud import realistic
from bench.turns_measure import CallFigures
from bench.turns_report import behaviour_table, summarise, targets, targets_table
from bench.turns_run import Bench, Profile
from bench.turns_scripts import LONG_ANSWER, Behaviour, Voice, behaviours, heard_lines

PROFILES = ("zero", "realistic", "embedded")
RULES = [
    Rule("menu", LONG_ANSWER),
    Rule("open", "We open at seven tomorrow."),
    Rule(r"book|table|people", "A table for four tonight, lovely."),
    Rule(r"number|\d", "Thanks, I have noted your number."),
    Rule("tomorrow", "Tomorrow it is."),
]
# calls at a time: zero-latency providers cost nothing; the embedded engines' figures are for
# one call on the machine, as ``voice-agent simulate`` runs it
AT_ONCE = {"zero": 10, "realistic": 1, "embedded": 1}
ENDPOINT_S = 0.15  # the scripted recogniser's endpointing: a final this long after the sound


def zero_latency(behaviour: Behaviour) -> ProviderSet:
    stt = ScriptedSTT(heard_lines(behaviour), threshold=500, endpoint_s=ENDPOINT_S)
    return ProviderSet(stt=stt, llm=ScriptedLLM(RULES), tts={"offline": ToneTTS()})


@contextlib.contextmanager
def zero() -> Iterator[Profile]:
    yield Profile(zero_latency)


@contextlib.contextmanager
def embedded() -> Iterator[Profile]:
    settings = Settings(_env_file=None, providers="offline")
    shared = build_providers(settings, SystemClock(), voice_variation=False)  # loads Whisper, Piper
    assert shared is not None
    yield Profile(lambda _: shared, shared=shared)


PROFILE_SETUPS: dict[str, Callable[[], contextlib.AbstractContextManager[Profile]]] = {
    "zero": zero,
    "realistic": realistic,
    "embedded": embedded,
}


async def run_profile(
    profile: Profile, voice: Voice, reps: int, at_once: int, progress: Callable[[str], None]
) -> tuple[dict[str, list[CallFigures]], list[str]]:
    """Every behaviour ``reps`` times, at most ``at_once`` calls at a time (started 0-1 s apart,
    so the calls' turns do not fall together)."""
    found: dict[str, list[CallFigures]] = {}
    gate = asyncio.Semaphore(at_once)
    rng = random.Random(7)
    async with Bench(profile, voice) as bench:
        await bench.call(behaviours(0)[0], seed=-1)  # warm-up: first-use costs, not measured

        async def one(behaviour: Behaviour, rep: int, delay: float) -> None:
            async with gate:
                await asyncio.sleep(delay)
                figures, _ = await bench.call(behaviour, seed=rep)
            found.setdefault(behaviour.name, []).append(figures)

        for rep in range(reps):
            async with asyncio.TaskGroup() as tg:
                for behaviour in behaviours(rep):
                    tg.create_task(one(behaviour, rep, rng.uniform(0, 1.0)))
            progress(f"  repetition {rep + 1}/{reps} done")
        if profile.shared is not None:
            await profile.shared.aclose()
        order = [b.name for b in behaviours(0)]
        return {name: found[name] for name in order if name in found}, bench.errors


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


async def _run(profiles: list[str], reps: int, progress: Callable[[str], None]) -> dict[str, Any]:
    voice = await asyncio.to_thread(Voice)
    titles = {b.name: b.title for b in behaviours(0)}
    result: dict[str, Any] = {"profiles": {}, "titles": titles, "reps": reps, "protocol_errors": {},
                              "python": platform.python_version(), "load_before": load()}  # fmt: skip
    for profile in profiles:
        progress(f"profile {profile} …")
        started = time.monotonic()
        with PROFILE_SETUPS[profile]() as setup:
            found, errors = await run_profile(setup, voice, reps, AT_ONCE[profile], progress)
        result["profiles"][profile] = {name: summarise(calls) for name, calls in found.items()}
        result["protocol_errors"][profile] = errors
        progress(f"profile {profile}: {time.monotonic() - started:.0f} s")
    result["load_after"] = load()
    result["targets"] = targets(result["profiles"])
    return result


def to_markdown(result: dict[str, Any]) -> str:
    parts = [f"Python {result['python']}; {result['load_before']} before, {result['load_after']} after.", ""]
    for profile, rows in result["profiles"].items():
        parts += [behaviour_table(profile, rows, result["titles"]), ""]
        if result["protocol_errors"][profile]:
            parts += [f"protocol errors: {'; '.join(sorted(set(result['protocol_errors'][profile])))}", ""]
    parts.append(targets_table(result["targets"]))
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 calls per behaviour instead of 5")
    parser.add_argument("--reps", type=int, default=None, help="calls per behaviour")
    parser.add_argument("--profiles", nargs="+", choices=PROFILES, default=list(PROFILES))
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    reps = args.reps if args.reps is not None else (2 if args.quick else 5)
    if reps < 1:
        parser.error("--reps must be at least 1")
    result = asyncio.run(_run(args.profiles, reps, lambda line: print(line, flush=True)))
    print()
    print(to_markdown(result))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
