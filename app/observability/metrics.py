"""The service's Prometheus metrics, in a registry of their own (one per app, so tests that
build many apps never collide on an import-time global registry)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from app.pipeline.latency import STAGES

# seconds after the caller stopped speaking: a snappy reply is 0.3-0.8 s, past 2 s callers talk over it
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
TURN_STAGES = STAGES[1:]  # every stage but the origin, speech_end
UNKNOWN_EVENT = "unknown-event"  # protocol error kind for events we do not know (names stay out of labels)


class VoiceMetrics:
    """Every metric the service exports. Label values come from fixed sets in the code (end
    reasons, stage names, protocol error kinds), never from callers."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = reg = registry if registry is not None else CollectorRegistry()
        self.active_calls = Gauge("voice_agent_active_calls", "Calls whose media session runs", registry=reg)
        self.calls = Counter("voice_agent_calls", "Calls ended, by end reason", ["reason"], registry=reg)
        self.turn_latency = Histogram(
            "voice_agent_turn_latency_seconds",
            "Seconds from the end of the caller's speech to each stage of the agent's reply",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.barge_ins = Counter("voice_agent_barge_ins", "Caller talked over the agent", registry=reg)
        self.false_interruptions = Counter(
            "voice_agent_false_interruptions", "Barge-ins that were a backchannel or noise", registry=reg
        )
        self.preemptive_replies = Counter(
            "voice_agent_preemptive_replies",
            "Replies prepared before the caller's turn surely ended, by outcome: committed (it became "
            "the reply), wasted (discarded after its LLM request began), dropped (discarded before)",
            ["outcome"],
            registry=reg,
        )
        self.protocol_errors = Counter(
            "voice_agent_protocol_errors", "Bad or unexpected frames from Vobiz", ["kind"], registry=reg
        )
        self.provider_errors = Counter(
            "voice_agent_provider_errors", "Failed STT, language model or TTS requests", registry=reg
        )
        self.failovers = Counter(
            "voice_agent_failovers",
            "A stage (stt, tts, llm) of a call switched from one provider to the next of its chain",
            ["stage", "from", "to"],
            registry=reg,
        )
        # usage (README "Usage and cost"): labels are provider and model names from the settings
        self.stt_seconds = Counter(
            "voice_agent_stt_seconds",
            "Seconds of caller audio sent to a recogniser",
            ["provider"],
            registry=reg,
        )
        self.llm_tokens = Counter(
            "voice_agent_llm_tokens",
            "Language-model tokens the service reported, by model and direction (input, output)",
            ["model", "direction"],
            registry=reg,
        )
        self.tts_characters = Counter(
            "voice_agent_tts_characters",
            "Characters sent to a voice for synthesis",
            ["provider"],
            registry=reg,
        )
        self.cost_usd = Counter(
            "voice_agent_cost_usd", "Estimated cost of ended calls in USD (the PRICES table)", registry=reg
        )
        # one child per stage, made once: observing is then a dict look-up and a locked add
        self.stage_latency = {stage: self.turn_latency.labels(stage=stage) for stage in TURN_STAGES}

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of every metric, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
