"""The optional summary and disposition, from one language-model request after the call.

A persona asks for them in its front matter (``summary: true``; ``dispositions: [booked,
callback, not_interested]``). The model is asked for a few sentences and a last line
``DISPOSITION: <one of the list>``; a disposition not on the list is dropped (None), and so is
everything when no language model is configured (the offline intent responder has none) or
the request fails: the webhook is sent without them. With the scripted test model the result
is whatever its rules answer, so it is deterministic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from app.providers.base import LanguageModel, LLMOptions, Message, TextDelta
from app.providers.errors import ProviderError

log = logging.getLogger("app.postcall")

TIMEOUT_S = 30.0
MAX_SUMMARY_CHARS = 1000
MARKER = "DISPOSITION:"


def prompt(
    transcript: Sequence[Mapping[str, Any]], dispositions: Sequence[str], want_summary: bool
) -> list[Message]:
    asks = []
    if want_summary:
        asks.append("Summarise this phone call in at most three short sentences.")
    if dispositions:
        asks.append(
            f"Then write a last line '{MARKER} X' where X is exactly one of: " + ", ".join(dispositions) + "."
        )
    lines = "\n".join(
        f"{line.get('speaker')}: {line.get('text')}" + (" [cut off]" if line.get("interrupted") else "")
        for line in transcript
    )
    return [
        Message("system", "You review finished phone calls. " + " ".join(asks)),
        Message(
            "user", "Transcript (agent lines are what the caller heard):\n" + (lines or "(nothing said)")
        ),
    ]


def parse(text: str, dispositions: Sequence[str], want_summary: bool) -> tuple[str | None, str | None]:
    """(summary, disposition) from the model's answer."""
    body, disposition = text, None
    head, marker, tail = text.rpartition(MARKER)
    if marker:
        body = head
        chosen = tail.strip().strip(".'\"`").strip().lower().replace(" ", "_")
        disposition = next((d for d in dispositions if d.lower().replace(" ", "_") == chosen), None)
    summary = body.strip()[:MAX_SUMMARY_CHARS] or None
    return (summary if want_summary else None), disposition


async def summarize(
    llm: LanguageModel,
    model: str,
    transcript: Sequence[Mapping[str, Any]],
    dispositions: Sequence[str],
    want_summary: bool,
    call_id: str,
) -> tuple[str | None, str | None]:
    """One request; (None, None) if it fails or times out (logged with the call id alone)."""
    parts: list[str] = []
    try:
        async with asyncio.timeout(TIMEOUT_S):
            stream = llm.stream(
                prompt(transcript, dispositions, want_summary), (), LLMOptions(model, 0.2, 200)
            )
            async for event in stream:
                if isinstance(event, TextDelta):
                    parts.append(event.text)
    except (ProviderError, TimeoutError) as exc:
        log.warning("post-call summary failed: %s", type(exc).__name__, extra={"call_id": call_id})
        return None, None
    return parse("".join(parts), dispositions, want_summary)
