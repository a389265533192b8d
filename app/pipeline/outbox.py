"""What the socket writer sends, in order: control first, then audio.

Control commands (``clearAudio``, ``checkpoint``, ``stop``) never wait behind queued
audio; ``drop_audio`` discards audio that has not been written yet (barge-in), including a
frame still waiting for room in ``put_audio``: it was made before the clear and must not follow it.

A frame may carry a ``mark`` (the agent's tag for "the first frame of a segment"): ``get`` then
returns it as a ``Marked`` so the writer can tell the agent when it took the frame. Unmarked
frames are queued as plain strings: nothing is allocated for them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Marked:
    """A ``playAudio`` message whose writing the agent wants to hear about."""

    message: str
    mark: int


class Outbox:
    """Two FIFOs feeding one writer. Audio is bounded: ``put_audio`` waits for room."""

    def __init__(self, max_audio: int = 50) -> None:
        self._control: deque[str] = deque()
        self._audio: deque[str | Marked] = deque()
        self._max_audio = max_audio
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._epoch = 0  # bumped by each drop_audio

    def put_control(self, message: str) -> None:
        self._control.append(message)
        self._ready.set()

    async def put_audio(self, message: str, mark: int | None = None) -> bool:
        """Queue one ``playAudio`` frame, waiting while the audio queue is full.

        Returns False, and forgets the frame, if ``drop_audio`` ran while it waited: the room
        the drop made is for audio after the clear. A ``mark`` comes back from ``get`` with the
        frame (see ``Marked``).
        """
        epoch = self._epoch
        while len(self._audio) >= self._max_audio:
            self._room.clear()
            await self._room.wait()
            if self._epoch != epoch:
                return False
        self._audio.append(message if mark is None else Marked(message, mark))
        self._ready.set()
        return True

    def put_audio_after_audio(self, message: str) -> None:
        """Queue a control message in audio order (a ``checkpoint`` after its audio)."""
        self._audio.append(message)
        self._ready.set()

    def drop_audio(self) -> int:
        """Forget audio not yet written; returns how many messages were dropped."""
        dropped = len(self._audio)
        self._audio.clear()
        self._epoch += 1
        self._room.set()
        return dropped

    @property
    def audio_backlog(self) -> int:
        return len(self._audio)

    async def get(self) -> str | Marked:
        """The next message to write: any control message before any audio."""
        while True:
            if self._control:
                return self._control.popleft()
            if self._audio:
                item = self._audio.popleft()
                if len(self._audio) < self._max_audio:
                    self._room.set()
                return item
            self._ready.clear()
            await self._ready.wait()
