"""Personas: ``prompts/<name>.md`` files a business edits, not Python.

A persona file is YAML front matter (settings) between ``---`` lines, then the system prompt::

    ---
    display_name: Sunrise Clinic
    greeting: Good morning, Sunrise Clinic, how can I help?
    tools: [end_call, transfer_call]
    transfer_number: "+14155550123"
    ---
    You are the receptionist of Sunrise Clinic...

Unknown keys, wrong types and missing required fields are errors that name the file, the
field and a hint; the service refuses to start on a broken persona. A persona name is
lower-case letters, digits, ``-`` and ``_`` (never a path).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import pydantic
import yaml

PERSONA_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.DOTALL)


def is_valid_name(name: str) -> bool:
    """Lower-case letters, digits, ``-`` and ``_`` only (no dots, no slashes)."""
    return PERSONA_NAME.fullmatch(name) is not None


class PersonaError(ValueError):
    """A persona file that cannot be used; the message names the file, field and a hint."""


#: a provider's name in a failover chain ("deepgram", "whisper", "offline", "secondary", …)
ProviderName = Annotated[str, pydantic.StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]


class SlotSetting(pydantic.BaseModel):
    """A value the offline responder asks for before calling the intent's tool."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    name: str = pydantic.Field(pattern=r"^[a-z_][a-z0-9_]*$")  # the tool's argument name
    ask: str = pydantic.Field(min_length=1)  # the question, e.g. "Which day suits you?"
    pattern: str | None = None  # a regular expression; its first group (or match) is the value

    @pydantic.field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return value


class IntentSetting(pydantic.BaseModel):
    """One thing callers ask, for the offline responder (used when no LLM is configured)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    name: str = pydantic.Field(min_length=1)
    examples: list[str] = pydantic.Field(min_length=1)  # ways a caller might say it
    reply: str = ""  # said when it matches (before the first slot's question)
    tool: str | None = None  # a tool to call once every slot is filled (it must be in `tools`)
    arguments: dict[str, str | int | float | bool] = {}  # fixed arguments for the tool
    slots: list[SlotSetting] = []
    done: str | None = None  # said after the tool answered: {slot names} and {result}
    retry_slots: list[str] = []  # asked for again when the tool answers "error: ..."

    @pydantic.model_validator(mode="after")
    def _says_something(self) -> IntentSetting:
        unknown = set(self.retry_slots) - {s.name for s in self.slots}
        if unknown:
            raise ValueError(f"retry_slots names no slot: {', '.join(sorted(unknown))}")
        if not (self.reply or self.slots or self.done):
            raise ValueError("an intent needs a reply, slots or a done line")
        if (self.slots or self.done) and self.tool is None:
            raise ValueError("slots and done need a tool to call")
        return self


KEYPAD_KEYS = "0123456789*#ABCD"


class KeySetting(pydantic.BaseModel):
    """What a phone key does (``keypad:``): say ``reply``; and/or run ``tool`` with
    ``arguments`` (its result goes to the model); or stand for one of the ``intents`` (the
    model hears the caller ask for it, in its first example's words)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    reply: str = ""
    intent: str | None = None
    tool: str | None = None  # it must be in `tools`
    arguments: dict[str, str | int | float | bool] = {}

    @pydantic.model_validator(mode="after")
    def _does_something(self) -> KeySetting:
        if self.intent is not None and (self.reply or self.tool):
            raise ValueError("a key with an intent takes that intent's reply and tool: drop reply and tool")
        if not (self.reply or self.intent or self.tool):
            raise ValueError("a key needs a reply, an intent or a tool")
        if self.arguments and self.tool is None:
            raise ValueError("arguments need a tool")
        return self


class PersonaSettings(pydantic.BaseModel):
    """The front matter. Times in seconds unless the name says ``_ms``."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    display_name: str = pydantic.Field(min_length=1)
    language: str = "en-US"
    greeting: str = ""
    greeting_interruptible: bool = True
    goodbye: str = "Thank you for calling. Goodbye!"
    llm_model: str = "gpt-6-luna"  # OpenAI's replacement for gpt-4o-mini (shut down 2027-01-14)
    temperature: float = pydantic.Field(0.6, ge=0.0, le=2.0)
    stt_model: str = "nova-3"
    stt_provider: str = (
        ""  # a recogniser by provider ("deepgram", "sarvam", "whisper"); "": the service's default
    )
    keywords: list[str] = []
    tts_provider: Literal["deepgram", "openai", "sarvam"] = "deepgram"
    tts_voice: str = ""
    min_speech_ms: int = pydantic.Field(80, ge=20, le=2000)
    min_words: int = pydantic.Field(1, ge=1, le=10)
    backchannels: list[str] | None = None  # None: the built-in list for `language` (with English, Hindi)
    # a short sound over the agent with no words: it talks on this long after the sound stopped
    resume_after_ms: int = pydantic.Field(300, ge=100, le=3000)
    late_interruption_ms: int = pydantic.Field(1000, ge=0, le=5000)  # real words this soon after still cut
    # the end of the caller's turn (app/pipeline/end_of_turn.py): silence after which the words
    # are judged (and a reply is prepared), then the silence that ends a turn whose words are
    # complete, unsure, or trailing off ("a table for…")
    end_of_turn_decide_ms: int = pydantic.Field(150, ge=20, le=2000)
    end_of_turn_complete_ms: int = pydantic.Field(250, ge=20, le=5000)
    end_of_turn_unsure_ms: int = pydantic.Field(700, ge=20, le=5000)
    end_of_turn_incomplete_ms: int = pydantic.Field(2000, ge=20, le=10000)
    end_of_turn_model: bool = True  # the end-of-turn audio model settles unsure words, when installed
    end_of_turn_model_incomplete_ms: int = pydantic.Field(1000, ge=20, le=10000)  # ... its "not finished"
    preemptive_replies: bool = True  # prepare the reply unheard while the caller may still go on
    idle_reprompt_seconds: float = pydantic.Field(8.0, gt=0)
    idle_reprompt_count: int = pydantic.Field(2, ge=0, le=10)
    reprompt: str = "Are you still there?"
    max_duration_seconds: float = pydantic.Field(600.0, gt=0)
    closing_line: str = "We've reached the time limit for this call. Thank you for calling, goodbye!"
    # said when the service shuts down and DRAIN_TIMEOUT has passed with the call still live
    shutdown_line: str = "I'm sorry, I have to end the call now. Please call us back. Goodbye!"
    tools: list[str] = ["end_call"]
    transfer_number: str | None = pydantic.Field(None, pattern=r"^\+?[0-9]{6,15}$")
    intents: list[IntentSetting] = []
    fallback: str = "Sorry, I didn't catch that. Could you say it another way?"
    business_hours: str = ""  # for the prompt's {business_hours}, e.g. "Mon-Fri 9:00-17:00"
    # failover: providers tried in order when this persona's recogniser, voice or language model
    # fails mid-call, e.g. [whisper]; None: the service's STT_FALLBACK / TTS_FALLBACK / LLM_FALLBACK
    stt_fallback: list[ProviderName] | None = None
    tts_fallback: list[ProviderName] | None = None
    llm_fallback: list[ProviderName] | None = None
    keypad: dict[str, KeySetting] = {}  # phone keys ("1", "#") → what they do; others reach the model
    keypad_gap_ms: int = pydantic.Field(1000, ge=200, le=5000)  # unmapped keys this close make one turn

    @pydantic.field_validator("keypad", mode="before")
    @classmethod
    def _keys_are_keys(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value  # pydantic says what is wrong
        keys = {str(k).upper(): v for k, v in value.items()}  # YAML reads 1: as a number
        wrong = [k for k in keys if len(k) != 1 or k not in KEYPAD_KEYS]
        if wrong:
            raise ValueError(f"keys are one of {' '.join(KEYPAD_KEYS)} (quote * and #); got {wrong[0]!r}")
        return keys

    # outbound campaigns: per-contact values for {placeholders} (a contacts CSV's columns), each
    # with the text used when a call has none (inbound calls); "" = the campaign must supply it
    variables: dict[str, str] = {}
    # an answering machine on an outbound call: "leave" says voicemail_message after its beep,
    # then hangs up; "hangup" hangs up at once (and so does "leave" without a message)
    voicemail: Literal["leave", "hangup"] = "hangup"
    voicemail_message: str = ""

    @pydantic.field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[a-z_][a-z0-9_]{0,39}", name) or name in PLACEHOLDERS:
                raise ValueError(
                    f"{name!r}: use lower-case letters, digits and '_', not a built-in placeholder"
                )
        return value

    recording: bool | None = None  # on/off: record this persona's calls; unset: the RECORDING setting
    recording_disclosure: str = ""  # said first, before the greeting, when the call is recorded
    # after the call (post-call webhook): a short summary by the language model, and a disposition
    # it chooses from this list (e.g. [booked, callback, not_interested]); both kept in the record
    summary: bool = False
    dispositions: list[str] = []

    @pydantic.model_validator(mode="after")
    def _end_of_turn_in_order(self) -> PersonaSettings:
        waits = (
            self.end_of_turn_decide_ms,
            self.end_of_turn_complete_ms,
            self.end_of_turn_unsure_ms,
            self.end_of_turn_incomplete_ms,
        )
        if list(waits) != sorted(waits):
            raise ValueError(
                "end_of_turn_decide_ms ≤ end_of_turn_complete_ms ≤ end_of_turn_unsure_ms ≤ "
                "end_of_turn_incomplete_ms; got " + ", ".join(str(w) for w in waits)
            )
        return self


PLACEHOLDERS = {
    "caller_number": "the caller's number",
    "today": "today's date, e.g. Wednesday 2 December 2026",
    "business_hours": "the business_hours setting",
    "display_name": "the display_name setting",
}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    settings: PersonaSettings
    prompt: str  # the system prompt (the file's body), placeholders unfilled
    path: Path

    def system_prompt(
        self,
        *,
        caller_number: str = "",
        today: date | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> str:
        """The prompt for one call, its ``{placeholders}`` filled in (``variables``: a campaign
        contact's values, already made safe by ``fill``; missing ones take the persona's default)."""
        day = today or date.today()
        values = {
            **self.settings.variables,
            **{k: v for k, v in (variables or {}).items() if k in self.settings.variables},
            "caller_number": caller_number or "unknown",
            "today": f"{day:%A} {day.day} {day:%B %Y}",
            "business_hours": self.settings.business_hours or "not stated",
            "display_name": self.settings.display_name,
        }
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), self.prompt)


def load_persona(path: Path, known_tools: frozenset[str] | None = None) -> Persona:
    """Read and check one persona file."""
    name = path.stem
    if not is_valid_name(name):
        raise PersonaError(f"{path}: file name: use lower-case letters, digits, '-' and '_' only")
    text = path.read_text(encoding="utf-8")
    match = FRONT_MATTER.match(text)
    if match is None:
        raise PersonaError(f"{path}: no front matter: start the file with a '---' line, settings, '---'")
    try:
        raw = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise PersonaError(f"{path}: front matter is not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise PersonaError(f"{path}: front matter must be 'key: value' lines")
    try:
        settings = PersonaSettings.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise PersonaError("\n".join(_describe(path, e) for e in exc.errors(include_url=False))) from None
    if known_tools is not None:
        for tool in settings.tools:
            if tool not in known_tools:
                raise PersonaError(
                    f"{path}: tools: unknown tool {tool!r} (available: {', '.join(sorted(known_tools))})"
                )
    for index, intent in enumerate(settings.intents):
        if intent.tool is not None and intent.tool not in settings.tools:
            raise PersonaError(
                f"{path}: intents.{index}.tool: {intent.tool!r} is not in this persona's "
                f"tools {settings.tools}"
            )
    intents = {intent.name for intent in settings.intents}
    for key, action in settings.keypad.items():
        if action.tool is not None and action.tool not in settings.tools:
            raise PersonaError(
                f"{path}: keypad.{key}.tool: {action.tool!r} is not in this persona's tools {settings.tools}"
            )
        if action.intent is not None and action.intent not in intents:
            raise PersonaError(
                f"{path}: keypad.{key}.intent: no intent named {action.intent!r} "
                f"(intents: {', '.join(sorted(intents)) or 'none'})"
            )
    if "transfer_call" in settings.tools and not settings.transfer_number:
        raise PersonaError(f"{path}: transfer_number: required when tools include transfer_call")
    prompt = match.group(2).strip()
    if not prompt:
        raise PersonaError(f"{path}: the system prompt (the text after the front matter) is empty")
    for found in _PLACEHOLDER.finditer(prompt):
        if found.group(1) not in PLACEHOLDERS and found.group(1) not in settings.variables:
            known = ", ".join("{" + k + "}" for k in [*PLACEHOLDERS, *settings.variables])
            raise PersonaError(f"{path}: prompt: unknown placeholder {found.group(0)} (known: {known})")
    for label, text in (("greeting", settings.greeting), ("voicemail_message", settings.voicemail_message)):
        for found in _PLACEHOLDER.finditer(text):
            if found.group(1) not in settings.variables:
                raise PersonaError(
                    f"{path}: {label}: unknown placeholder {found.group(0)} (declare it under variables)"
                )
    if "{business_hours}" in prompt and not settings.business_hours:
        raise PersonaError(f"{path}: business_hours: required when the prompt uses {{business_hours}}")
    return Persona(name, settings, prompt, path)


def _describe(path: Path, error: object) -> str:
    err = error if isinstance(error, dict) else {}
    field = ".".join(str(p) for p in err.get("loc", ())) or "front matter"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(field, list(PersonaSettings.model_fields), n=1, cutoff=0.6)
        hint = f"unknown setting (did you mean {close[0]!r}?)" if close else "unknown setting"
    elif kind == "missing":
        hint = "required: add it to the front matter"
    elif kind == "string_type" and isinstance(err.get("input"), bool):
        hint = "expected text: put it in quotes (YAML reads yes, no, on and off as true or false)"
    else:
        hint = str(err.get("msg", "invalid value"))
    return f"{path}: {field}: {hint}"


def load_personas(prompts_dir: Path, known_tools: frozenset[str] | None = None) -> dict[str, Persona]:
    """Every ``*.md`` persona in ``prompts_dir``; raises ``PersonaError`` on the first broken one."""
    personas, problems = check_personas(prompts_dir, known_tools)
    if problems:
        raise PersonaError(problems[0])
    return personas


def check_personas(
    prompts_dir: Path, known_tools: frozenset[str] | None = None
) -> tuple[dict[str, Persona], list[str]]:
    """The good personas in ``prompts_dir`` and every problem found (file, field and hint)."""
    if not prompts_dir.is_dir():
        return {}, [f"{prompts_dir}: persona folder not found"]
    personas: dict[str, Persona] = {}
    problems: list[str] = []
    for path in sorted(prompts_dir.glob("*.md")):
        try:
            personas[path.stem] = load_persona(path, known_tools)
        except PersonaError as exc:
            problems.append(str(exc))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot be read ({exc})")
    return personas, problems


def placeholders_used(persona: Persona) -> set[str]:
    """The persona's campaign variables that its prompt, greeting or voicemail message uses."""
    s = persona.settings
    texts = (persona.prompt, s.greeting, s.voicemail_message)
    return {m.group(1) for t in texts for m in _PLACEHOLDER.finditer(t) if m.group(1) in s.variables}


def fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``{name}`` of ``values`` replaced, in one pass: a value is never read
    again, so a contact's ``{today}`` or ``}`` stays literal text; unknown placeholders stay."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
