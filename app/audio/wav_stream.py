"""A stereo 16-bit WAV written as a call goes, never held whole in memory.

Each channel's samples are placed by position (samples from the writer's start) on one axis, so
the two stay aligned whatever order they arrive in. A fixed window of ``window_s`` seconds past
the last written position is kept in memory (zeros where nothing was put: silence); positions
the owner declares settled (``settle``) are appended to the file once ``flush_s`` of them have
gathered, in one small write. Memory is the window, whatever the call's length.

The header's sizes are rewritten after every write, so a file whose process died is a valid WAV
up to its last write (at most ``flush_s`` of audio is lost; any trailing bytes past the header's
size are ignored by readers, and dropped when the file is continued). The writes themselves run
where ``FileWrites`` says: on one background thread in the service, inline in tests and tools.
Sans-clock: the owner says where samples go.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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


def _append(file: BinaryIO, chunks: list[bytes], frames: int, rate: int) -> None:
    """Append ``chunks`` at the end of the data and set the header's count to ``frames``."""
    file.seek(HEADER_BYTES + frames * _FRAME_BYTES - sum(len(c) for c in chunks))
    for chunk in chunks:
        file.write(chunk)
    file.seek(0)
    file.write(wav_header(frames, rate))
    file.flush()


class FileWrites:
    """Where a writer's file writes run: on one shared thread, in order (``background``), or at
    once on the caller's thread (``inline``). A disk that stalls (page-cache writeback under
    load: milliseconds) then never stalls the event loop and every call on it."""

    def __init__(self, background: bool) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="recording-writes") if background else None

    def submit(self, fn: Callable[[], None]) -> Future[None]:
        if self._pool is None:
            done: Future[None] = Future()
            try:
                fn()
            except BaseException as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)
            return done
        return self._pool.submit(fn)


INLINE = FileWrites(background=False)


class StereoWavWriter:
    """Two int16 channels (0: left, 1: right) into ``file``, a seekable binary file opened for
    writing. ``start_frames``: frames already in the file (a call continued on a new socket);
    positions given to ``put`` count from there. ``writes``: where the file writes run; at most
    ``max_pending`` of them wait at once, past that ``OSError`` (the disk cannot keep up)."""

    def __init__(
        self,
        file: BinaryIO,
        rate: int,
        *,
        window_s: float = 4.0,
        flush_s: float = 0.5,
        start_frames: int = 0,
        writes: FileWrites = INLINE,
        max_pending: int = 8,
    ) -> None:
        if not 0 < flush_s < window_s:
            raise ValueError(f"flush_s must be in (0, window_s), got {flush_s} and {window_s}")
        self.rate = rate
        self._file = file
        self._cap = int(window_s * rate)
        self._flush = max(1, int(flush_s * rate))
        self._window = np.zeros((self._cap, CHANNELS), dtype="<i2")  # the only audio held
        self._origin = start_frames  # frames in the file before position 0
        self._base = 0  # position of the window's first frame: every earlier one is written
        self._end = 0  # one past the last position put (or written)
        self.late_samples = 0  # samples put before the window (already written): dropped
        self.writes = 0
        self._io = writes
        self._pending: deque[Future[None]] = deque()
        self._max_pending = max_pending
        file.seek(HEADER_BYTES + start_frames * _FRAME_BYTES)
        file.truncate()  # a tail past the header's count (a crash mid-write) is dropped
        _append(file, [], start_frames, rate)

    @property
    def buffered_bytes(self) -> int:
        """Bytes of audio held in memory: the window, the same for a minute or an hour (plus
        at most ``max_pending`` chunks of ``flush_s`` waiting for the disk)."""
        return self._window.nbytes

    @property
    def frames(self) -> int:
        """Frames the file holds once closed (``start_frames`` included)."""
        return self._origin + self._end

    @property
    def written(self) -> int:
        """Positions already handed to the file (``put`` before this is dropped)."""
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

    def wait(self) -> None:
        """Block until the writes handed over so far are done (tools and benchmarks)."""
        for done in list(self._pending):
            done.result()

    def close(self) -> Future[None]:
        """Write everything put so far, then close the file; done when it is on disk (its
        exception: a write that failed)."""
        if self._end > self._base:
            self._write(self._end, check=False)
        file, pending = self._file, list(self._pending)

        def close() -> None:
            file.close()
            for done in pending:
                done.result()  # a failed write is the close's failure

        return self._io.submit(close)

    def _write(self, upto: int, *, check: bool = True) -> None:
        pending = self._pending
        while pending and pending[0].done():
            pending.popleft().result()  # raises what a write raised
        if check and len(pending) >= self._max_pending:
            raise OSError("recording writes are behind: the disk cannot keep up")
        k = upto - self._base
        window, cap = self._window, self._cap
        chunks: list[bytes]
        if k > cap:  # past the whole window: it, then silence up to ``upto``
            chunks = [window.tobytes()]
            chunks += [bytes(min(cap, k - gap) * _FRAME_BYTES) for gap in range(cap, k, cap)]
            window[:] = 0
        else:
            chunks = [window[:k].tobytes()]
            window[: cap - k] = window[k:]  # numpy copies overlapping slices correctly
            window[cap - k :] = 0
        self._base = upto
        if upto > self._end:
            self._end = upto
        self.writes += 1
        file, frames, rate = self._file, self._origin + upto, self.rate
        pending.append(self._io.submit(lambda: _append(file, chunks, frames, rate)))
