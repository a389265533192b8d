"""Model names with an announced shutdown date, so a persona can be warned before its calls fail.

A small table, kept by hand from the providers' deprecation pages (OpenAI: developers.openai.com/
api/docs/deprecations, checked 2026-12-03). Names match exactly or as a dated snapshot
(``gpt-4o-mini-2024-07-18`` is ``gpt-4o-mini``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = ["KNOWN_SHUTDOWNS", "Shutdown", "shutdown_of"]


@dataclass(frozen=True, slots=True)
class Shutdown:
    model: str
    on: date  # the first day the provider refuses it
    replacement: str  # what the provider recommends instead


_TABLE = (
    # OpenAI speech endpoint: every model it serves; the named replacement is a Realtime model
    Shutdown("tts-1", date(2027, 1, 6), "another voice (the Realtime API's gpt-realtime-2.1-mini)"),
    Shutdown("tts-1-hd", date(2027, 1, 6), "another voice (the Realtime API's gpt-realtime-2.1-mini)"),
    Shutdown("gpt-4o-mini-tts", date(2027, 1, 6), "another voice (the Realtime API's gpt-realtime-2.1-mini)"),
    # OpenAI chat models
    Shutdown("gpt-5", date(2026, 12, 11), "gpt-6.1-sol"),
    Shutdown("gpt-5-mini", date(2026, 12, 11), "gpt-6.1-terra"),
    Shutdown("gpt-4o", date(2027, 1, 14), "gpt-6-luna"),
    Shutdown("gpt-4o-mini", date(2027, 1, 14), "gpt-6-luna"),
    Shutdown("gpt-4.1", date(2027, 1, 14), "gpt-6-luna"),
    Shutdown("gpt-4.1-mini", date(2027, 1, 14), "gpt-6-luna"),
)
KNOWN_SHUTDOWNS: dict[str, Shutdown] = {s.model: s for s in _TABLE}


def shutdown_of(model: str) -> Shutdown | None:
    """The announced shutdown of ``model`` (or of the family of its dated snapshot), if any."""
    name = model.strip().lower()
    found = KNOWN_SHUTDOWNS.get(name)
    if found is None and len(name) > 11 and name[-11] == "-" and name[-10:].replace("-", "").isdigit():
        found = KNOWN_SHUTDOWNS.get(name[:-11])  # "-2024-07-18"
    return found
