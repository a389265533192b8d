"""A call carried by several sockets keeps one record: each socket's record continues it.

A socket that merely dropped may be followed by another for the same call (Vobiz's
``maxRetries``; the rules are in ``app/api/guard.py``). Each socket's session writes the record
of its own part, its times counted from its own start; :func:`continued` appends that part to
what the call's record already holds, so the first part of the conversation is never lost.
Pure: the store calls it inside the transaction that reads and writes the row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from app.pipeline.session import MAX_UNKNOWN_EVENT_NAMES, UNKNOWN_OTHER
from app.pipeline.usage import summed_usage
from app.records.record import (
    CallRecord,
    DtmfEntry,
    FailoverEntry,
    TranscriptLine,
    TurnLatency,
    failover_entry,
)


def continued(earlier: CallRecord, later: CallRecord) -> CallRecord:
    """The call's record once ``later`` (one socket's part, times from that socket's start)
    follows ``earlier`` (what the row held: the in-progress row of the same socket, or the
    parts of earlier sockets). ``started_at`` stays the first socket's, and the later part's
    times are moved onto the call's axis by the gap between the two wall-clock starts; lists are
    appended, counters summed; the end (``ended_at``, ``end_reason``, status) is the later's.

    Following a row that holds nothing yet (its own in-progress row) gives ``later`` unchanged."""
    offset = later.started_at - earlier.started_at
    turns = max((int(turn.get("turn") or 0) for turn in earlier.latency), default=0)
    return dataclasses.replace(
        later,
        persona=earlier.persona,
        caller=earlier.caller,
        called=earlier.called,
        started_at=earlier.started_at,
        barge_ins=_sum(earlier.barge_ins, later.barge_ins),
        false_interruptions=_sum(earlier.false_interruptions, later.false_interruptions),
        provider_errors=_sum(earlier.provider_errors, later.provider_errors),
        preemptive_started=_sum(earlier.preemptive_started, later.preemptive_started),
        preemptive_committed=_sum(earlier.preemptive_committed, later.preemptive_committed),
        preemptive_wasted=_sum(earlier.preemptive_wasted, later.preemptive_wasted),
        stats=_summed_stats(earlier.stats, later.stats),
        transcript=earlier.transcript + tuple(_line_after(line, offset) for line in later.transcript),
        tool_calls=earlier.tool_calls + later.tool_calls,
        latency=earlier.latency + tuple(_turn_after(turn, offset, turns) for turn in later.latency),
        hangup_cause=later.hangup_cause if later.hangup_cause is not None else earlier.hangup_cause,
        failovers=earlier.failovers + tuple(_failover_after(f, offset) for f in later.failovers),
        dtmf=earlier.dtmf + tuple(_key_after(entry, offset) for entry in later.dtmf),
        usage=summed_usage(earlier.usage, later.usage),
        recording=later.recording if later.recording is not None else earlier.recording,
        # written after an earlier part ended (the post-call webhook): a later part keeps them
        summary_text=later.summary_text if later.summary_text is not None else earlier.summary_text,
        disposition=later.disposition if later.disposition is not None else earlier.disposition,
    )


def _failover_after(entry: FailoverEntry, offset: float) -> FailoverEntry:
    return failover_entry(
        _shifted(entry["t"], offset), entry["stage"], entry["from"], entry["to"], entry["reason"]
    )


def _sum(a: int | None, b: int | None) -> int | None:
    """None only when neither part counts it (the agent does not)."""
    return None if a is None and b is None else (a or 0) + (b or 0)


def _shifted(t: float, offset: float) -> float:
    return t if offset == 0 else round(t + offset, 4)


def _line_after(line: TranscriptLine, offset: float) -> TranscriptLine:
    return TranscriptLine(t=_shifted(line["t"], offset), speaker=line["speaker"], text=line["text"],
                          interrupted=line["interrupted"])  # fmt: skip


def _key_after(entry: DtmfEntry, offset: float) -> DtmfEntry:
    return DtmfEntry(t=_shifted(entry["t"], offset), digits=entry["digits"], purpose=entry["purpose"])


def _turn_after(turn: TurnLatency, offset: float, turns: int) -> TurnLatency:
    """A later socket numbers its turns from 1 again: they follow the earlier ones'."""
    moved: TurnLatency = {}
    for key, value in turn.items():
        if key == "turn" and isinstance(value, int):
            moved[key] = value + turns
        elif isinstance(value, float | int) and not isinstance(value, bool) and key != "turn":
            moved[key] = _shifted(float(value), offset)
        else:
            moved[key] = value
    return moved


def _summed_stats(earlier: Mapping[str, Any], later: Mapping[str, Any]) -> dict[str, Any]:
    """Counters summed, counts by name merged; anything else is the later part's."""
    merged: dict[str, Any] = dict(earlier)
    for key, value in later.items():
        before = merged.get(key)
        if isinstance(value, int) and isinstance(before, int):
            merged[key] = before + value
        elif isinstance(value, Mapping) and isinstance(before, Mapping):
            merged[key] = _summed_counts(before, value)
        else:
            merged[key] = value
    unknown = merged.get("unknown_events")
    if isinstance(unknown, Mapping):
        merged["unknown_events"] = _capped(unknown)
    return merged


def _summed_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    counts = dict(a)
    for name, n in b.items():
        counts[name] = counts.get(name, 0) + n
    return counts


def _capped(counts: Mapping[str, int]) -> dict[str, int]:
    """As one session counts them: at most ``MAX_UNKNOWN_EVENT_NAMES`` names plus "other"."""
    kept: dict[str, int] = {}
    other = counts.get(UNKNOWN_OTHER, 0)
    for name, n in counts.items():
        if name == UNKNOWN_OTHER:
            continue
        if len(kept) < MAX_UNKNOWN_EVENT_NAMES:
            kept[name] = n
        else:
            other += n
    if other:
        kept[UNKNOWN_OTHER] = other
    return kept
