"""``PROVIDERS``: the cloud where its key is set, the embedded engines where not, said at start-up."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from app.clock import FakeClock
from app.config import Settings
from app.providers.deepgram_stt import DeepgramSTT
from app.providers.deepgram_tts import DeepgramTTS
from app.providers.errors import ProviderSetupError
from app.providers.offline_tts import ThreadedSynthesizer
from app.providers.openai_llm import OpenAILLM
from app.providers.openai_tts import OpenAITTS
from app.providers.piper_tts import PiperTTS
from app.providers.registry import build_providers
from app.providers.whisper_stt import WhisperSTT

INSTALL_HINT = "pip install -e '.[embedded]'"


def test_no_keys_runs_every_part_offline(make_settings: Callable[..., Settings]) -> None:
    providers = build_providers(make_settings(providers="auto"))
    assert providers is not None
    assert isinstance(providers.stt, WhisperSTT)
    assert providers.llm is None  # each persona's intents
    assert set(providers.tts) == {"offline"}
    voice = providers.tts["offline"]
    assert isinstance(voice, ThreadedSynthesizer)
    assert isinstance(voice.engine, PiperTTS)
    assert providers.describe() == (
        "speech-to-text: whisper; language model: the persona's intents (offline); voices: offline=piper"
    )


def test_each_part_goes_to_the_cloud_where_its_key_is_set(make_settings: Callable[..., Settings]) -> None:
    only_deepgram = build_providers(make_settings(providers="auto", deepgram_api_key="dg-key"))
    assert only_deepgram is not None
    assert isinstance(only_deepgram.stt, DeepgramSTT)
    assert only_deepgram.llm is None
    assert isinstance(only_deepgram.tts["deepgram"], DeepgramTTS)
    assert "offline" in only_deepgram.tts  # the fallback voice for personas whose voice has no key

    only_openai = build_providers(make_settings(providers="auto", openai_api_key="sk-test"))
    assert only_openai is not None
    assert isinstance(only_openai.stt, WhisperSTT)
    assert isinstance(only_openai.llm, OpenAILLM)
    assert "openai" not in only_openai.tts  # no OPENAI_TTS_MODEL: every speech model is retiring

    local_llm = build_providers(make_settings(providers="auto", openai_base_url="http://127.0.0.1:11434/v1"))
    assert local_llm is not None
    assert isinstance(local_llm.llm, OpenAILLM)  # an OpenAI-compatible local server, no key
    assert "openai" not in local_llm.tts


def test_the_openai_voice_has_its_own_base_url(make_settings: Callable[..., Settings]) -> None:
    """OPENAI_BASE_URL (a local LLM) does not move the voice; OPENAI_TTS_BASE_URL does."""
    local = "http://127.0.0.1:11434/v1"
    built = build_providers(
        make_settings(
            providers="auto",
            openai_api_key="sk-test",
            openai_base_url=local,
            openai_tts_model="gpt-4o-mini-tts",
        )
    )
    assert built is not None
    assert isinstance(built.llm, OpenAILLM)
    assert built.llm.base_url == local + "/"
    voice = built.tts["openai"]
    assert isinstance(voice, OpenAITTS)
    assert voice.base_url == "https://api.openai.com/v1/"
    speech = "http://127.0.0.1:9999/v1"
    moved = build_providers(
        make_settings(
            providers="auto",
            openai_api_key="sk-test",
            openai_base_url=local,
            openai_tts_model="gpt-4o-mini-tts",
            openai_tts_base_url=speech,
        )
    )
    assert moved is not None
    assert isinstance(moved.tts["openai"], OpenAITTS)
    assert moved.tts["openai"].base_url == speech + "/"


def test_offline_ignores_keys_and_cloud_requires_them(make_settings: Callable[..., Settings]) -> None:
    keys = {"deepgram_api_key": "dg-key", "openai_api_key": "sk-test"}
    offline = build_providers(make_settings(providers="offline", **keys))
    assert offline is not None
    assert isinstance(offline.stt, WhisperSTT)
    assert offline.llm is None
    assert set(offline.tts) == {"offline"}

    cloud = build_providers(make_settings(providers="cloud", **keys))
    assert cloud is not None
    assert isinstance(cloud.stt, DeepgramSTT)
    assert isinstance(cloud.llm, OpenAILLM)
    with pytest.raises(ProviderSetupError, match="PROVIDERS=cloud needs DEEPGRAM_API_KEY"):
        build_providers(make_settings(providers="cloud", deepgram_api_key="dg-key"))
    assert build_providers(make_settings(providers="echo", **keys)) is None


def test_models_load_once_per_process(make_settings: Callable[..., Settings]) -> None:
    a = build_providers(make_settings(providers="offline"))
    b = build_providers(make_settings(providers="offline"))
    assert a is not None
    assert b is not None
    assert isinstance(a.stt, WhisperSTT)
    assert isinstance(b.stt, WhisperSTT)
    assert a.stt.model is b.stt.model  # the same loaded Whisper
    va, vb = a.tts["offline"], b.tts["offline"]
    assert isinstance(va, ThreadedSynthesizer)
    assert isinstance(vb, ThreadedSynthesizer)
    assert isinstance(va.engine, PiperTTS)
    assert isinstance(vb.engine, PiperTTS)
    assert va.engine.loaded is vb.engine.loaded  # the same Piper voice


def test_espeak_voice_and_repeatable_piper_on_the_virtual_clock(
    make_settings: Callable[..., Settings],
) -> None:
    espeak = build_providers(make_settings(providers="offline", offline_voice="espeak"))
    assert espeak is not None
    assert espeak.describe().endswith("voices: offline=espeak-ng")
    virtual = build_providers(make_settings(providers="offline"), FakeClock(), voice_variation=False)
    assert virtual is not None
    voice = virtual.tts["offline"]
    assert isinstance(voice, ThreadedSynthesizer)
    assert isinstance(voice.engine, PiperTTS)
    first = voice.engine.synthesize("Same words, same samples.").pcm
    assert (voice.engine.synthesize("Same words, same samples.").pcm == first).all()


@pytest.mark.parametrize(
    ("blocked", "engine"),
    [("faster_whisper", "offline speech recognition (faster-whisper)"), ("piper", "(Piper or eSpeak NG)")],
)
def test_a_missing_engine_is_one_line_naming_the_extra(blocked: str, engine: str) -> None:
    """``voice-agent serve`` in a fresh interpreter with no keys and an engine not installed."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules[{blocked!r}] = None
        sys.modules["espeakng_loader"] = None  # no fallback voice either
        sys.argv = ["voice-agent", "serve", "--port", "1"]
        from app.cli import main
        main()
        """
    )
    root = Path(__file__).resolve().parents[2]
    env = {
        "PATH": "/usr/bin:/bin",
        "STREAM_TOKEN_SECRET": "x" * 32,
        "PROMPTS_DIR": str(root / "prompts"),
        "SIGNATURE_MODE": "off",
    }
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=root,
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    assert INSTALL_HINT in errors[0]
    assert engine in errors[0]
    assert "Traceback" not in proc.stderr
