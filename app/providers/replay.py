"""Buffer-and-replay for live recognisers that reconnect mid-call (Deepgram, Sarvam).

A stream keeps the audio it sent since the end of the last final result; when its socket drops,
the new socket first gets that audio again, so an utterance in progress is still recognised. The
new socket's times start where the replay starts (``ReplayBuffer.snapshot``'s first value): a
recogniser adds it to every time the new socket reports, keeping stream times monotonic.
"""

from __future__ import annotations

__all__ = ["MAX_REPLAY_SECONDS", "ReplayBuffer", "backoff"]

MAX_REPLAY_SECONDS = 30.0  # the most audio kept for a replay


def backoff(failures: int) -> float:
    """Seconds before the reconnect after ``failures`` drops in a row: 0.1, 0.2, 0.4 … ≤ 2."""
    return min(0.1 * 2.0 ** (failures - 1), 2.0)


class ReplayBuffer:
    """The int16 audio bytes sent since sample ``start`` of the stream (at most
    ``MAX_REPLAY_SECONDS``). Appending is a bytearray extend: cheap enough for every frame."""

    def __init__(self, sample_rate: int) -> None:
        self._rate, self._max = sample_rate, 2 * int(MAX_REPLAY_SECONDS * sample_rate)
        self._audio = bytearray()
        self.start = 0  # sample index (since the stream opened) of the first byte kept

    def append(self, data: bytes) -> None:
        self._audio += data
        if len(self._audio) > self._max:
            self._drop((len(self._audio) - self._max) // 2)

    def trim_to(self, seconds: float) -> None:
        """Forget audio before ``seconds`` of stream time (never past what was sent)."""
        self._drop(min(round(seconds * self._rate) - self.start, len(self._audio) // 2))

    def _drop(self, samples: int) -> None:
        if samples > 0:
            del self._audio[: 2 * samples]
            self.start += samples

    @property
    def end(self) -> float:
        """Stream seconds of the end of the audio kept (everything sent so far)."""
        return (self.start + len(self._audio) // 2) / self._rate

    def snapshot(self) -> tuple[float, list[bytes]]:
        """(stream seconds where the kept audio starts, the audio in 0.25 s pieces)."""
        audio, step = self._audio, self._rate // 2  # bytes in 0.25 s
        return self.start / self._rate, [bytes(audio[at : at + step]) for at in range(0, len(audio), step)]
