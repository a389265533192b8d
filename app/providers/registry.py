"""Which providers a call uses: the cloud where its key is set, the embedded engines elsewhere.

Built once per process, at start-up (clients, connection pools and offline models are shared
by all calls; the first call pays for none of them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from app.clock import Clock
from app.config import Settings
from app.providers.base import LanguageModel, SpeechSynthesizer, SpeechToText, TurnModel
from app.providers.errors import MissingEngineError, ProviderError, ProviderSetupError
from app.providers.failover import Breakers, FailoverLLM, FailoverTTS, NamedModel
from app.providers.failover_stt import FailoverSTT
from app.providers.line_cache import LineCache

log = logging.getLogger("app.providers")

Choice = Literal["auto", "cloud", "offline", "echo"]


@dataclass(slots=True)
class ProviderSet:
    stt: SpeechToText  # the default recogniser (a persona without ``stt_provider``)
    llm: LanguageModel | None  # None: each persona's offline intent responder
    tts: dict[str, SpeechSynthesizer] = field(default_factory=dict)  # by provider; "offline" too
    turn_model: TurnModel | None = None  # the end-of-turn audio model (TURN_MODEL); None: off
    lines: LineCache = field(default_factory=LineCache)  # fixed lines, rendered once for all calls
    # every recogniser built, by provider ("deepgram", "whisper", …): a persona's ``stt_provider``
    stts: dict[str, SpeechToText] = field(default_factory=dict)
    # failover (app/providers/failover.py): the language models by name ("openai", "secondary"),
    # each stage's fallbacks from the settings (STT_FALLBACK, …), the process's breakers
    llms: dict[str, LanguageModel] = field(default_factory=dict)
    fallbacks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # "stt" | "tts" | "llm" → names
    breakers: Breakers = field(default_factory=Breakers)
    clock: Clock | None = None  # the breakers' time (None: a SystemClock)
    _voices: dict[tuple[str, ...], FailoverTTS] = field(default_factory=dict)  # one per chain
    _closing: list[object] = field(default_factory=list)  # more clients to close (wrapped ones)

    def _clock(self) -> Clock:
        if self.clock is None:
            from app.clock import SystemClock

            self.clock = SystemClock()
        return self.clock

    def stt_chain(self, primary: str, fallback: Sequence[str] | None = None) -> SpeechToText:
        """The recogniser ``primary`` (a key of ``stts``; else the default), followed by the
        ``fallback`` names this process has (None: STT_FALLBACK's) of the same sample rate."""
        first = self.stts.get(primary, self.stt)
        name = primary if primary in self.stts else next((k for k, v in self.stts.items() if v is first), "")
        names = self.fallbacks.get("stt", ()) if fallback is None else tuple(fallback)
        chain = [(name or first.name, first)] + [
            (n, self.stts[n])
            for n in dict.fromkeys(names)
            if n in self.stts and self.stts[n] is not first and self.stts[n].sample_rate == first.sample_rate
        ]
        if len(chain) == 1:
            return first
        return FailoverSTT(chain, self.breakers, self._clock())

    def tts_chain(self, primary: str, fallback: Sequence[str] | None = None) -> SpeechSynthesizer | None:
        """The voice ``primary`` (a key of ``tts``; else the offline voice; None if neither is
        here) followed by the ``fallback`` names this process has (None: TTS_FALLBACK's). One
        object per chain for the whole process: it keys the fixed lines' cache."""
        name = primary if primary in self.tts else "offline"
        if name not in self.tts:
            return None
        names = self.fallbacks.get("tts", ()) if fallback is None else tuple(fallback)
        chain = (name, *(n for n in dict.fromkeys(names) if n in self.tts and n != name))
        if len(chain) == 1:
            return self.tts[name]
        found = self._voices.get(chain)
        if found is None:
            voices = [(n, self.tts[n]) for n in chain]
            found = self._voices[chain] = FailoverTTS(voices, self.breakers, self._clock())
        return found

    def llm_chain(
        self,
        primary: LanguageModel,
        fallback: Sequence[str] | None = None,
        offline: LanguageModel | None = None,
    ) -> LanguageModel:
        """``primary`` followed by the ``fallback`` names (None: LLM_FALLBACK's) this process has
        (``openai``, ``secondary``; ``offline``: the persona's own intents, ``offline``)."""
        names = self.fallbacks.get("llm", ()) if fallback is None else tuple(fallback)
        known = dict(self.llms)
        if offline is not None:
            known["offline"] = offline
        first = next((k for k, v in known.items() if v is primary), primary.name)
        chain = [(first, primary)] + [
            (n, known[n]) for n in dict.fromkeys(names) if n in known and known[n] is not primary
        ]
        if len(chain) == 1:
            return primary
        return FailoverLLM(chain, self.breakers, self._clock())

    async def aclose(self) -> None:
        """Close the clients' connection pools (on the loop that used them)."""
        models = (self.llm, *self.llms.values())
        every = (self.stt, *self.stts.values(), *models, *self.tts.values(), *self._closing)
        unique = {id(p): p for p in every}
        for provider in unique.values():
            if provider is None:
                continue
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()

    def describe(self) -> str:
        llm = self.llm.name if self.llm is not None else "the persona's intents (offline)"
        voices = ", ".join(f"{k}={getattr(v, 'name', k)}" for k, v in sorted(self.tts.items()))
        chains = "; ".join(
            f"{stage} fallback: {', '.join(names)}" for stage, names in self.fallbacks.items() if names
        )
        described = f"speech-to-text: {self.stt.name}; language model: {llm}; voices: {voices}"
        return f"{described}; {chains}" if chains else described


def build_providers(
    settings: Settings, clock: Clock | None = None, *, voice_variation: bool = True
) -> ProviderSet | None:
    """The providers ``settings.providers`` asks for; ``None`` for ``echo``.

    ``auto``: Deepgram speech-to-text with ``DEEPGRAM_API_KEY``, else Whisper; Sarvam's
    recogniser and voice too with ``SARVAM_API_KEY`` (for the personas that name them); OpenAI (or the
    server at ``OPENAI_BASE_URL``) as the language model, else each persona's intents; voices:
    every cloud one with a key, plus the embedded voice as the fallback. ``offline`` ignores the
    keys; ``cloud`` needs them. ``TURN_MODEL``: the end-of-turn audio model, whatever the other
    parts (``turn_model`` None when off or not installed). Offline models are loaded here,
    blocking (about 1.5 s, once per process). ``clock``: the offline engines' work is held on
    it (virtual time stands still).
    ``voice_variation``: the offline voice's random prosody (off: a run repeats exactly). Raises
    :class:`ProviderSetupError` naming the missing key or the extra to install.
    """
    choice: Choice = settings.providers
    if choice == "echo":
        return None
    deepgram = settings.deepgram_api_key.get_secret_value() if choice != "offline" else ""
    openai_key = settings.openai_api_key.get_secret_value() if choice != "offline" else ""
    llm_base = (settings.openai_base_url or None) if choice != "offline" else None
    if choice == "cloud" and not (deepgram and (openai_key or llm_base)):
        raise ProviderSetupError(
            "PROVIDERS=cloud needs DEEPGRAM_API_KEY and OPENAI_API_KEY (or OPENAI_BASE_URL); "
            "set them, or use PROVIDERS=auto to run the missing parts on the embedded engines"
        )
    tts: dict[str, SpeechSynthesizer] = {}
    stts: dict[str, SpeechToText] = {}
    stt: SpeechToText
    if deepgram:
        from app.providers.deepgram_stt import DeepgramSTT
        from app.providers.deepgram_tts import DeepgramTTS

        deepgram_base = settings.deepgram_base_url or None
        stt = stts["deepgram"] = DeepgramSTT(deepgram, base_url=deepgram_base, clock=clock)
        tts["deepgram"] = DeepgramTTS(deepgram, base_url=deepgram_base, clock=clock)
    else:
        stt = stts["whisper"] = _offline_stt(clock)
    sarvam = settings.sarvam_api_key.get_secret_value() if choice != "offline" else ""
    if sarvam:
        _add_sarvam(settings, sarvam, clock, stts, tts)
    llm: LanguageModel | None = None
    connect, read = settings.openai_connect_timeout_seconds, settings.openai_read_timeout_seconds
    if openai_key or llm_base:
        from app.providers.openai_llm import OpenAILLM

        # an OpenAI-compatible local server (Ollama, vLLM, llama.cpp) usually takes any key
        llm = OpenAILLM(
            openai_key or "not-needed", base_url=llm_base, connect_timeout=connect, read_timeout=read
        )
    if openai_key and settings.openai_tts_model:
        from app.providers.openai_tts import OpenAITTS

        # the voice has its own server setting: OPENAI_BASE_URL may be a local LLM with no voice
        tts_base = settings.openai_tts_base_url or None
        tts["openai"] = OpenAITTS(
            openai_key,
            model=settings.openai_tts_model,
            base_url=tts_base,
            connect_timeout=connect,
            read_timeout=read,
        )
    offline_voice = _offline_voice(settings, clock, required=not tts, variation=voice_variation)
    if offline_voice is not None:
        tts["offline"] = offline_voice
    found = ProviderSet(stt=stt, llm=llm, tts=tts, turn_model=_turn_model(settings, clock), stts=stts)
    _add_failover(found, settings, clock, choice)
    return found


def _add_failover(found: ProviderSet, settings: Settings, clock: Clock | None, choice: Choice) -> None:
    """The failover parts: the fallbacks named in the settings, the secondary language model
    (SECONDARY_LLM_BASE_URL), Whisper when STT_FALLBACK names it, the breakers."""
    found.clock = clock
    found.breakers = Breakers(settings.failover_breaker_failures, settings.failover_breaker_cooldown_s)
    found.fallbacks = {
        "stt": tuple(settings.stt_fallback),
        "tts": tuple(settings.tts_fallback),
        "llm": tuple(settings.llm_fallback),
    }
    if found.llm is not None:
        found.llms[found.llm.name] = found.llm
    secondary = settings.secondary_llm_base_url
    if secondary and choice != "offline":
        from app.providers.openai_llm import OpenAILLM

        key = settings.secondary_llm_api_key.get_secret_value() or "not-needed"
        connect, read = settings.openai_connect_timeout_seconds, settings.openai_read_timeout_seconds
        server = OpenAILLM(key, base_url=secondary, connect_timeout=connect, read_timeout=read)
        found.llms["secondary"] = NamedModel(server, "secondary", settings.secondary_llm_model)
        found._closing.append(server)
    if "whisper" in settings.stt_fallback and "whisper" not in found.stts:
        found.stts["whisper"] = _offline_stt(clock)


def _add_sarvam(
    settings: Settings,
    key: str,
    clock: Clock | None,
    stts: dict[str, SpeechToText],
    tts: dict[str, SpeechSynthesizer],
) -> None:
    """Sarvam's recogniser and voice (``SARVAM_API_KEY``), for the personas that name them
    (``stt_provider`` / ``tts_provider: sarvam``); the voice speaks at the call's output rate."""
    from app.providers.sarvam_stt import SarvamSTT
    from app.providers.sarvam_tts import SAMPLE_RATES, SarvamTTS

    base = settings.sarvam_base_url or None
    stts["sarvam"] = SarvamSTT(key, base_url=base, clock=clock)
    rate = output_rate(settings)
    tts["sarvam"] = SarvamTTS(
        key, base_url=base, sample_rate=rate if rate in SAMPLE_RATES else 16000, clock=clock
    )


def output_rate(settings: Settings) -> int:
    """Hz of the audio a call plays: ``PLAYBACK_SAMPLE_RATE``, else the caller's stream rate."""
    if settings.playback_sample_rate:
        return settings.playback_sample_rate
    return int(settings.stream_content_type.rsplit("rate=", 1)[1])


def _offline_stt(clock: Clock | None) -> SpeechToText:
    from app.providers.whisper_stt import WhisperSTT, load_whisper

    log.info("loading the offline speech recognition (Whisper tiny.en)…")
    started = time.perf_counter()
    try:
        model = load_whisper()
    except MissingEngineError as exc:
        raise ProviderSetupError(f"no DEEPGRAM_API_KEY, and {exc}") from None
    log.info("offline speech recognition ready in %.1f s", time.perf_counter() - started)
    return WhisperSTT(model=model, clock=clock)


def _turn_model(settings: Settings, clock: Clock | None) -> TurnModel | None:
    """The end-of-turn model ``TURN_MODEL`` asks for, loaded now; ``None`` when off or not
    installed (the turn then ends on silence and words alone: not an error)."""
    if settings.turn_model == "off":
        return None
    from app.providers.smart_turn import SmartTurn, load_smart_turn

    try:
        model = load_smart_turn()
    except MissingEngineError as exc:
        log.info("no end-of-turn model (%s): turns end on silence and words", exc)
        return None
    except ProviderError as exc:  # a file that fails its pinned sha256
        raise ProviderSetupError(str(exc)) from None
    return SmartTurn(model, clock=clock)


def _offline_voice(
    settings: Settings, clock: Clock | None, *, required: bool, variation: bool
) -> SpeechSynthesizer | None:
    """The embedded voice; ``None`` when it is not installed and a cloud voice exists."""
    from app.providers.espeak import EspeakTTS
    from app.providers.offline_tts import ThreadedSynthesizer, best_offline_tts

    log.info("loading the offline voice (%s)…", settings.offline_voice)
    started = time.perf_counter()
    try:
        if settings.offline_voice == "espeak":
            engine = EspeakTTS()
            engine.load()
            voice: SpeechSynthesizer = ThreadedSynthesizer(engine, clock=clock)
        else:
            voice = best_offline_tts(clock, variation=variation)
    except MissingEngineError as exc:
        if required:
            no_key = "no cloud voice key (DEEPGRAM_API_KEY, OPENAI_API_KEY)"
            raise ProviderSetupError(f"{no_key}, and {exc}") from None
        log.info("no offline voice (%s): personas speak with the cloud voices only", exc)
        return None
    log.info("offline voice ready (%s) in %.1f s", getattr(voice, "name", "?"), time.perf_counter() - started)
    return voice
