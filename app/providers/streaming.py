"""``owned``: an STT stream's worker task, owned by a ``TaskGroup`` for one ``async with`` block;
``FailedStream``: the stand-in for a recogniser that could not be opened.

Each recogniser's ``stream(options)`` is ``owned(its stream, name)``: entering starts the worker
and waits until the stream takes audio; leaving ends the input (the last results arrive, bounded)
and stops the worker. An exception from the block propagates as itself, never wrapped in an
``ExceptionGroup``; cancelling the block's task cancels the worker too.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Protocol, TypeVar

from app.clock import Clock
from app.providers.base import PCM, STTEvent
from app.providers.errors import ProviderError


class WorkerStream(Protocol):
    task: asyncio.Task[None] | None  # the worker, set by ``owned`` before ``wait_ready``

    async def work(self) -> None:
        """The stream's worker. Never raises: a failure ends the stream's events instead."""
        ...

    async def wait_ready(self) -> None:
        """Return once the stream takes audio; raise ``ProviderError`` if it never will."""
        ...

    async def end_input(self) -> None:
        """Finish the input, wait (bounded) for the last results, stop the worker. Idempotent."""
        ...


W = TypeVar("W", bound=WorkerStream)


@contextlib.asynccontextmanager
async def owned(stream: W, name: str) -> AsyncIterator[W]:
    failure: BaseException | None = None
    async with asyncio.TaskGroup() as tg:
        stream.task = tg.create_task(stream.work(), name=name)
        try:
            await stream.wait_ready()
            yield stream
        except BaseException as exc:  # re-raised below, once the worker is stopped
            failure = exc
        finally:
            await stream.end_input()
    if failure is not None:
        raise failure


class QueuedEvents:
    """The event outlet of a stream whose worker task (``task``) queues its events: ``events``
    reads them, ``end`` queues the last item (None: the end; a ``ProviderError``: the failure)
    once, and ``end_input`` is the bounded close every stream shares. A subclass sets
    ``close_timeout`` and says in ``_finish_input`` how its input ends."""

    close_timeout: float  # seconds ``end_input`` waits for the worker

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[STTEvent | ProviderError | None] = asyncio.Queue()
        self._closing = False  # ``end_input`` was called: ``send`` ignores audio
        self._ended = False  # the worker queued its last event

    async def events(self) -> AsyncIterator[STTEvent]:
        """Events in arrival order. Ends after ``end_input`` (once the final results are in); raises
        ``ProviderError`` when the stream fails. Unread events queue up without bound."""
        while True:
            item = await self._events.get()
            if item is None or isinstance(item, ProviderError):
                self._events.put_nowait(item)  # later readers see the end too
                if item is not None:
                    raise item
                return
            yield item

    async def end_input(self) -> None:
        """End the input (``_finish_input``), wait (≤ ``close_timeout`` s) for the last results,
        stop the worker; ``events`` then ends. Idempotent."""
        if self._closing or self.task is None:
            return
        self._closing = True
        try:
            await self._finish_input()
            await asyncio.wait({self.task}, timeout=self.close_timeout)
        finally:
            self.task.cancel()
            self._end(None)

    async def _finish_input(self) -> None:
        """Tell the worker the input is over (called once, by ``end_input``)."""

    def _end(self, item: ProviderError | None) -> None:
        if not self._ended:
            self._ended = True
            self._events.put_nowait(item)


T = TypeVar("T")


async def within(clock: Clock, seconds: float, awaitable: Awaitable[T]) -> T:
    """``awaitable``'s result (a remote service's answer), or ``TimeoutError`` once ``seconds``
    passed on ``clock`` (then it is cancelled). Its own exception propagates as itself. The wait
    holds the clock (``Clock.hold``): virtual time does not jump ahead while the network answers.
    Two short-lived tasks: not for a per-frame path."""
    result: list[T] = []
    failure: list[Exception] = []

    async def guarded() -> None:
        try:
            result.append(await awaitable)
        except Exception as exc:  # handed to the caller below, unwrapped
            failure.append(exc)

    with clock.hold():
        async with asyncio.TaskGroup() as tg:
            work = tg.create_task(guarded())
            timer = tg.create_task(clock.sleep(seconds))
            await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
            work.cancel()
            timer.cancel()
    if failure:
        raise failure[0]
    if not result:
        raise TimeoutError(f"no answer within {seconds:g} s")
    return result[0]


class FailedStream:
    """A recogniser that could not be opened: no audio is heard, and ``events`` raises ``error``
    (so the call ends the way a recogniser that fails mid-call ends it)."""

    def __init__(self, error: ProviderError) -> None:
        self._error = error

    async def send(self, pcm: PCM, voiced: bool | None = None) -> None:
        pass

    async def events(self) -> AsyncIterator[STTEvent]:
        raise self._error
        yield  # an async generator

    async def end_input(self) -> None:
        pass


@contextlib.contextmanager
def legacy_websockets_imports() -> Iterator[None]:
    """Import an SDK's socket modules inside this: deepgram-sdk 7.x and sarvamai 0.1.x import
    websockets' deprecated legacy client and ``InvalidStatusCode`` (websockets >= 14 warns).
    Loaded once at import time with exactly those two warnings silenced; the SDKs would import
    them lazily, on first use, where nothing filters."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"websockets\.legacy is deprecated", DeprecationWarning)
        warnings.filterwarnings("ignore", r"websockets\.exceptions\.InvalidStatusCode", DeprecationWarning)
        yield
