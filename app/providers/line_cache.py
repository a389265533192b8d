"""``LineCache``: fixed lines rendered once per process and reused by every call.

A persona's fixed lines (greeting, reprompt, idle goodbye, closing line, apology, tool fillers)
are the same audio on every call. They are rendered once, by the call that first needs them or
at start-up, to the ``playAudio`` frames of one output format, and kept in memory; a later call
gets the frames at once, with no synthesis (no CPU for an embedded voice, no request, cost or
first-audio wait for a cloud one).

- **Key**: (the sentence, the synthesizer, its ``TTSOptions``, the output ``AudioFormat``). Two
  personas that speak the same sentence with the same voice share one entry; another voice,
  voice option or output format is another entry.
- **Single flight**: while a line is being rendered, every other call that needs it waits for
  that one rendering (100 calls answered at once: one synthesis, not 100). The call that renders
  it plays its frames as they come; the waiters get them all when it is done. If the rendering
  call is cancelled (its caller cut in, hung up), the rendering is abandoned and one of the
  waiters renders it instead.
- **Failures are not cached**: a ``ProviderError`` reaches the rendering call and every waiter;
  the next request renders the line again.
- **Bounded**: at most ``max_bytes`` of frames, least recently used first out; a line larger
  than the whole bound is played but not kept.

An embedded voice with random prosody (Piper's ``voice_variation``) says a cached line the same
way on every call: the variation is given up for fixed lines.

The frames go through the same playout as synthesized speech (the caller's ``on_frames``), so
checkpoints, barge-in and the heard-text accounting do not know whether a line was cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.audio.formats import AudioFormat
from app.audio.frames import OutboundEncoder
from app.providers.base import SpeechSynthesizer, TTSOptions
from app.providers.errors import ProviderError

log = logging.getLogger("app.lines")

DEFAULT_MAX_BYTES = 32 * 1024 * 1024  # ~1 h of 8 kHz mu-law, ~11 min of 24 kHz L16

#: receives a rendering's frames as they are made (all at once for a cached line)
FrameSink = Callable[[list[bytes]], None]


async def render_frames(
    tts: SpeechSynthesizer, text: str, options: TTSOptions, fmt: AudioFormat, on_frames: FrameSink
) -> None:
    """Synthesize ``text`` and hand its 20 ms ``fmt`` frames to ``on_frames`` as they are made
    (once per non-empty audio chunk, the list possibly empty; the encoder's tail last).
    ``ProviderError`` from the voice propagates; cancelling stops the synthesis."""
    encoder = OutboundEncoder(tts.sample_rate, fmt)
    async with contextlib.aclosing(tts.synthesize(text, options)) as chunks:
        async for chunk in chunks:
            if len(chunk):
                on_frames(encoder.push(chunk))
                # let the playout send what just arrived before synthesising on: a voice that
                # never waits (an embedded engine) must not delay the first frame
                await asyncio.sleep(0)
    on_frames(encoder.flush())


@dataclass(frozen=True, slots=True)
class LineKey:
    text: str
    voice: str  # the synthesizer's name (for people; ``voice_id`` tells two of one name apart)
    voice_id: int  # id() of the synthesizer; the entry keeps it alive, so the id is not reused
    options: TTSOptions
    fmt: AudioFormat


@dataclass(slots=True)
class _Line:
    frames: tuple[bytes, ...]
    voice: SpeechSynthesizer  # keeps the synthesizer (and so its id) alive while cached
    size: int


@dataclass(slots=True, eq=False)
class _Flight:
    """A rendering under way; ``done`` is set when it ended, however it ended."""

    done: asyncio.Event = field(default_factory=asyncio.Event)
    frames: tuple[bytes, ...] | None = None  # set on success
    error: ProviderError | None = None  # set on a provider failure


class LineCache:
    """Rendered fixed lines, shared by the calls of one process (one event loop).

    ``renders`` counts renderings started (a retry after a failure counts again), ``hits`` the
    lines served from the cache or from another call's rendering."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.bytes = 0
        self.renders = 0
        self.hits = 0
        self._lines: OrderedDict[LineKey, _Line] = OrderedDict()
        self._flights: dict[LineKey, _Flight] = {}

    def __len__(self) -> int:
        return len(self._lines)

    @staticmethod
    def key(text: str, tts: SpeechSynthesizer, options: TTSOptions, fmt: AudioFormat) -> LineKey:
        return LineKey(text, tts.name, id(tts), options, fmt)

    def cached(self, text: str, tts: SpeechSynthesizer, options: TTSOptions, fmt: AudioFormat) -> bool:
        return self.key(text, tts, options, fmt) in self._lines

    async def frames(
        self,
        text: str,
        tts: SpeechSynthesizer,
        options: TTSOptions,
        fmt: AudioFormat,
        on_frames: FrameSink | None = None,
        on_render: Callable[[str], None] | None = None,
    ) -> Sequence[bytes]:
        """``text`` spoken by ``tts`` with ``options``, as ``fmt`` frames: cached, awaited from
        the rendering under way, or rendered now. ``on_frames`` gets them as they become
        available to this caller (in pieces when this call renders, else all at once);
        ``on_render`` gets the text when this caller renders it (a request to the voice).

        Raises ``ProviderError`` when the voice failed (this call's rendering, or the one it
        waited for); nothing is cached then. Cancelling a waiter leaves the rendering alone;
        cancelling the renderer abandons it (a waiter takes over)."""
        key = self.key(text, tts, options, fmt)
        while True:
            line = self._lines.get(key)
            if line is not None:
                self._lines.move_to_end(key)
                self.hits += 1
                return _deliver(line.frames, on_frames)
            flight = self._flights.get(key)
            if flight is None:
                break
            await flight.done.wait()
            if flight.frames is not None:
                self.hits += 1
                return _deliver(flight.frames, on_frames)
            if flight.error is not None:
                exc = flight.error
                failed = "rendering a fixed line failed"
                raise ProviderError(
                    exc.provider, failed, retryable=exc.retryable, retry_after=exc.retry_after
                ) from exc
            # abandoned (its renderer was cancelled): look again, and render it if nobody does
        if on_render is not None:
            on_render(text)
        return await self._render(key, tts, options, on_frames)

    async def _render(
        self, key: LineKey, tts: SpeechSynthesizer, options: TTSOptions, on_frames: FrameSink | None
    ) -> tuple[bytes, ...]:
        flight = self._flights[key] = _Flight()
        self.renders += 1
        made: list[bytes] = []

        def collect(frames: list[bytes]) -> None:
            made.extend(frames)
            if on_frames is not None:
                on_frames(frames)

        try:
            await render_frames(tts, key.text, options, key.fmt, collect)
        except ProviderError as exc:
            flight.error = exc
            raise
        else:
            flight.frames = tuple(made)
            self._keep(key, flight.frames, tts)
        finally:
            del self._flights[key]
            flight.done.set()  # waiters wake: frames, the error, or neither (abandoned)
        return flight.frames

    def _keep(self, key: LineKey, frames: tuple[bytes, ...], tts: SpeechSynthesizer) -> None:
        size = sum(len(f) for f in frames)
        if size > self.max_bytes:
            log.debug("fixed line larger than the cache: not kept", extra={"voice": key.voice, "bytes": size})
            return
        self._lines[key] = _Line(frames, tts, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, old = self._lines.popitem(last=False)
            self.bytes -= old.size


def _deliver(frames: tuple[bytes, ...], on_frames: FrameSink | None) -> tuple[bytes, ...]:
    if on_frames is not None and frames:
        on_frames(list(frames))
    return frames
