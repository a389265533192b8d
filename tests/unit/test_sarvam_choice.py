"""Which recogniser and voice a persona gets when it asks for Sarvam (``SARVAM_API_KEY``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agents.personas import Persona, PersonaSettings
from app.config import Settings
from app.pipeline.factory import conversation_config, persona_providers
from app.providers.deepgram_stt import DeepgramSTT
from app.providers.deepgram_tts import DeepgramTTS
from app.providers.registry import build_providers
from app.providers.sarvam_stt import SarvamSTT
from app.providers.sarvam_tts import SarvamTTS


def sarvam_persona() -> Persona:
    settings = PersonaSettings(
        display_name="Hindi desk",
        language="hi-IN",
        stt_provider="sarvam",
        tts_provider="sarvam",
        tts_voice="priya",
    )
    return Persona("hindi", settings, "You are a test.", Path("hindi.md"))


def english_persona() -> Persona:
    return Persona("english", PersonaSettings(display_name="English desk"), "You are a test.", Path("e.md"))


async def test_a_persona_asking_for_sarvam_gets_sarvam_where_the_key_is_set(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(providers="auto", deepgram_api_key="dg-key", sarvam_api_key="sv-key")
    providers = build_providers(settings)
    assert providers is not None
    try:
        assert isinstance(providers.stt, DeepgramSTT)  # the default stays Deepgram
        assert isinstance(providers.stts["sarvam"], SarvamSTT)
        voice = providers.tts["sarvam"]
        assert isinstance(voice, SarvamTTS)
        assert voice.sample_rate == 8000  # the call's output rate: μ-law 8 kHz by default
        chosen = persona_providers(sarvam_persona(), providers)
        assert (chosen.stt, chosen.tts) == (providers.stts["sarvam"], voice)
        other = persona_providers(english_persona(), providers)
        assert isinstance(other.stt, DeepgramSTT)
        assert isinstance(other.tts, DeepgramTTS)
        # the persona's language and speaker reach the recogniser and the voice
        config = conversation_config(sarvam_persona())
        assert (config.stt.language, config.tts.language, config.tts.voice) == ("hi-IN", "hi-IN", "priya")
    finally:
        await providers.aclose()


async def test_the_voice_follows_the_playback_rate(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        providers="auto", deepgram_api_key="dg-key", sarvam_api_key="sv-key", playback_sample_rate=16000
    )
    providers = build_providers(settings)
    assert providers is not None
    try:
        assert providers.tts["sarvam"].sample_rate == 16000
    finally:
        await providers.aclose()


async def test_without_the_key_a_sarvam_persona_falls_back_like_any_other(
    make_settings: Callable[..., Settings],
) -> None:
    providers = build_providers(make_settings(providers="auto", deepgram_api_key="dg-key"))
    assert providers is not None
    try:
        assert "sarvam" not in providers.stts
        assert "sarvam" not in providers.tts
        chosen = persona_providers(sarvam_persona(), providers)
        assert chosen.stt is providers.stt  # the service's default recogniser
        assert chosen.tts is providers.tts["offline"]  # the embedded voice, as for a voice with no key
    finally:
        await providers.aclose()


async def test_offline_ignores_the_sarvam_key(make_settings: Callable[..., Settings]) -> None:
    providers = build_providers(make_settings(providers="offline", sarvam_api_key="sv-key"))
    assert providers is not None
    try:
        assert "sarvam" not in providers.stts
        assert "sarvam" not in providers.tts
    finally:
        await providers.aclose()
