"""The phone's side of ``playAudio``: a queue played out at real-time rate (pure, no I/O).

Vobiz semantics (PROTOCOL.md §3.3, §4): a ``checkpoint`` is acknowledged with
``playedStream`` only once every sample queued before it has played; ``clearAudio``
drops everything not yet played and voids the checkpoints still waiting.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

PCM = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class _Checkpoint:
    name: str


@dataclass(frozen=True, slots=True)
class Played:
    """One tick of playout: the samples heard and the checkpoints completed by them."""

    pcm: PCM  # exactly the tick's length; silence where the queue ran dry
    audible: int  # how many of those samples came from the queue
    acked: tuple[str, ...]
    # the queue ran dry mid-segment (audio played since the last checkpoint or clear, and the
    # tick could not be filled): an underrun, heard as a gap in the agent's speech
    starved: bool = False


class PhonePlayout:
    """Queued agent audio (at the recording rate) and checkpoints, in arrival order."""

    def __init__(self) -> None:
        self._items: deque[PCM | _Checkpoint] = deque()
        self._offset = 0  # samples of the head chunk already played
        self.queued_samples = 0
        self._open = False  # audio has played since the last checkpoint or clear

    def push_audio(self, pcm: PCM) -> None:
        if len(pcm):
            self._items.append(pcm)
            self.queued_samples += len(pcm)

    def push_checkpoint(self, name: str) -> None:
        self._items.append(_Checkpoint(name))

    def clear(self) -> tuple[int, tuple[str, ...]]:
        """Drop unplayed audio; returns (samples dropped, checkpoints voided)."""
        voided = tuple(i.name for i in self._items if isinstance(i, _Checkpoint))
        dropped = self.queued_samples
        self._items.clear()
        self._offset = 0
        self.queued_samples = 0
        self._open = False
        return dropped, voided

    def tick(self, samples: int) -> Played:
        """Play ``samples`` samples. Checkpoints reached during the tick are acknowledged."""
        out = np.zeros(samples, np.int16)
        filled = 0
        acked: list[str] = []
        while self._items:
            head = self._items[0]
            if isinstance(head, _Checkpoint):
                acked.append(head.name)
                self._items.popleft()
                self._open = False
                continue
            if filled == samples:
                break
            take = min(samples - filled, len(head) - self._offset)
            out[filled : filled + take] = head[self._offset : self._offset + take]
            filled += take
            self._open = True
            self._offset += take
            self.queued_samples -= take
            if self._offset == len(head):
                self._items.popleft()
                self._offset = 0
        return Played(out, filled, tuple(acked), self._open and filled < samples)


def mix(tracks: list[PCM]) -> PCM:
    """The sum of equally long tracks, clipped to int16 (several streams on one call leg)."""
    if len(tracks) == 1:
        return tracks[0]
    total = np.zeros(len(tracks[0]), np.int32)
    for track in tracks:
        total += track
    mixed: PCM = np.clip(total, -32768, 32767).astype(np.int16)
    return mixed
