"""Which voice apologises when a persona's TTS fails: the offline one, unless it is the primary."""

from __future__ import annotations

from pathlib import Path

from agents.personas import Persona, PersonaSettings
from app.pipeline.factory import persona_providers
from app.providers.registry import ProviderSet
from app.providers.scripted import ScriptedLLM, ScriptedSTT, ToneTTS


def persona(tts_provider: str) -> Persona:
    settings = PersonaSettings.model_validate({"display_name": "Test", "tts_provider": tts_provider})
    return Persona("test", settings, "You are a test.", Path("test.md"))


def persona_with(**fields: str) -> Persona:
    settings = PersonaSettings.model_validate({"display_name": "Test", **fields})
    return Persona("test", settings, "You are a test.", Path("test.md"))


def test_the_offline_voice_is_the_fallback_of_a_cloud_voice() -> None:
    cloud, offline = ToneTTS(), ToneTTS()
    providers = ProviderSet(ScriptedSTT(), ScriptedLLM(), {"openai": cloud, "offline": offline})
    chosen = persona_providers(persona("openai"), providers)
    assert chosen.tts is cloud
    assert chosen.fallback_tts is offline


def test_no_fallback_when_the_offline_voice_is_the_primary_or_missing() -> None:
    offline = ToneTTS()
    only_offline = ProviderSet(ScriptedSTT(), ScriptedLLM(), {"offline": offline})
    chosen = persona_providers(persona("deepgram"), only_offline)  # no deepgram key: offline speaks
    assert (chosen.tts, chosen.fallback_tts) == (offline, None)
    cloud = ToneTTS()
    only_cloud = ProviderSet(ScriptedSTT(), ScriptedLLM(), {"deepgram": cloud})
    assert persona_providers(persona("deepgram"), only_cloud).fallback_tts is None


def test_a_persona_chooses_its_recogniser_by_provider() -> None:
    default, other = ScriptedSTT(), ScriptedSTT()
    providers = ProviderSet(default, ScriptedLLM(), {"offline": ToneTTS()}, stts={"whisper": other})
    chosen = persona_providers(persona_with(stt_provider="whisper"), providers)
    assert chosen.stt is other
    # none asked for, or one that is not configured here: the service's default recogniser
    assert persona_providers(persona_with(), providers).stt is default
    assert persona_providers(persona_with(stt_provider="deepgram"), providers).stt is default
