"""The playground's live feed: each browser call's transcript and latency, for the page that
started it (``app/api/playground.py`` serves it)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.pipeline.conversation import Conversation, ConversationObserver
    from app.pipeline.parts import TranscriptEntry

FEED_QUEUE = 256  # events held for a slow page; past that the oldest are dropped


@dataclass(slots=True)
class _Watch:
    secret: str
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(FEED_QUEUE))


class PlaygroundFeed:
    """A ``ConversationObserver`` that hands each playground call's transcript and latency to the
    page watching it (and only that page: each call has its own secret)."""

    def __init__(self) -> None:
        self._watches: dict[str, _Watch] = {}

    def open(self, call_id: str) -> str:
        secret = secrets.token_urlsafe(24)
        self._watches[call_id] = _Watch(secret)
        return secret

    def watch(self, call_id: str, secret: str) -> asyncio.Queue[dict[str, Any]] | None:
        found = self._watches.get(call_id)
        if found is None or not secrets.compare_digest(found.secret, secret):
            return None
        return found.queue

    def close(self, call_id: str) -> None:
        self._watches.pop(call_id, None)

    def _put(self, call_id: str, event: dict[str, Any]) -> None:
        found = self._watches.get(call_id)
        if found is None:
            return
        if found.queue.full():
            found.queue.get_nowait()
        found.queue.put_nowait(event)

    def on_transcript(self, conversation: Conversation, entry: TranscriptEntry) -> None:
        event: dict[str, Any] = {
            "type": "transcript",
            "t": round(entry.t, 3),
            "speaker": entry.speaker,
            "text": entry.text,
            "interrupted": entry.interrupted,
        }
        if entry.speaker == "agent" and conversation.latency.turns:
            stamps = conversation.latency.turns[max(conversation.latency.turns)]
            event["turn"] = stamps.turn
            event["latency_ms"] = {k: round(v * 1000) for k, v in stamps.since_speech_end().items()}
        self._put(conversation.call_id, event)

    def on_end(self, conversation: Conversation) -> None:
        self._put(conversation.call_id, {"type": "end"})


class Observers:
    """Several ``ConversationObserver`` as one (the simulator's or a test's, and the feed)."""

    def __init__(self, *observers: ConversationObserver) -> None:
        self._observers = observers

    def on_transcript(self, conversation: Conversation, entry: TranscriptEntry) -> None:
        for observer in self._observers:
            observer.on_transcript(conversation, entry)

    def on_end(self, conversation: Conversation) -> None:
        for observer in self._observers:
            observer.on_end(conversation)
