"""A stereo 16-bit WAV written as a call goes, never held whole in memory.

Each channel's samples are placed by position (samples from the writer's start) on one axis, so
the two stay aligned whatever order they arrive in. A fixed window of ``window_s`` seconds past
the last written position is kept in memory (zeros where nothing was put: silence); positions
the owner declares settled (``settle``) are appended to the file once ``flush_s`` of them have
gathered, in one small write. Memory is the window, whatever the call's length.

The header's sizes are rewritten after every write, so a file whose process died is a valid WAV
up to its last write (at most ``flush_s`` of audio is lost; any trailing bytes past the header's
size are ignored by readers). Synchronous and sans-clock: the owner says where samples go.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

HEADER_BYTES = 44
CHANNELS = 2
SAMPLE_BYTES = 2
_FRAME_BYTES = CHANNELS * SAMPLE_BYTES

PCM = npt.NDArray[np.int16]


def wav_header(frames: int, rate: int, channels: int = CHANNELS) -> bytes:
    """The 44-byte header of 16-bit PCM WAV holding ``frames`` frames of ``channels`` channels."""
    data = frames * channels * SAMPLE_BYTES
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + data, b"WAVE", b"fmt ", 16, 1, channels, rate,
        rate * channels * SAMPLE_BYTES, channels * SAMPLE_BYTES, 16, b"data", data,
    )  # fmt: skip


def existing_frames(file: BinaryIO, rate: int) -> int | None:
    """Frames in a WAV this module wrote at ``rate`` (its header's count, bounded by the file's
    size); None when the file is not one (another format, another rate, too short)."""
    file.seek(0)
    head = file.read(HEADER_BYTES)
    if len(head) < HEADER_BYTES:
        return None
    riff, _, wave, fmt, _, pcm, channels, found_rate, _, _, bits, data, size = struct.unpack(
        "<4sI4s4sIHHIIHH4sI", head
    )
    if (riff, wave, fmt, data, pcm, channels, bits) != (b"RIFF", b"WAVE", b"fmt ", b"data", 1, CHANNELS, 16):
        return None
    if found_rate != rate:
        return None
    on_disk = (file.seek(0, os.SEEK_END) - HEADER_BYTES) // _FRAME_BYTES
    return min(int(size) // _FRAME_BYTES, on_disk)


class StereoWavWriter:
    """Two int16 channels (0: left, 1: right) into ``file``, a seekable binary file opened for
    writing. ``start_frames``: frames already in the file (a call continued on a new socket);
    positions given to ``put`` count from there."""

    def __init__(
        self,
        file: BinaryIO,
        rate: int,
        *,
        window_s: float = 4.0,
        flush_s: float = 0.5,
        start_frames: int = 0,
    ) -> None:
        if not 0 < flush_s < window_s:
            raise ValueError(f"flush_s must be in (0, window_s), got {flush_s} and {window_s}")
        self.rate = rate
        self._file = file
        self._cap = int(window_s * rate)
        self._flush = max(1, int(flush_s * rate))
        self._window = np.zeros((self._cap, CHANNELS), dtype="<i2")  # the only audio held
        self._origin = start_frames  # frames in the file before position 0
        self._base = 0  # position of the window's first frame: every earlier one is on disk
        self._end = 0  # one past the last position put (or written)
        self.late_samples = 0  # samples put before the window (already on disk): dropped
        self.writes = 0
        file.seek(HEADER_BYTES + start_frames * _FRAME_BYTES)
        file.truncate()  # a tail past the header's count (a crash mid-write) is dropped
        self._write_header()

    @property
    def buffered_bytes(self) -> int:
        """Bytes of audio held in memory: the window, the same for a minute or an hour."""
        return self._window.nbytes

    @property
    def frames(self) -> int:
        """Frames the file holds once closed (``start_frames`` included)."""
        return self._origin + self._end

    @property
    def written(self) -> int:
        """Positions already on disk (``put`` before this is dropped)."""
        return self._base

    def put(self, channel: int, pos: int, pcm: PCM) -> None:
        """Place ``pcm`` on ``channel`` from position ``pos``, over what was there. A part before
        the window (already written) is dropped; past the window, the oldest part is written out
        to make room, settled or not."""
        if pos < self._base:
            skip = self._base - pos
            self.late_samples += min(skip, len(pcm))
            pcm, pos = pcm[skip:], self._base
        n = len(pcm)
        if n == 0:
            return
        if n > self._cap:  # longer than the window: in window-sized pieces
            for i in range(0, n, self._cap):
                self.put(channel, pos + i, pcm[i : i + self._cap])
            return
        over = pos + n - (self._base + self._cap)
        if over > 0:
            self._write(self._base + over)
        i = pos - self._base
        self._window[i : i + n, channel] = pcm
        if pos + n > self._end:
            self._end = pos + n

    def settle(self, upto: int) -> None:
        """Positions before ``upto`` will not change: written once ``flush_s`` of them gathered."""
        if upto - self._base >= self._flush:
            self._write(min(upto, self._base + self._cap))

    def close(self) -> None:
        """Write everything put so far and the final header; the file stays open (its owner's)."""
        if self._end > self._base:
            self._write(self._end)
        self._file.flush()

    def _write(self, upto: int) -> None:
        k = upto - self._base
        window, cap = self._window, self._cap
        if k > cap:  # past the whole window: it, then silence up to ``upto``
            self._file.write(window.tobytes())
            window[:] = 0
            for gap in range(cap, k, cap):
                self._file.write(window[: min(cap, k - gap)].tobytes())
        else:
            self._file.write(window[:k].tobytes())
            window[: cap - k] = window[k:]  # numpy copies overlapping slices correctly
            window[cap - k :] = 0
        self._base = upto
        if upto > self._end:
            self._end = upto
        self.writes += 1
        self._write_header()

    def _write_header(self) -> None:
        file = self._file
        file.seek(0)
        file.write(wav_header(self._origin + self._base, self.rate))
        file.seek(HEADER_BYTES + (self._origin + self._base) * _FRAME_BYTES)
