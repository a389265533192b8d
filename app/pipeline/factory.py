"""From a persona and the shared providers to one call's ``Conversation``."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from agents.catalog import ALL_TOOLS
from agents.personas import Persona, fill
from agents.tools import ToolRegistry
from app.audio.formats import AudioFormat
from app.clock import Clock, run_within
from app.pipeline.conversation import ConversationConfig, Providers
from app.pipeline.end_of_turn import EndOfTurnPolicy, cue_languages
from app.pipeline.keypad import MenuChoice
from app.pipeline.language_words import cues_for, words
from app.pipeline.sentences import line_sentences
from app.pipeline.turns import TurnPolicy
from app.providers.base import LLMOptions, SpeechSynthesizer, STTOptions, TTSOptions
from app.providers.errors import ProviderError
from app.providers.intent_llm import Intent, IntentLLM, Slot
from app.providers.registry import ProviderSet

log = logging.getLogger("app.factory")

WARM_WAIT_S = 10.0  # start-up waits at most this long for the greetings; the rest: on first use


class PersonaUnavailable(RuntimeError):
    """The persona needs a provider this process does not have (e.g. OpenAI TTS, no key)."""


def conversation_config(
    persona: Persona,
    *,
    caller_number: str = "",
    variables: Mapping[str, str] | None = None,
    recording: bool = False,
) -> ConversationConfig:
    """The settings of one call with ``persona``: its prompt's placeholders filled for this call
    (``variables``: a campaign contact's values; the persona's defaults otherwise). A
    ``recording`` call opens with the persona's ``recording_disclosure``, then its greeting; the
    opening is then never cut by the caller, so the disclosure is always heard whole."""
    s = persona.settings
    values = {**s.variables, **{k: v for k, v in (variables or {}).items() if k in s.variables}}
    disclosure = s.recording_disclosure.strip() if recording else ""
    greeting = fill(s.greeting, values)
    greeting = f"{disclosure} {greeting}".strip() if disclosure else greeting
    policy = TurnPolicy(
        min_speech_s=s.min_speech_ms / 1000,
        min_words=s.min_words,
        backchannels=persona_backchannels(s.backchannels, s.language),
        greeting_interruptible=s.greeting_interruptible and not disclosure,
        idle_reprompt_s=s.idle_reprompt_seconds,
        max_reprompts=s.idle_reprompt_count,
        max_duration_s=s.max_duration_seconds,
        reprompt=s.reprompt,
        idle_goodbye=s.goodbye,
        closing_line=s.closing_line,
        shutdown_line=s.shutdown_line,
        resume_after_s=s.resume_after_ms / 1000,
        late_words_s=s.late_interruption_ms / 1000,
        eot=EndOfTurnPolicy(
            decide_after_s=s.end_of_turn_decide_ms / 1000,
            complete_s=s.end_of_turn_complete_ms / 1000,
            unsure_s=s.end_of_turn_unsure_ms / 1000,
            incomplete_s=s.end_of_turn_incomplete_ms / 1000,
            model_incomplete_s=s.end_of_turn_model_incomplete_ms / 1000,
            preemptive=s.preemptive_replies,
            languages=cue_languages(s.language),
        ),
    )
    return ConversationConfig(
        system_prompt=persona.system_prompt(caller_number=caller_number, variables=variables),
        greeting=greeting,
        goodbye=s.goodbye,
        policy=policy,
        llm=LLMOptions(model=s.llm_model, temperature=s.temperature),
        tts=TTSOptions(voice=s.tts_voice, language=s.language),
        stt=STTOptions(language=s.language, model=s.stt_model, keywords=tuple(s.keywords)),
        keypad=keypad_menu(persona),
        keypad_gap_s=s.keypad_gap_ms / 1000,
    )


def persona_backchannels(listed: list[str] | None, language: str) -> frozenset[str]:
    """The persona's own list (each entry's words: "theek hai" → "theek", "hai"), else the
    built-in list for its language (merged with English and Hindi)."""
    if not listed:
        return cues_for(language).backchannels
    return frozenset(w for entry in listed for w in words(entry))


def keypad_menu(persona: Persona) -> dict[str, MenuChoice]:
    """The persona's ``keypad`` map: an intent's key hands the model its first example."""
    examples = {intent.name: intent.examples[0] for intent in persona.settings.intents}
    return {
        key: MenuChoice(
            reply=action.reply,
            tool=action.tool,
            arguments=dict(action.arguments),
            text=examples.get(action.intent, "") if action.intent is not None else "",
        )
        for key, action in persona.settings.keypad.items()
    }


def intent_llm(persona: Persona) -> IntentLLM:
    """The offline responder for ``persona``, from its intents."""
    intents = [
        Intent(
            i.name,
            tuple(i.examples),
            i.reply,
            i.tool,
            dict(i.arguments),
            tuple(
                Slot(s.name, s.ask, re.compile(s.pattern, re.IGNORECASE) if s.pattern else None)
                for s in i.slots
            ),
            i.done,
            tuple(i.retry_slots),
        )
        for i in persona.settings.intents
    ]
    return IntentLLM(intents, fallback=persona.settings.fallback)


def persona_providers(persona: Persona, providers: ProviderSet) -> Providers:
    """The persona's TTS where its provider is available, else the offline voice; the LLM, or
    the persona's intents when no LLM is configured. The offline voice, when it is not already
    the primary, is the fallback that apologises if the primary TTS fails."""
    s = persona.settings
    tts = persona_voice(persona, providers)
    offline = providers.tts.get("offline")
    fallback = offline if offline is not tts else None
    turn_model = providers.turn_model if s.end_of_turn_model else None
    # the persona's intents: its language model when the service has none, and the "offline" fallback
    wanted = providers.llm is None or "offline" in _names(s.llm_fallback, providers, "llm")
    intents = intent_llm(persona) if wanted else None
    llm = providers.llm_chain(providers.llm or intents or intent_llm(persona), s.llm_fallback, intents)
    stt = providers.stt_chain(s.stt_provider, s.stt_fallback)
    return Providers(stt, llm, tts, fallback_tts=fallback, turn_model=turn_model, lines=providers.lines)


def _names(persona: list[str] | None, providers: ProviderSet, stage: str) -> tuple[str, ...]:
    """A stage's fallback names: the persona's, else the service's."""
    return tuple(persona) if persona is not None else providers.fallbacks.get(stage, ())


def persona_voice(persona: Persona, providers: ProviderSet) -> SpeechSynthesizer:
    """The persona's TTS where its provider is available, else the offline voice; followed by
    its fallback voices when it has any (one object per chain, shared by every call)."""
    tts = providers.tts_chain(persona.settings.tts_provider, persona.settings.tts_fallback)
    if tts is None:
        raise PersonaUnavailable(
            f"persona {persona.name!r} speaks with {persona.settings.tts_provider} TTS, "
            "which is not configured (its key, or OPENAI_TTS_MODEL for openai)"
        )
    return tts


def persona_tools(persona: Persona) -> ToolRegistry:
    """The tools the persona allows (checked against the catalogue when it was loaded)."""
    return ToolRegistry({name: ALL_TOOLS[name] for name in persona.settings.tools if name in ALL_TOOLS})


async def warm_greetings(
    personas: Mapping[str, Persona],
    providers: ProviderSet,
    fmt: AudioFormat,
    clock: Clock,
    limit_s: float = WARM_WAIT_S,
) -> int:
    """Render every persona's greeting in its voice as ``fmt`` frames into ``providers.lines``
    (at start-up: the first calls, however many at once, then synthesize no greeting). One
    sentence at a time, each off the event loop for an embedded voice; for at most ``limit_s``
    of ``clock`` time (what is not rendered by then is rendered by the first call that needs
    it). A voice that fails is logged and tried again by the first call. Returns the sentences
    rendered or found cached. The other fixed lines are rendered on first use."""
    ready = 0

    async def warm() -> None:
        nonlocal ready
        for persona in personas.values():
            try:
                voice = persona_voice(persona, providers)
            except PersonaUnavailable:
                continue  # its calls are refused anyway
            config = conversation_config(persona)  # the greeting with the variables' defaults
            options = config.tts
            for sentence in line_sentences(config.greeting):
                try:
                    await providers.lines.frames(sentence, voice, options, fmt)
                except ProviderError as exc:
                    log.warning("could not render a greeting at start-up: %s", exc.provider)
                    break
                ready += 1

    if not await run_within(clock, limit_s, warm()):
        log.warning("greetings not all rendered within %.0f s: the rest on first use", limit_s)
    return ready
