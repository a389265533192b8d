"""``CallAudioRecorder``: one call's stereo WAV, the caller left, the agent right as heard.

The file's rate is the inbound line's (8 kHz for μ-law; the L16 rate otherwise): the caller's
audio is only decoded, never resampled; the agent's is decoded, and resampled only when
``PLAYBACK_SAMPLE_RATE`` differs from the line's. Position 0 is the stream's ``start``; both
channels are placed on the call's clock:

- the caller's frames follow one another as received (Vobiz streams continuously); a gap of
  more than ``jitter_s`` (frames lost, a stalled stream) is skipped to the clock's position;
- the agent's frames play, as on the phone, from when they are sent or when the previous frame
  ends, whichever is later (the same arithmetic as ``Playout.played_index``). They wait in a
  small queue until that time has passed; a ``cut`` (``clearAudio``) drops what the caller had
  not heard yet, cutting the frame then playing at the cut. The queue holds what the playout
  sent ahead (its lead, ≈ 0.2 s), never more than ``max_ahead_frames``.

Per frame: a decode, a numpy copy into the writer's window, and every ``flush_s`` one small
file write. A failed write (a full disk) stops the recording, never the call.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from app.audio.codec import decode
from app.audio.formats import AudioFormat
from app.audio.resample import StreamResampler
from app.audio.wav_stream import INLINE, FileWrites, StereoWavWriter, existing_frames
from app.clock import Clock

log = logging.getLogger("app.recording")

LEFT, RIGHT = 0, 1


class CallAudioRecorder:
    def __init__(
        self,
        file: BinaryIO,
        clock: Clock,
        inbound: AudioFormat,
        outbound: AudioFormat,
        *,
        start_frames: int = 0,
        name: str = "",
        writes: FileWrites = INLINE,
        jitter_s: float = 0.2,
        max_ahead_frames: int = 500,
    ) -> None:
        """``file``: seekable, opened for writing (``open_recording``); closed by ``close``.
        ``writes``: where its file writes run (``background_writes()`` in the service)."""
        self.rate = rate = inbound.sample_rate
        self.name = name  # the file's name, for the call record
        self.writer = StereoWavWriter(file, rate, start_frames=start_frames, writes=writes)
        self._clock = clock
        self._t0 = clock.now()
        self._in = inbound
        self._out = outbound
        self._out_ratio = (rate, outbound.sample_rate * outbound.bytes_per_sample)
        self._resampler = (
            StreamResampler(outbound.sample_rate, rate) if outbound.sample_rate != rate else None
        )
        self._jitter = int(jitter_s * rate)
        self._left = 0  # where the caller's next frame goes
        self._play_end = 0  # where the agent's audio queued so far ends
        # agent frames not yet fully heard: (start position, payload, samples kept at the rate)
        self._ahead: deque[tuple[int, bytes, int]] = deque()
        self._max_ahead = max_ahead_frames
        self.failed = False

    def _now(self) -> int:
        return int((self._clock.now() - self._t0) * self.rate)

    def _samples(self, payload: bytes) -> int:
        rate, out_bytes_per_s = self._out_ratio
        return len(payload) * rate // out_bytes_per_s

    def caller(self, payload: bytes) -> None:
        """An inbound frame, as received (its wire payload)."""
        if not self.failed:
            self.caller_pcm(decode(payload, self._in))

    def caller_pcm(self, pcm: npt.NDArray[np.int16]) -> None:
        """An inbound frame already decoded at the line's rate (the session decodes it once)."""
        if self.failed:
            return
        try:
            now = self._now()
            pos = self._left
            if now - len(pcm) - pos > self._jitter:
                pos = now - len(pcm)  # a gap in the stream: silence, not a drift
            self.writer.put(LEFT, pos, pcm)
            self._left = pos + len(pcm)
            self._settle(now)
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def agent(self, payload: bytes) -> None:
        """An outbound ``playAudio`` payload, queued for the caller now."""
        if self.failed:
            return
        now = self._now()
        start = max(now, self._play_end)
        n = self._samples(payload)
        self._ahead.append((start, payload, n))
        self._play_end = start + n
        try:
            while len(self._ahead) > self._max_ahead:  # sent far ahead: written uncut
                self._play(*self._ahead.popleft())
            self._settle(now)
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def cut(self) -> None:
        """``clearAudio``: what was queued but not yet heard never reaches the caller."""
        if self.failed:
            return
        at = self._now()
        kept: deque[tuple[int, bytes, int]] = deque()
        for start, payload, n in self._ahead:
            if start < at:
                kept.append((start, payload, min(n, at - start)))
        self._ahead = kept
        self._play_end = min(self._play_end, at)  # what is kept ends by ``at``
        if self._resampler is not None:
            self._resampler.reset()

    def close(self) -> Future[None]:
        """The call is over: audio not heard by now never will be. The file is completed and
        closed; the future is done once it is on disk (its exception: a write that failed)."""
        try:
            if not self.failed:
                self.cut()
                while self._ahead:
                    self._play(*self._ahead.popleft())
        except (OSError, ValueError) as exc:
            self._fail(exc)
        return self.writer.close()

    def _settle(self, now: int) -> None:
        ahead = self._ahead
        while ahead and ahead[0][0] + ahead[0][2] <= now:  # fully heard by now
            self._play(*ahead.popleft())
        settled = min(now, max(self._left, now - self._jitter))
        if ahead:
            settled = min(settled, ahead[0][0])
        self.writer.settle(settled)

    def _play(self, start: int, payload: bytes, n: int) -> None:
        pcm = decode(payload, self._out)
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
        self.writer.put(RIGHT, start, pcm[:n])

    def _fail(self, exc: Exception) -> None:
        self.failed = True
        log.warning("recording stopped: %s", type(exc).__name__)


_background: FileWrites | None = None


def background_writes() -> FileWrites:
    """The process's one thread for recording writes (made on first use)."""
    global _background
    if _background is None:
        _background = FileWrites(background=True)
    return _background


def open_recording(
    directory: Path,
    call_id: str,
    clock: Clock,
    inbound: AudioFormat,
    outbound: AudioFormat,
    *,
    writes: FileWrites = INLINE,
) -> CallAudioRecorder:
    """The recorder of ``call_id`` in ``directory`` (created if needed): a new file, or the one
    an earlier socket of the same call left, continued after its last frame. ``OSError`` when the
    file cannot be opened; ``ValueError`` for a call id that is not a safe file name."""
    path = recording_path(directory, call_id)
    directory.mkdir(parents=True, exist_ok=True)
    start = 0
    try:
        file: BinaryIO = path.open("r+b")
    except FileNotFoundError:
        file = path.open("w+b")
    else:
        found = existing_frames(file, inbound.sample_rate)
        start = found if found is not None else 0  # not ours, or another rate: started again
    try:
        return CallAudioRecorder(
            file, clock, inbound, outbound, start_frames=start, name=path.name, writes=writes
        )
    except BaseException:
        file.close()
        raise


_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def recording_name(call_id: str) -> str:
    """``<call_id>.wav``; ``ValueError`` unless the id is a plain file name (letters, digits,
    ``_.-``, not starting with a dot, no ``..``): no path ever leaves the recordings folder."""
    if not _SAFE_ID.fullmatch(call_id) or ".." in call_id:
        raise ValueError("call id is not a safe file name")
    return f"{call_id}.wav"


def recording_path(directory: Path, call_id: str) -> Path:
    """``directory/<call_id>.wav`` (see ``recording_name``)."""
    return directory / recording_name(call_id)
