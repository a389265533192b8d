"""What a call record holds: plain values, JSON-ready (``app.records.listener`` makes them).

Times inside a record (transcript lines, latency stamps) are seconds from the call's start on the
call's own clock; ``started_at``/``ended_at`` are unix seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

IN_PROGRESS = "in-progress"  # inserted at the start; a process that died mid-call leaves it so
COMPLETED = "completed"  # the call ended, however it ended (``end_reason`` says how)
PROCESS_DIED = "process-died"  # end reason of a call whose process died mid-call
HANGUP = "hangup"  # end reason of a call completed from Vobiz's hang-up callback


class TranscriptLine(TypedDict):
    t: float  # seconds from the call's start
    speaker: str  # "caller" | "agent"
    text: str  # for the agent, what the caller heard
    interrupted: bool


class ToolUse(TypedDict):
    id: str
    name: str
    arguments: str  # JSON text, as the model produced it


# a stage that switched provider mid-call (``from`` is a keyword: the functional form)
FailoverEntry = TypedDict("FailoverEntry", {"t": float, "stage": str, "from": str, "to": str, "reason": str})


def failover_entry(t: float, stage: str, from_: str, to: str, reason: str) -> FailoverEntry:
    return {"t": t, "stage": stage, "from": from_, "to": to, "reason": reason}


class DtmfEntry(TypedDict):
    t: float  # seconds from the call's start (the first key)
    digits: str  # the keys, e.g. "1" or "12345678"
    purpose: str  # "menu" (the persona's keypad map) | "collect" (collect_digits) | "llm" (to the model)


TurnLatency = dict[str, float | int | bool | None]
"""``turn``, each stage of ``app.pipeline.latency.STAGES`` (seconds from the call's start, or
None when it did not happen) and ``interrupted``."""


@dataclass(frozen=True, slots=True)
class CallSummary:
    """A row of the list: no transcript."""

    call_id: str
    status: str
    persona: str
    caller: str
    called: str
    started_at: float
    ended_at: float | None
    end_reason: str | None

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else max(0.0, self.ended_at - self.started_at)

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "duration": self.duration}


@dataclass(frozen=True, slots=True)
class CallRecord:
    call_id: str
    status: str
    persona: str
    caller: str
    called: str
    started_at: float
    ended_at: float | None = None
    end_reason: str | None = None
    agent: str = ""  # the agent's class: "Conversation" for real calls, "EchoAgent", ...
    barge_ins: int | None = None  # None: the agent does not count it
    false_interruptions: int | None = None
    provider_errors: int | None = None
    preemptive_started: int | None = None  # replies prepared before the caller's turn surely ended
    preemptive_committed: int | None = None  # ... that became the reply
    preemptive_wasted: int | None = None  # ... discarded after their LLM request began (a cost)
    stats: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the session's counters
    transcript: tuple[TranscriptLine, ...] = ()
    tool_calls: tuple[ToolUse, ...] = ()
    latency: tuple[TurnLatency, ...] = ()
    owner: str = ""  # the process holding the call while it is in progress (``records.owner``)
    hangup_cause: str | None = None  # Vobiz's HangupCause, when its hang-up callback completed it
    failovers: tuple[FailoverEntry, ...] = ()  # stages that switched provider (app/providers/failover.py)
    dtmf: tuple[DtmfEntry, ...] = ()  # the caller's keys, in order
    # STT seconds, LLM tokens, TTS characters, wasted preemptive LLM calls, estimated cost and the
    # per-provider breakdown (``app.pipeline.usage.usage_summary``); empty: not counted
    usage: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    recording: str | None = None  # the call's WAV in DATA_DIR/recordings (GET /calls/{id}/recording)
    # the LLM's few sentences after the call (persona ``summary: true``); "summary" in the JSON and
    # the table (``summary`` here is the list row)
    summary_text: str | None = None
    disposition: str | None = None  # one of the persona's ``dispositions``, chosen after the call

    @property
    def summary(self) -> CallSummary:
        return CallSummary(self.call_id, self.status, self.persona, self.caller, self.called,
                           self.started_at, self.ended_at, self.end_reason)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary.to_json(),
            "agent": self.agent,
            "barge_ins": self.barge_ins,
            "false_interruptions": self.false_interruptions,
            "provider_errors": self.provider_errors,
            "preemptive_started": self.preemptive_started,
            "preemptive_committed": self.preemptive_committed,
            "preemptive_wasted": self.preemptive_wasted,
            "stats": dict(self.stats),
            "transcript": list(self.transcript),
            "tool_calls": list(self.tool_calls),
            "latency": list(self.latency),
            "hangup_cause": self.hangup_cause,
            "failovers": list(self.failovers),
            "dtmf": list(self.dtmf),
            "usage": dict(self.usage),
            "recording": self.recording,
            "summary": self.summary_text,
            "disposition": self.disposition,
        }
