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
from collections.abc import AsyncIterator, Awaitable
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
