"""The webhook's body, made from a call record's JSON (``CallRecord.to_json``).

Fields other features add to the record (``dtmf``, ``usage``, ``recording``) are read with
``.get`` so the payload has them, empty, before those features exist.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

EVENT = "call.ended"


def payload(record: Mapping[str, Any], public_base: str) -> dict[str, Any]:
    """What the receiver gets. ``recording_url`` is the service's own authenticated route."""
    call_id = str(record["call_id"])
    recording = record.get("recording")
    return {
        "event": EVENT,
        "call_id": call_id,
        "persona": record.get("persona"),
        "caller": _number(record.get("caller")),
        "called": _number(record.get("called")),
        "started_at": record.get("started_at"),
        "ended_at": record.get("ended_at"),
        "duration": record.get("duration"),
        "end_reason": record.get("end_reason"),
        "hangup_cause": record.get("hangup_cause"),
        "transcript": [_line(line) for line in record.get("transcript") or ()],
        "tool_calls": list(record.get("tool_calls") or ()),
        "dtmf": list(record.get("dtmf") or ()),
        "usage": dict(record.get("usage") or {}),
        "recording_url": f"{public_base}/calls/{call_id}/recording" if recording else None,
        "summary": record.get("summary"),
        "disposition": record.get("disposition"),
    }


def encode(body: Mapping[str, Any]) -> str:
    """The JSON text sent (and signed): compact, keys in order, UTF-8 as is."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _number(digits: object) -> str | None:
    """Records keep digits alone; the payload gives E.164 (``+`` and the digits), None if unknown."""
    text = str(digits or "")
    return f"+{text}" if text else None


def _line(line: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "t": line.get("t"),
        "speaker": line.get("speaker"),
        "text": line.get("text"),
        "interrupted": bool(line.get("interrupted")),
    }
