"""``owned``: an STT stream's worker task, owned by a ``TaskGroup`` for one ``async with`` block.

Each recogniser's ``stream(options)`` is ``owned(its stream, name)``: entering starts the worker
and waits until the stream takes audio; leaving ends the input (the last results arrive, bounded)
and stops the worker. An exception from the block propagates as itself, never wrapped in an
``ExceptionGroup``; cancelling the block's task cancels the worker too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol, TypeVar


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
