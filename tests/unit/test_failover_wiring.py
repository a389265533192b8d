"""Which chains a persona's call gets: the settings' fallbacks or the persona's own, names this
process has no provider for skipped, one voice chain per process (it keys the fixed lines' cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.personas import Persona, PersonaError, PersonaSettings, load_persona
from app.pipeline.factory import persona_providers
from app.providers.failover import FailoverLLM, FailoverTTS
from app.providers.failover_stt import FailoverSTT
from app.providers.intent_llm import IntentLLM
from app.providers.registry import ProviderSet
from app.providers.scripted import ScriptedLLM, ScriptedSTT, ToneTTS


def persona(**fields: Any) -> Persona:
    settings = PersonaSettings.model_validate({"display_name": "Test", **fields})
    return Persona("test", settings, "You are a test.", Path("test.md"))


def providers(**fallbacks: tuple[str, ...]) -> ProviderSet:
    deepgram, whisper = ScriptedSTT(), ScriptedSTT()
    found = ProviderSet(
        deepgram,
        ScriptedLLM(),
        {"deepgram": ToneTTS(), "offline": ToneTTS(sample_rate=22050)},
        stts={"deepgram": deepgram, "whisper": whisper},
    )
    assert found.llm is not None
    found.llms = {"openai": found.llm, "secondary": ScriptedLLM()}
    found.fallbacks = dict(fallbacks)
    return found


def test_no_fallbacks_no_wrappers() -> None:
    chosen = persona_providers(persona(), providers())
    assert not isinstance(chosen.stt, FailoverSTT)
    assert not isinstance(chosen.tts, FailoverTTS)
    assert not isinstance(chosen.llm, FailoverLLM)


def test_the_settings_chains_apply_and_unknown_names_are_skipped() -> None:
    found = providers(stt=("sarvam", "whisper"), tts=("offline",), llm=("secondary", "nowhere"))
    chosen = persona_providers(persona(), found)
    assert isinstance(chosen.stt, FailoverSTT)
    assert [name for name, _ in chosen.stt.chain] == ["deepgram", "whisper"]  # no sarvam here
    assert isinstance(chosen.tts, FailoverTTS)
    assert [name for name, _ in chosen.tts.chain] == ["deepgram", "offline"]
    assert chosen.tts.sample_rate == 16000  # the primary's; the fallback's audio is resampled
    assert isinstance(chosen.llm, FailoverLLM)
    assert [name for name, _ in chosen.llm.chain] == ["openai", "secondary"]


def test_a_persona_chain_replaces_the_settings_one() -> None:
    found = providers(tts=("offline",), llm=("secondary",))
    chosen = persona_providers(persona(tts_fallback=[], llm_fallback=["offline"]), found)
    assert not isinstance(chosen.tts, FailoverTTS)  # an empty list: no failover for this persona
    assert isinstance(chosen.llm, FailoverLLM)
    name, last = chosen.llm.chain[-1]
    assert name == "offline"
    assert isinstance(last, IntentLLM)  # the persona's own intents


def test_every_call_of_a_chain_gets_the_same_voice_object() -> None:
    found = providers(tts=("offline",))
    first = persona_providers(persona(), found).tts
    assert persona_providers(persona(display_name="Other"), found).tts is first


def test_a_persona_names_providers_as_plain_words(tmp_path: Path) -> None:
    path = tmp_path / "bad.md"
    path.write_text("---\ndisplay_name: X\nstt_fallback: [Whisper Large]\n---\nHi.\n", encoding="utf-8")
    with pytest.raises(PersonaError, match="stt_fallback"):
        load_persona(path)
