"""Failover chains: a stage (language model, voice) that fails mid-call goes on with the next
provider of its chain, and a circuit breaker shared by every call sends new calls straight to
the fallback while a provider keeps failing. Speech-to-text: :mod:`app.providers.failover_stt`.

- **What fails over**: a ``ProviderError`` (connection failure, timeout, HTTP 5xx, a refused
  key: whatever the provider could not do) and, for a language model, no first event within
  ``FIRST_EVENT_S`` (a server that accepted the request and went silent).
- **Within a call the switch sticks**: once a stage moved to its fallback, the call's later
  requests go there first (a caller must not wait for the dead provider on every turn).
- **Nothing heard is lost, nothing is said twice by design**: a language model that failed
  before its first event is replaced silently; one that failed after its first words cannot be
  continued by another model, so the reply ends there (the responder's one short apology) and
  the next turn is answered by the fallback. A voice that fails is replaced for the sentence
  (the fallback says it from its start: the caller may hear its first words again) and the rest
  of the call; its audio is resampled to the primary's rate, so the call's encoder never changes.
- **Breaker** (:class:`CircuitBreaker`): ``failures`` failures of one provider within
  ``cooldown_s`` open it: for ``cooldown_s`` new requests skip it (a ``breaker-open`` failover in
  the call's record); then one request tries it (half-open): success closes it, failure opens it
  again. Shared by the process (``Breakers``), pure (time comes in as an argument).
- **Record**: each switch is a :class:`Failover` in the call's :class:`CallFailovers`, found
  through the context variable ``CALL_FAILOVERS`` (set by the call's conversation; tasks it
  starts inherit it): a process-wide voice knows which call it is speaking for.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

from app.audio.resample import StreamResampler
from app.clock import Clock
from app.providers.base import (
    PCM,
    LanguageModel,
    LLMEvent,
    LLMOptions,
    Message,
    SpeechSynthesizer,
    ToolSpec,
    TTSOptions,
)
from app.providers.errors import ProviderError, TTSError
from app.providers.streaming import within

__all__ = [
    "CALL_FAILOVERS",
    "FIRST_EVENT_S",
    "Breakers",
    "CallFailovers",
    "CircuitBreaker",
    "Failover",
    "FailoverLLM",
    "FailoverTTS",
    "NamedModel",
    "failure_reason",
]

log = logging.getLogger("app.providers.failover")

#: a language model's first event must come within this long, or the next one is asked (the
#: responder's own deadline, 4 s, is longer: the switch happens before it gives up)
FIRST_EVENT_S = 3.0
BREAKER_OPEN = "breaker-open"


# ── the breaker ──────────────────────────────────────────────────────────────────────────────


class CircuitBreaker:
    """Closed → open after ``failures`` failures within ``window_s`` → half-open after
    ``cooldown_s`` (one trial at a time; a trial that never reports frees its slot after another
    ``cooldown_s``) → closed on a success, open again on a failure. Times are clock seconds."""

    def __init__(self, failures: int, cooldown_s: float, window_s: float | None = None) -> None:
        if failures < 1 or cooldown_s <= 0:
            raise ValueError("failures must be >= 1 and cooldown_s > 0")
        self.failures, self.cooldown_s = failures, cooldown_s
        self.window_s = window_s if window_s is not None else cooldown_s
        self._recent: deque[float] = deque()
        self._open_until: float | None = None  # None: closed
        self._trial_at: float | None = None  # a half-open trial was let through at this time

    def state(self, now: float) -> str:
        """``closed``, ``open`` or ``half-open`` at ``now``."""
        if self._open_until is None:
            return "closed"
        return "open" if now < self._open_until else "half-open"

    def would_allow(self, now: float) -> bool:
        """``allows`` without taking the half-open trial."""
        state = self.state(now)
        if state != "half-open":
            return state == "closed"
        return self._trial_at is None or now >= self._trial_at + self.cooldown_s  # no trial under way

    def allows(self, now: float) -> bool:
        """May a request go to this provider now? In half-open, True for one trial at a time
        (this request is it)."""
        if not self.would_allow(now):
            return False
        if self.state(now) == "half-open":
            self._trial_at = now
        return True

    def failed(self, now: float) -> None:
        if self._open_until is not None and now >= self._open_until:  # the half-open trial failed
            self._trip(now)
            return
        recent = self._recent
        recent.append(now)
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        if len(recent) >= self.failures:
            self._trip(now)

    def succeeded(self) -> None:
        self._recent.clear()
        self._open_until = self._trial_at = None

    def _trip(self, now: float) -> None:
        self._recent.clear()
        self._open_until, self._trial_at = now + self.cooldown_s, None


class Breakers:
    """The process's breakers, one per (stage, provider name)."""

    def __init__(self, failures: int = 3, cooldown_s: float = 30.0) -> None:
        self.failures, self.cooldown_s = failures, cooldown_s
        self._by: dict[tuple[str, str], CircuitBreaker] = {}

    def of(self, stage: str, name: str) -> CircuitBreaker:
        found = self._by.get((stage, name))
        if found is None:
            found = self._by[(stage, name)] = CircuitBreaker(self.failures, self.cooldown_s)
        return found


# ── one call's failovers ─────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Failover:
    """A stage switched provider at clock time ``t`` (``from_`` → ``to``), for ``reason``."""

    t: float
    stage: str  # "stt" | "tts" | "llm"
    from_: str
    to: str
    reason: str


@dataclass(slots=True)
class CallFailovers:
    """A call's failovers, in order, and the provider each switched stage now starts with."""

    clock: Clock | None = None  # the call's (None until ``enter``: times are then 0)
    events: list[Failover] = field(default_factory=list)
    active: dict[str, str] = field(default_factory=dict)  # stage → provider name

    def enter(self, clock: Clock) -> CallFailovers:
        """The call starts on ``clock``: the current task's context (and so every task it starts
        from now on) writes its failovers here."""
        self.clock = clock
        CALL_FAILOVERS.set(self)
        return self

    def switched(self, stage: str, from_: str, to: str, reason: str) -> None:
        t = self.clock.now() if self.clock is not None else 0.0
        self.events.append(Failover(t, stage, from_, to, reason))
        self.active[stage] = to
        log.warning("%s failed over: %s -> %s (%s)", stage, from_, to, reason)


CALL_FAILOVERS: contextvars.ContextVar[CallFailovers | None] = contextvars.ContextVar(
    "call_failovers", default=None
)


def failure_reason(exc: BaseException) -> str:
    """A short reason for the record: the provider error's message without the provider's name
    (these messages hold no key, text or number), or the exception's type."""
    if isinstance(exc, ProviderError):
        return str(exc).removeprefix(f"{exc.provider}: ")[:120]
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__


def order(stage: str, names: Sequence[str], breakers: Breakers, now: float) -> tuple[list[int], bool]:
    """The chain's indices in the order to try them, for a new request: those whose breaker
    lets a request through first (chain order), then the others (a last resort: every one is
    open). With the call's sticky provider first. Second value: the first choice was skipped
    because its breaker is open."""
    calls = CALL_FAILOVERS.get()
    start = 0
    if calls is not None and stage in calls.active and calls.active[stage] in names:
        start = names.index(calls.active[stage])
    ranked = list(range(start, len(names)))
    allowed = [i for i in ranked if breakers.of(stage, names[i]).would_allow(now)]
    rest = [i for i in ranked if i not in allowed]
    tried = allowed + rest
    if allowed:
        breakers.of(stage, names[allowed[0]]).allows(now)  # the first one asked: it may be the trial
    return tried, bool(tried) and tried[0] != start


def note(stage: str, from_: str, to: str, reason: str) -> None:
    """Write a switch into the current call's record (none at start-up: logged only)."""
    calls = CALL_FAILOVERS.get()
    if calls is not None:
        calls.switched(stage, from_, to, reason)
    else:
        log.warning("%s failed over: %s -> %s (%s)", stage, from_, to, reason)


# ── language model ───────────────────────────────────────────────────────────────────────────


class NamedModel:
    """A language model under another name and, when ``model`` is set, always that model (the
    secondary server's own, not the persona's ``llm_model``)."""

    def __init__(self, inner: LanguageModel, name: str, model: str = "") -> None:
        self.inner, self.name, self.model = inner, name, model

    def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], options: LLMOptions
    ) -> AsyncGenerator[LLMEvent, None]:
        if self.model:
            options = LLMOptions(
                model=self.model, temperature=options.temperature, max_tokens=options.max_tokens
            )
        return self.inner.stream(messages, tools, options)


class FailoverLLM:
    """``LanguageModel`` over a chain ``[(name, model), …]`` (primary first); see the module."""

    def __init__(
        self,
        chain: Sequence[tuple[str, LanguageModel]],
        breakers: Breakers,
        clock: Clock,
        first_event_s: float = FIRST_EVENT_S,
    ) -> None:
        if not chain:
            raise ValueError("a chain needs at least one provider")
        self.chain = list(chain)
        self.name = chain[0][1].name
        self._breakers, self._clock, self._first_event_s = breakers, clock, first_event_s

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], options: LLMOptions
    ) -> AsyncGenerator[LLMEvent, None]:
        names = [name for name, _ in self.chain]
        tried, skipped = order("llm", names, self._breakers, self._clock.now())
        if skipped:
            note("llm", names[0], names[tried[0]], BREAKER_OPEN)
        for position, index in enumerate(tried):
            name, llm = self.chain[index]
            after = names[tried[position + 1]] if position + 1 < len(tried) else None
            started = False
            try:
                async with contextlib.aclosing(llm.stream(messages, tools, options)) as events:
                    first = await self._first(events, last=after is None)
                    while first is not None:
                        started = True
                        yield first
                        first = await anext(events, None)
                self._breakers.of("llm", name).succeeded()
                return
            except (ProviderError, TimeoutError) as exc:
                self._breakers.of("llm", name).failed(self._clock.now())
                if after is not None:
                    note("llm", name, after, failure_reason(exc))
                if after is None or started:
                    # the last one failed; or words went out, which another model cannot continue:
                    # the reply ends here (the responder asks once more, of the fallback now, if
                    # none of it was spoken yet)
                    if isinstance(exc, ProviderError):
                        raise
                    silent = f"no first event within {self._first_event_s:g} s"
                    raise ProviderError(name, silent, retryable=True) from exc

    async def _first(self, events: AsyncGenerator[LLMEvent, None], *, last: bool) -> LLMEvent | None:
        if last:  # nothing to switch to: the responder's own deadline applies
            return await anext(events, None)
        return await within(self._clock, self._first_event_s, anext(events, None))


# ── voice ────────────────────────────────────────────────────────────────────────────────────


class FailoverTTS:
    """``SpeechSynthesizer`` over a chain ``[(name, voice), …]`` (primary first), at the
    primary's ``sample_rate``; see the module. One per chain in the process (its identity keys
    the fixed lines' cache). A fallback voice gets the persona's speed but its own default voice
    (the persona's ``tts_voice`` names a voice of the primary)."""

    def __init__(
        self, chain: Sequence[tuple[str, SpeechSynthesizer]], breakers: Breakers, clock: Clock
    ) -> None:
        if not chain:
            raise ValueError("a chain needs at least one provider")
        self.chain = list(chain)
        self.name = chain[0][1].name
        self.sample_rate = chain[0][1].sample_rate
        self._breakers, self._clock = breakers, clock

    async def synthesize(self, text: str, options: TTSOptions) -> AsyncGenerator[PCM, None]:
        names = [name for name, _ in self.chain]
        tried, skipped = order("tts", names, self._breakers, self._clock.now())
        if skipped:
            note("tts", names[0], names[tried[0]], BREAKER_OPEN)
        for position, index in enumerate(tried):
            name, voice = self.chain[index]
            after = names[tried[position + 1]] if position + 1 < len(tried) else None
            own = options if index == 0 else TTSOptions(speed=options.speed)
            rate = voice.sample_rate
            resampler = None if rate == self.sample_rate else StreamResampler(rate, self.sample_rate)
            try:
                async with contextlib.aclosing(voice.synthesize(text, own)) as chunks:
                    async for chunk in chunks:
                        out = resampler.process(chunk) if resampler is not None else chunk
                        if len(out):
                            yield out
                self._breakers.of("tts", name).succeeded()
                return
            except (ProviderError, TTSError) as exc:
                self._breakers.of("tts", name).failed(self._clock.now())
                if after is None:
                    if isinstance(exc, ProviderError):
                        raise
                    raise ProviderError(name, failure_reason(exc), retryable=False) from exc
                note("tts", name, after, failure_reason(exc))
