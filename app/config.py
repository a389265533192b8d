"""Service settings, read from the environment (and an optional ``.env`` file).

There is no module-level instance: ``create_app(settings)`` receives one, so tests
build their own and nothing is read at import time.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

VOBIZ_API_BASE_URL = "https://api.vobiz.ai/api/v1"

StreamContentType = Literal["audio/x-mulaw;rate=8000", "audio/x-l16;rate=8000", "audio/x-l16;rate=16000"]


def phone_digits(number: str) -> str:
    """A phone number's digits alone: "+1 (415) 555-0199" and "14155550199" are the same number."""
    return "".join(ch for ch in number if ch.isdigit())


def bundled_prompts() -> Path:
    """The example personas that ship with the package: ``app/prompts`` inside an installed wheel
    (pyproject's force-include puts them there), the checkout's ``prompts/`` in an editable one."""
    package = Path(__file__).resolve().parent
    shipped = package / "prompts"
    return shipped if shipped.is_dir() else package.parent / "prompts"


class SignatureMode(StrEnum):
    """How webhook signatures (X-Vobiz-Signature-V3/-V2) are treated."""

    OFF = "off"  # not checked
    LOG = "log"  # checked; a failure is logged and the request is served
    ENFORCE = "enforce"  # a missing or bad signature is answered with 403


# ── usage and cost (README "Usage and cost") ─────────────────────────────────────────────────
# List prices in USD (December 2026 pay-as-you-go list prices where known; check your contract).
# The embedded engines cost nothing. A provider or model not listed has no price: its cost is
# left out of a call's estimate and the record lists it under "unpriced".
DEFAULT_STT_PER_MINUTE = {"deepgram": 0.0077, "whisper": 0.0}
DEFAULT_LLM_PER_MILLION_TOKENS = {
    "gpt-4o-mini": {"input": 0.15, "output": 0.60},
    "gpt-4o": {"input": 2.50, "output": 10.00},
    "gpt-4.1-mini": {"input": 0.40, "output": 1.60},
    "gpt-4.1": {"input": 2.00, "output": 8.00},
    "intents": {"input": 0.0, "output": 0.0},
}
DEFAULT_TTS_PER_MILLION_CHARACTERS = {"deepgram": 30.0, "openai": 15.0, "piper": 0.0, "espeak": 0.0}


class TokenPrice(BaseModel):
    input: Annotated[float, Field(ge=0)]  # USD per 1M input (prompt) tokens
    output: Annotated[float, Field(ge=0)]  # USD per 1M output (completion) tokens


class PriceTable(BaseModel):
    """``PRICES``: JSON, e.g. ``{"llm": {"my-model": {"input": 0.2, "output": 0.8}}}``; entries
    given are added to (or replace) the defaults above, by name."""

    model_config = ConfigDict(validate_default=True, extra="forbid")

    stt: dict[str, Annotated[float, Field(ge=0)]] = {}  # by recogniser: USD per minute of audio sent
    llm: dict[str, TokenPrice] = {}  # by model name as the persona asks for it: USD per 1M tokens
    tts: dict[str, Annotated[float, Field(ge=0)]] = {}  # by voice provider: USD per 1M characters

    @field_validator("stt")
    @classmethod
    def _stt_defaults(cls, value: dict[str, float]) -> dict[str, float]:
        return {**DEFAULT_STT_PER_MINUTE, **value}

    @field_validator("llm")
    @classmethod
    def _llm_defaults(cls, value: dict[str, TokenPrice]) -> dict[str, TokenPrice]:
        defaults = {k: TokenPrice(**v) for k, v in DEFAULT_LLM_PER_MILLION_TOKENS.items()}
        return {**defaults, **value}

    @field_validator("tts")
    @classmethod
    def _tts_defaults(cls, value: dict[str, float]) -> dict[str, float]:
        return {**DEFAULT_TTS_PER_MILLION_CHARACTERS, **value}


class Settings(BaseSettings):
    """Every setting the service reads. ``.env.example`` documents each one."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # where Vobiz reaches us: https://agent.example.com (no trailing slash needed)
    public_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8000")

    vobiz_auth_id: str = ""
    vobiz_auth_token: SecretStr = SecretStr("")
    vobiz_api_base_url: str = VOBIZ_API_BASE_URL
    vobiz_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    vobiz_max_retries: Annotated[int, Field(ge=0, le=10)] = 3

    deepgram_api_key: SecretStr = SecretStr("")
    deepgram_base_url: str = ""  # empty: Deepgram's cloud; set for a self-hosted Deepgram
    openai_api_key: SecretStr = SecretStr("")
    openai_base_url: str = ""  # the language model's server; empty = api.openai.com
    # the OpenAI voice's own server (never OPENAI_BASE_URL's); empty = api.openai.com
    openai_tts_base_url: str = ""
    # the OpenAI voice's model; empty = no OpenAI voice (every /audio/speech model OpenAI serves
    # shuts down on 2027-01-06)
    openai_tts_model: str = ""
    # sized for a phone call: seconds to connect, and between streamed chunks (and for a write)
    openai_connect_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 3.0
    openai_read_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 8.0
    # Sarvam AI (Indian languages): speech-to-text (saaras realtime) and voices (bulbul) for the
    # personas that ask for them (stt_provider / tts_provider: sarvam); empty = not available
    sarvam_api_key: SecretStr = SecretStr("")
    sarvam_base_url: str = ""  # empty: Sarvam's cloud; set for a proxy (or a test's fake)

    # which engines the agent runs on: "auto" = the cloud where its key is set and the embedded
    # offline engine where not; "cloud" = keys required; "offline" = embedded engines only;
    # "echo" = no conversation, the agent repeats the caller (a telephony check)
    providers: Literal["auto", "cloud", "offline", "echo"] = "auto"
    # the embedded voice: "piper" (neural; falls back to eSpeak NG if not installed) or "espeak"
    offline_voice: Literal["piper", "espeak"] = "piper"
    # the end-of-turn audio model: "smart-turn" (Smart Turn v3.2, when its runtime is installed;
    # without it the turn ends on silence and the words alone) or "off"
    turn_model: Literal["smart-turn", "off"] = "smart-turn"

    # enforce (the default) needs VOBIZ_AUTH_TOKEN; "off" only for local experiments
    signature_mode: SignatureMode = SignatureMode.ENFORCE
    # how long accepted webhook nonces and ended calls are remembered: a signed webhook replayed
    # within this window is refused (and a stream URL of an ended call, whatever the window)
    replay_window_seconds: Annotated[int, Field(ge=60)] = 6 * 3600

    # inbound (caller -> us) format asked for in <Stream contentType>
    stream_content_type: StreamContentType = "audio/x-mulaw;rate=8000"
    # outbound playAudio rate; 0 = same as inbound (the safe reading of the docs)
    playback_sample_rate: int = 0
    l16_byte_order: Literal["little", "big"] = "little"
    stream_timeout_seconds: Annotated[int, Field(gt=0)] = 86400
    # audio per playAudio message (PROTOCOL.md §4.1 recommends 20-60 ms): 60 sends a third of the
    # messages of 20; a barge-in still silences the caller at once (clearAudio flushes Vobiz)
    play_audio_ms: Annotated[int, Field(ge=20, le=60, multiple_of=20)] = 60
    # ask Vobiz for stream status callbacks (StartStream, a PlayedStream per checkpoint,
    # StopStream): nothing acts on them (the socket carries the same facts), each costs a signed
    # HTTP request, so they are off unless wanted for debugging
    stream_status_callbacks: bool = False

    # key for the per-call stream token; empty = a random key per process (single replica only)
    stream_token_secret: SecretStr = SecretStr("")
    stream_token_ttl_seconds: Annotated[int, Field(gt=0)] = 300

    # persona files (<name>.md); default: the example personas shipped with the package, so the
    # command works from any folder. A relative PROMPTS_DIR is taken from the working directory.
    prompts_dir: Path = Field(default_factory=lambda: bundled_prompts())
    default_persona: str = "default"
    # persona by the number that was called ("To"), e.g. {"+14155550199": "clinic"}; the answer
    # URL's ?persona=NAME comes first, the default last. Numbers match on their digits alone.
    persona_by_number: dict[str, str] = {}

    # where the service keeps its files (the example agents' SQLite tables); created on first use
    data_dir: Path = Path("data")

    # call records: a SQLAlchemy async URL (sqlite+aiosqlite:///… or postgresql+asyncpg://…);
    # empty = SQLite in DATA_DIR/calls.sqlite3. A secret: a PostgreSQL URL carries its password.
    database_url: SecretStr = SecretStr("")
    # key for GET /calls and GET /calls/{id} (Authorization: Bearer … or X-API-Key); empty = the
    # endpoints are off and answer 404
    calls_api_key: SecretStr = SecretStr("")
    # the browser playground (/playground): off; `voice-agent playground` turns it on for 127.0.0.1
    playground: bool = False

    # Redis shared by every process and replica (redis://[:password@]host:port/db): the call bus
    # (a hang-up reaches the process that holds its call), webhook nonces and the one live socket
    # per call. Empty = this process alone (one worker, one replica). A secret: it may hold a password.
    redis_url: SecretStr = SecretStr("")

    # seconds live calls may go on after SIGTERM (the process is no longer ready meanwhile); then
    # each says its persona's shutdown line and hangs up. A process exits at most DRAIN_TIMEOUT
    # + 20 s after SIGTERM (app/drain.py): give the orchestrator's kill deadline that much.
    drain_timeout: Annotated[float, Field(ge=0)] = 300.0

    # the largest WebSocket message accepted from Vobiz (a 20 ms frame is < 1 KiB)
    max_message_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # how `serve` writes log lines: "json" (one object a line, for collectors) or "text" (for people)
    log_format: Literal["json", "text"] = "json"
    # GET /metrics (Prometheus, unauthenticated); false leaves the route out
    metrics_enabled: bool = True

    # failover chains: the providers tried, in order, after a stage's primary fails mid-call
    # (a connection failure, a timeout, a 5xx); names as JSON lists, e.g. STT_FALLBACK=["whisper"]
    # (speech-to-text: deepgram, sarvam, whisper; voices: deepgram, openai, sarvam, offline; language models:
    # openai, secondary). A name the process has no provider for is skipped. Empty: no failover.
    stt_fallback: list[str] = []
    tts_fallback: list[str] = []
    llm_fallback: list[str] = []
    # the "secondary" language model: any OpenAI-compatible server, with its own key and model
    secondary_llm_base_url: str = ""
    secondary_llm_api_key: SecretStr = SecretStr("")
    secondary_llm_model: str = ""  # empty: the persona's llm_model
    # circuit breaker, shared by every call of the process: after this many failures of one
    # provider within FAILOVER_BREAKER_COOLDOWN_S, new calls skip it for that long, then one
    # call tries it again (half-open)
    failover_breaker_failures: Annotated[int, Field(ge=1, le=100)] = 3
    failover_breaker_cooldown_s: Annotated[float, Field(gt=0, le=3600)] = 30.0

    # prices for the per-call cost estimate (README "Usage and cost"); JSON, merged with the defaults
    prices: PriceTable = Field(default_factory=PriceTable)
    # call recordings: a stereo WAV per call in DATA_DIR/recordings/<call_id>.wav (left the caller,
    # right the agent as heard); on|off, a persona's `recording:` overrides it. Check the law where
    # you and your callers are: many places require telling the caller (`recording_disclosure:`).
    recording: bool = False
    # recordings last written more than this many days ago are deleted (at start-up, then
    # hourly); 0 = kept until deleted by hand
    recording_retention_days: Annotated[int, Field(ge=0)] = 0

    # --- post-call webhook (app/postcall/) ---
    # one signed JSON POST per ended call to this URL; empty = off
    post_call_webhook_url: str = ""
    # HMAC-SHA256 key for the X-Voice-Agent-Signature header; empty = the POST is not signed
    post_call_webhook_secret: SecretStr = SecretStr("")
    # a delivery is retried with capped exponential back-off and jitter for this long (>= 10 minutes)
    post_call_webhook_retry_seconds: Annotated[float, Field(ge=600)] = 900.0
    # the first back-off and its cap, in seconds (the waits between attempts)
    post_call_webhook_backoff_initial_seconds: Annotated[float, Field(gt=0)] = 2.0
    post_call_webhook_backoff_max_seconds: Annotated[float, Field(gt=0)] = 60.0
    # each attempt's time limit (connect + send + answer)
    post_call_webhook_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    # a socket that merely dropped may be reconnected: its delivery waits this long for the
    # hang-up callback (which makes it due at once) so the payload holds the whole call
    post_call_webhook_settle_seconds: Annotated[float, Field(ge=0)] = 30.0
    # how often the outbox is swept for due deliveries (also made at start-up and at each call's end)
    post_call_webhook_poll_seconds: Annotated[float, Field(gt=0)] = 15.0

    @field_validator(
        "vobiz_api_base_url",
        "openai_base_url",
        "openai_tts_base_url",
        "deepgram_base_url",
        "sarvam_base_url",
        "secondary_llm_base_url",
    )
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("playback_sample_rate")
    @classmethod
    def _known_rate(cls, value: int) -> int:
        if value not in (0, 8000, 16000, 24000):
            raise ValueError("PLAYBACK_SAMPLE_RATE must be 0 (same as the caller), 8000, 16000 or 24000")
        return value

    @field_validator("persona_by_number")
    @classmethod
    def _digits_only(cls, value: dict[str, str]) -> dict[str, str]:
        found = {}
        for number, persona in value.items():
            digits = phone_digits(number)
            if not 6 <= len(digits) <= 15:
                raise ValueError(f"PERSONA_BY_NUMBER: {number!r} is not a phone number")
            found[digits] = persona
        return found

    @property
    def public_base(self) -> str:
        """``public_url`` without a trailing slash."""
        return str(self.public_url).rstrip("/")

    @property
    def public_ws_base(self) -> str:
        """The ws(s):// form of ``public_url``."""
        base = self.public_base
        if base.startswith("https://"):
            return "wss://" + base.removeprefix("https://")
        return "ws://" + base.removeprefix("http://")
