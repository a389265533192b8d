"""Which providers a call uses: the cloud ones where their key is set.

Built once per process (clients and their connection pools are shared by all calls).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from app.config import Settings
from app.providers.base import LanguageModel, SpeechSynthesizer, SpeechToText

log = logging.getLogger("app.providers")


@dataclass(slots=True)
class ProviderSet:
    stt: SpeechToText
    llm: LanguageModel | None  # None: each persona's offline intent responder
    tts: dict[str, SpeechSynthesizer] = field(default_factory=dict)  # by provider; "offline" too

    async def aclose(self) -> None:
        """Close the clients' connection pools (on the loop that used them)."""
        for provider in (self.stt, self.llm, *self.tts.values()):
            if provider is None:
                continue
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()

    def describe(self) -> str:
        llm = self.llm.name if self.llm is not None else "offline intents"
        return f"speech-to-text: {self.stt.name}; language: {llm}; voices: {', '.join(sorted(self.tts))}"


def build_providers(settings: Settings) -> ProviderSet | None:
    """Cloud providers from the keys in ``settings``; None when speech or language is missing."""
    deepgram = settings.deepgram_api_key.get_secret_value()
    openai_key = settings.openai_api_key.get_secret_value()
    llm_base = settings.openai_base_url or None
    if not deepgram or not (openai_key or llm_base):
        return None
    from app.providers.deepgram_stt import DeepgramSTT
    from app.providers.deepgram_tts import DeepgramTTS
    from app.providers.openai_llm import OpenAILLM

    # an OpenAI-compatible local server (Ollama, vLLM, llama.cpp) usually takes any key
    llm = OpenAILLM(openai_key or "not-needed", base_url=llm_base)
    deepgram_base = settings.deepgram_base_url or None
    tts: dict[str, SpeechSynthesizer] = {"deepgram": DeepgramTTS(deepgram, base_url=deepgram_base)}
    if openai_key:
        from app.providers.openai_tts import OpenAITTS

        tts["openai"] = OpenAITTS(openai_key, base_url=llm_base)
    return ProviderSet(stt=DeepgramSTT(deepgram, base_url=deepgram_base), llm=llm, tts=tts)
