"""``Keypad``: the caller's phone keys (DTMF), as a pure state machine. Keys and time in,
outcomes out; it never logs a key.

Outside a digit collection, a key takes the floor: the first key of a turn gives ``KeyDown``
(the agent stops talking, as for speech), then the keys become the caller's turn
(``KeysEntered``): a key the persona's menu maps acts at once; other keys gather until
``gap_s`` passes with no key (or ``#``), then reach the model as "The caller pressed 1, 2.".

During a collection (``collect``, the ``collect_digits`` tool), keys only fill it: nothing
barges in. It ends at the terminator, at ``max_digits``, after ``inter_digit_s`` without a key
(the digits so far), or with no key at all ``first_digit_s`` after ``arm`` (``"timeout"``);
the outcome is ``Collected``. Time is seconds on the call's clock; timeouts are checked on
``tick`` (the conversation's tick, 0.1 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

KEYS = frozenset("0123456789*#ABCD")
TIMEOUT = "timeout"  # the collection's result when no key came in time
EMPTY = "empty"  # ... when the terminator came first
Purpose = Literal["menu", "collect", "llm"]


@dataclass(frozen=True, slots=True)
class MenuChoice:
    """What a key of the persona's ``keypad`` map does: say ``reply``, run ``tool`` (its result
    goes to the model, which then goes on), or hand the model ``text`` (an intent's words)."""

    reply: str = ""
    tool: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""  # said on the caller's behalf: "The caller pressed 1: <the intent's example>"

    @property
    def asks_model(self) -> bool:
        return self.tool is not None or bool(self.text)


@dataclass(frozen=True, slots=True)
class DigitRequest:
    """One ``collect_digits``: the caller keys in a number."""

    max_digits: int = 16
    terminator: str = "#"  # "" for none
    inter_digit_s: float = 5.0
    first_digit_s: float = 10.0
    prompt: str = ""  # said before the caller keys (the first-digit timer starts after it)


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """What the call record keeps of keys: when (the first key), which, and what they were for."""

    t: float
    digits: str
    purpose: Purpose


@dataclass(frozen=True, slots=True)
class KeyDown:
    """A key outside a collection: the caller takes the floor now."""

    t: float


@dataclass(frozen=True, slots=True)
class KeysEntered:
    """The keys make the caller's turn: ``text`` for the history, ``menu`` when mapped."""

    t: float
    text: str
    menu: MenuChoice | None = None


@dataclass(frozen=True, slots=True)
class Collected:
    result: str  # the digits, ``TIMEOUT`` or ``EMPTY``


KeyOutcome = KeyDown | KeysEntered | Collected


def pressed_text(keys: str) -> str:
    """How keys reach the model: "The caller pressed 1." / "The caller pressed 4, 2."."""
    return "The caller pressed " + ", ".join(keys) + "."


@dataclass(slots=True)
class _Collection:
    request: DigitRequest
    started: float
    armed: float | None = None  # the first-digit timer's start (None: the prompt still plays)
    digits: str = ""
    first_at: float | None = None
    last_at: float | None = None


class Keypad:
    def __init__(self, menu: Mapping[str, MenuChoice] | None = None, gap_s: float = 1.0) -> None:
        self.menu = dict(menu or {})
        self.gap_s = gap_s
        self.entries: list[KeyEntry] = []  # every entry of the call, in order
        self._pending = ""  # unmapped keys gathering into one turn
        self._pending_at = 0.0  # the first of them
        self._last_at = 0.0
        self._collection: _Collection | None = None

    @property
    def collecting(self) -> bool:
        return self._collection is not None

    def press(self, t: float, key: str) -> list[KeyOutcome]:
        """One key (``KEYS``; anything else is ignored)."""
        key = key.upper()
        if key not in KEYS:
            return []
        collection = self._collection
        if collection is not None:
            return self._collect_key(collection, t, key)
        if not self._pending and key in self.menu:
            self.entries.append(KeyEntry(t, key, "menu"))
            choice, text = self.menu[key], pressed_text(key)
            said = f"{text[:-1]}: {choice.text}" if choice.text else text
            return [KeyDown(t), KeysEntered(t, said, choice)]
        out: list[KeyOutcome] = [] if self._pending else [KeyDown(t)]
        if not self._pending:
            self._pending_at = t
        self._last_at = t
        if key == "#" and self._pending:  # "#" ends what was keyed
            return [*out, *self._flush(t)]
        self._pending += key
        return out

    def tick(self, t: float) -> list[KeyOutcome]:
        collection = self._collection
        if collection is not None:
            return self._check_timeouts(collection, t)
        if self._pending and t - self._last_at >= self.gap_s - 1e-9:
            return self._flush(t)
        return []

    def collect(self, t: float, request: DigitRequest) -> list[KeyOutcome]:
        """Start a collection; keys gathering for a turn become its first digits."""
        self._collection = collection = _Collection(request, t)
        pending, self._pending = self._pending, ""
        out: list[KeyOutcome] = []
        for key in pending:
            out += self._collect_key(collection, self._last_at, key)
        return out

    def arm(self, t: float) -> list[KeyOutcome]:
        """The prompt has been heard: the first-digit timer starts."""
        if self._collection is not None and self._collection.armed is None:
            self._collection.armed = t
        return []

    def stop_collecting(self, t: float) -> None:
        """The collection is abandoned (its reply cancelled, the call ended): keys so far kept."""
        if self._collection is not None:
            self._end_collection(self._collection)

    def _flush(self, t: float) -> list[KeyOutcome]:
        keys, self._pending = self._pending, ""
        self.entries.append(KeyEntry(self._pending_at, keys, "llm"))
        return [KeysEntered(t, pressed_text(keys))]

    def _collect_key(self, collection: _Collection, t: float, key: str) -> list[KeyOutcome]:
        request = collection.request
        if request.terminator and key == request.terminator:
            return self._finish(collection, collection.digits or EMPTY)
        if collection.first_at is None:
            collection.first_at = t
        collection.digits += key
        collection.last_at = t
        if len(collection.digits) >= request.max_digits:
            return self._finish(collection, collection.digits)
        return []

    def _check_timeouts(self, collection: _Collection, t: float) -> list[KeyOutcome]:
        request = collection.request
        if collection.last_at is not None:
            since = max(collection.last_at, collection.armed or collection.last_at)
            if collection.armed is not None and t - since >= request.inter_digit_s - 1e-9:
                return self._finish(collection, collection.digits)
        elif collection.armed is not None and t - collection.armed >= request.first_digit_s - 1e-9:
            return self._finish(collection, TIMEOUT)
        return []

    def _finish(self, collection: _Collection, result: str) -> list[KeyOutcome]:
        self._end_collection(collection)
        return [Collected(result)]

    def _end_collection(self, collection: _Collection) -> None:
        self._collection = None
        if collection.digits:
            at = collection.first_at if collection.first_at is not None else collection.started
            self.entries.append(KeyEntry(at, collection.digits, "collect"))
