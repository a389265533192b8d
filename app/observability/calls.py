"""The service's own call listener: per-turn latency figures and call counters, as log lines
and (when enabled) Prometheus metrics.

A turn is observed once, when its first ``playAudio`` is written: live, through the
conversation's ``on_turn`` hook (see :func:`turn_hook`), or at the call's end for a
conversation built without the hook. A turn the caller never heard (cut before its first
frame, or a reply that failed) is in no histogram. The counters (barge-ins, false
interruptions, preemptive replies, provider and protocol errors) are added when the call ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from app.observability.metrics import UNKNOWN_EVENT, VoiceMetrics
from app.pipeline.conversation import Conversation
from app.pipeline.latency import TurnStamps
from app.pipeline.lifecycle import CallInfo, CallOutcome
from app.pipeline.usage import Prices, usage_summary

log = logging.getLogger("app.observability")


@runtime_checkable
class TurnListener(Protocol):
    def turn_observed(self, call_id: str, stamps: TurnStamps) -> None:
        """A turn's first ``playAudio`` was written: every stage up to it is stamped.

        Runs in the socket writer, once per turn: no I/O beyond a log line, never raises."""
        ...


def preemptive_outcomes(conversation: Conversation) -> dict[str, int]:
    """How the call's preemptive replies ended; their sum is how many were started."""
    committed, wasted = conversation.preemptive_committed, conversation.preemptive_wasted
    dropped = conversation.preemptive_started - committed - wasted
    return {"committed": committed, "wasted": wasted, "dropped": dropped}


def turn_hook(listeners: Iterable[object], call_id: str) -> Callable[[TurnStamps], None] | None:
    """The ``on_turn`` callback for one call's ``Conversation``: tells every listener that
    wants turns; ``None`` when none does."""
    wanted = [listener for listener in listeners if isinstance(listener, TurnListener)]
    if not wanted:
        return None

    def on_turn(stamps: TurnStamps) -> None:
        for listener in wanted:
            listener.turn_observed(call_id, stamps)

    return on_turn


class CallObserver:
    """A ``CallListener`` and a ``TurnListener``. ``metrics``: None when METRICS_ENABLED=false
    (the log lines are still written)."""

    def __init__(self, metrics: VoiceMetrics | None, prices: Prices | None = None) -> None:
        self._metrics = metrics
        self._prices = prices if prices is not None else Prices()
        self._active: set[int] = set()  # id() of each started call's CallInfo
        self._seen: dict[str, set[int]] = {}  # turns already observed, by call id, until it ends

    async def call_started(self, call: CallInfo) -> None:
        self._active.add(id(call))
        if self._metrics is not None:
            self._metrics.active_calls.inc()

    async def call_ended(self, call: CallInfo, outcome: CallOutcome) -> None:
        if id(call) in self._active:  # a call whose start we never saw must not push the gauge below 0
            self._active.discard(id(call))
            if self._metrics is not None:
                self._metrics.active_calls.dec()
        seen = self._seen.pop(call.call_id, set())
        agent = outcome.agent
        conversation = agent if isinstance(agent, Conversation) else None
        turns = 0
        if conversation is not None:
            for turn, stamps in sorted(conversation.latency.turns.items()):
                if turn in seen or self._observe(call.call_id, stamps):
                    turns += 1
        protocol_errors = sum(outcome.stats.protocol_errors.values())
        unknown_events = sum(outcome.stats.unknown_events.values())
        metrics = self._metrics
        if metrics is not None:
            metrics.calls.labels(reason=outcome.reason).inc()
            for kind, count in outcome.stats.protocol_errors.items():
                metrics.protocol_errors.labels(kind=kind).inc(count)
            if unknown_events:
                metrics.protocol_errors.labels(kind=UNKNOWN_EVENT).inc(unknown_events)
            if conversation is not None:
                metrics.barge_ins.inc(conversation.barge_ins)
                metrics.false_interruptions.inc(conversation.false_interruptions)
                metrics.provider_errors.inc(conversation.provider_errors)
                for ended, count in preemptive_outcomes(conversation).items():
                    metrics.preemptive_replies.labels(outcome=ended).inc(count)
                for switch in conversation.providers.failovers.events:
                    metrics.failovers.labels(switch.stage, switch.from_, switch.to).inc()
                add_usage(metrics, usage_summary(conversation.usage, self._prices))
        extra: dict[str, object] = {
            "call_id": call.call_id,
            "reason": outcome.reason,
            "duration_s": round(max(0.0, outcome.ended_at - call.started_at), 3),
            "protocol_errors": protocol_errors,
            "unknown_events": unknown_events,
        }
        if conversation is not None:
            extra |= {
                "turns": turns,
                "barge_ins": conversation.barge_ins,
                "false_interruptions": conversation.false_interruptions,
                "provider_errors": conversation.provider_errors,
                "preemptive_replies": conversation.preemptive_started,
                "preemptive_wasted": conversation.preemptive_wasted,
                "failovers": len(conversation.providers.failovers.events),
            }
        log.info("call summary", extra=extra)

    def turn_observed(self, call_id: str, stamps: TurnStamps) -> None:
        seen = self._seen.setdefault(call_id, set())
        if stamps.turn not in seen and self._observe(call_id, stamps):
            seen.add(stamps.turn)

    def _observe(self, call_id: str, stamps: TurnStamps) -> bool:
        """Record one answered turn; False (nothing recorded) for a turn the caller did not
        start (the greeting, a reprompt) or never heard."""
        figures = stamps.since_speech_end()
        if "first_play_audio" not in figures:
            return False
        if self._metrics is not None:
            for stage, seconds in figures.items():
                # a final transcript can land before the VAD's hangover ends: clamp, sums must not fall
                self._metrics.stage_latency[stage].observe(max(0.0, seconds))
        fields = {f"{stage}_ms": round(seconds * 1000) for stage, seconds in figures.items()}
        log.info("turn latency", extra={"call_id": call_id, "turn": stamps.turn, **fields})
        return True


def add_usage(metrics: VoiceMetrics, usage: dict[str, Any]) -> None:
    """Add one ended call's ``usage`` (``usage_summary``) to the usage counters."""
    for provider, stt in usage["stt"].items():
        metrics.stt_seconds.labels(provider=provider).inc(stt["seconds"])
    for model, llm in usage["llm"].items():
        metrics.llm_tokens.labels(model=model, direction="input").inc(llm["input_tokens"])
        metrics.llm_tokens.labels(model=model, direction="output").inc(llm["output_tokens"])
    for provider, tts in usage["tts"].items():
        metrics.tts_characters.labels(provider=provider).inc(tts["characters"])
    metrics.cost_usd.inc(usage["cost_usd"])
