"""``FailoverSTT``: speech-to-text over a chain of recognisers; when the one in use fails (it
cannot be opened, or its events end in a ``ProviderError`` once its own reconnects gave up),
the next one is opened and the caller's audio since the end of the last final result is replayed
into it, so the sentence under way is still recognised (as Deepgram's own reconnect does).

Times of the events are seconds of caller audio since this stream opened, whichever recogniser
heard them. The breaker (:mod:`app.providers.failover`) is told of each recogniser's failure and
of its first result; a recogniser whose breaker is open is skipped when a call starts. Every
recogniser of a chain takes the same ``sample_rate``. ``capabilities`` are the primary's.

The per-frame path (``send``) appends the frame to the replay buffer (a bounded deque) and hands
it to the recogniser in use: no task, no copy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

from app.clock import Clock
from app.providers.base import (
    PCM,
    SpeechStarted,
    SpeechToText,
    STTEvent,
    STTOptions,
    STTStream,
    Transcript,
    UtteranceEnd,
)
from app.providers.errors import ProviderError
from app.providers.failover import BREAKER_OPEN, Breakers, failure_reason, note, order
from app.providers.streaming import QueuedEvents, owned

__all__ = ["FailoverSTT"]

log = logging.getLogger("app.providers.failover")

MAX_REPLAY_S = 30.0  # replay buffer bound (seconds of caller audio)
CLOSE_TIMEOUT_S = 6.0  # ``end_input`` waits this long for the recogniser's last results


class FailoverSTT:
    """``SpeechToText`` over ``[(name, recogniser), …]``, primary first; see the module."""

    def __init__(self, chain: Sequence[tuple[str, SpeechToText]], breakers: Breakers, clock: Clock) -> None:
        if not chain:
            raise ValueError("a chain needs at least one recogniser")
        rates = {stt.sample_rate for _, stt in chain}
        if len(rates) != 1:
            raise ValueError(f"every recogniser of a chain takes the same sample rate, got {sorted(rates)}")
        self.chain = list(chain)
        primary = chain[0][1]
        self.name, self.sample_rate = primary.name, primary.sample_rate
        self.capabilities = primary.capabilities
        self._breakers, self._clock = breakers, clock

    def stream(self, options: STTOptions) -> AbstractAsyncContextManager[_FailoverStream]:
        return owned(_FailoverStream(self, options), "failover-stt")

    def breaker_order(self) -> tuple[list[int], bool]:
        return order("stt", [name for name, _ in self.chain], self._breakers, self._clock.now())

    def failed(self, name: str) -> None:
        self._breakers.of("stt", name).failed(self._clock.now())

    def succeeded(self, name: str) -> None:
        self._breakers.of("stt", name).succeeded()


class _FailoverStream(QueuedEvents):
    """The worker (``work``) owns each recogniser's stream in turn; ``send`` feeds the one in use."""

    close_timeout = CLOSE_TIMEOUT_S

    def __init__(self, stt: FailoverSTT, options: STTOptions) -> None:
        super().__init__()
        self._stt, self._options = stt, options
        self._rate = stt.sample_rate
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # (first sample, audio, voiced) of each frame since the end of the last final result
        self._kept: deque[tuple[int, PCM, bool | None]] = deque(maxlen=int(MAX_REPLAY_S * 50))
        self._samples = 0  # caller samples handed to ``send`` so far
        self._inner: STTStream | None = None  # the recogniser in use (None while switching)
        self._base = 0  # sample (of this stream) where the recogniser in use started hearing

    async def wait_ready(self) -> None:
        await self._ready

    async def send(self, pcm: PCM, voiced: bool | None = None) -> None:
        if self._closing or self._ended:
            return
        self._kept.append((self._samples, pcm, voiced))
        self._samples += len(pcm)
        inner = self._inner
        if inner is not None:
            await inner.send(pcm, voiced)

    async def _finish_input(self) -> None:
        """End the input of the recogniser in use (its last results then arrive)."""
        inner = self._inner
        if inner is not None:
            await inner.end_input()

    async def work(self) -> None:
        """One recogniser after another until the input ends or none is left. Never raises."""
        stt = self._stt
        tried, skipped = stt.breaker_order()
        names = [name for name, _ in stt.chain]
        if skipped:
            note("stt", names[0], names[tried[0]], BREAKER_OPEN)
        error: ProviderError | None = None
        for position, index in enumerate(tried):
            name, recogniser = stt.chain[index]
            try:
                async with recogniser.stream(self._options) as inner:
                    await self._replay(inner)
                    if not self._ready.done():
                        self._ready.set_result(None)
                    if self._closing:
                        await inner.end_input()
                    await self._pump(name, inner)
                return self._end(None)  # the input ended and the last results are in
            except ProviderError as exc:
                self._inner = None
                stt.failed(name)
                error = exc
                if position + 1 < len(tried):
                    note("stt", name, names[tried[position + 1]], failure_reason(exc))
        assert error is not None
        if not self._ready.done():
            self._ended = True
            return self._ready.set_exception(error)
        self._end(error)

    async def _replay(self, inner: STTStream) -> None:
        """The kept audio into ``inner``, then live audio: ``send`` goes to it only once the
        replay caught up (no await between the last check and the hand-over: order is kept)."""
        kept = self._kept
        self._base = kept[0][0] if kept else self._samples
        sent = 0
        while sent < len(kept):
            _, pcm, voiced = kept[sent]
            await inner.send(pcm, voiced)
            sent += 1
        self._inner = inner

    async def _pump(self, name: str, inner: STTStream) -> None:
        first = True
        async for event in inner.events():
            if first:
                first = False
                self._stt.succeeded(name)
            self._events.put_nowait(self._shifted(event))

    def _shifted(self, event: STTEvent) -> STTEvent:
        """``event`` on this stream's time axis; a final result lets go of the audio it covers."""
        offset = self._base / self._rate
        match event:
            case Transcript(start=start, end=end, is_final=final):
                if final:
                    self._trim(None if end is None else round((end + offset) * self._rate))
                if offset == 0:
                    return event
                return dataclasses.replace(
                    event,
                    start=None if start is None else round(start + offset, 6),
                    end=None if end is None else round(end + offset, 6),
                )
            case UtteranceEnd(last_word_end=t) if t is not None and offset:
                return UtteranceEnd(round(t + offset, 6))
            case SpeechStarted(timestamp=t) if t is not None and offset:
                return SpeechStarted(round(t + offset, 6))
        return event

    def _trim(self, until: int | None) -> None:
        """Forget the frames that end by sample ``until`` (None: all heard so far)."""
        kept = self._kept
        if until is None:
            kept.clear()
            return
        while kept and kept[0][0] + len(kept[0][1]) <= until:
            kept.popleft()
