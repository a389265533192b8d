"""Call recordings on disk: where they go, whether a call is recorded, and their retention.

Files are ``DATA_DIR/recordings/<call_id>.wav`` (``app.pipeline.call_recording`` writes them).
Retention deletes files last written more than ``RECORDING_RETENTION_DAYS`` ago: once at
start-up and then every ``SWEEP_EVERY_S``; a live call's file is written to every half second,
so it is never old. One ``scandir`` of one folder: cheap, and off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path

from agents.personas import Persona
from app.audio.wav_stream import CHANNELS, HEADER_BYTES, SAMPLE_BYTES, wav_header
from app.clock import Clock
from app.config import Settings
from app.pipeline.call_recording import recording_name

log = logging.getLogger("app.recordings")

SWEEP_EVERY_S = 3600.0
DAY_S = 86400.0

__all__ = [
    "WavSnapshot",
    "recording_file",
    "recording_on",
    "recordings_dir",
    "snapshot",
    "sweep",
    "sweep_forever",
]
READ_CHUNK = 64 * 1024


def recordings_dir(settings: Settings) -> Path:
    return settings.data_dir / "recordings"


def recording_on(settings: Settings, persona: Persona | None) -> bool:
    """The persona's ``recording`` when it sets one, else ``RECORDING``."""
    own = persona.settings.recording if persona is not None else None
    return settings.recording if own is None else own


def recording_file(settings: Settings, call_id: str) -> Path | None:
    """The recording of ``call_id`` if there is one; None for none, or an id that is not a plain
    file name (nothing outside the recordings folder is ever named)."""
    try:
        name = recording_name(call_id)
    except ValueError:
        return None
    path = recordings_dir(settings) / name
    return path if path.is_file() else None


def sweep(directory: Path, days: int, now: float | None = None) -> int:
    """Delete the ``.wav`` files of ``directory`` last written more than ``days`` days before
    ``now`` (unix seconds; default: the system's time, as file times are); 0 days: keep all.
    Returns how many were deleted."""
    if days <= 0:
        return 0
    limit = (time.time() if now is None else now) - days * DAY_S
    deleted = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not entry.name.endswith(".wav") or not entry.is_file(follow_symlinks=False):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime < limit:
                os.unlink(entry.path)
                deleted += 1
        except FileNotFoundError:
            continue  # gone meanwhile
    return deleted


async def sweep_once(settings: Settings) -> int:
    """``sweep`` the recordings folder off the event loop; a failure is logged, never raised."""
    try:
        deleted = await asyncio.to_thread(sweep, recordings_dir(settings), settings.recording_retention_days)
    except OSError as exc:
        log.warning("recording retention sweep failed: %s", type(exc).__name__)
        return 0
    if deleted:
        log.info("recordings past retention deleted", extra={"count": deleted})
    return deleted


async def sweep_forever(settings: Settings, clock: Clock, every_s: float = SWEEP_EVERY_S) -> None:
    """Sweep every ``every_s`` until cancelled (the start-up sweep is the caller's)."""
    while True:
        await clock.sleep(every_s)
        await sweep_once(settings)


class WavSnapshot:
    """A recording as it stands now: its header (sizes as written so far) and how many data
    bytes follow it. A live call's file keeps growing; what is served is this much of it, so
    the response's length holds however the file grows meanwhile."""

    def __init__(self, path: Path, header: bytes, data_bytes: int) -> None:
        self.path = path
        self.header = header
        self.data_bytes = data_bytes

    @property
    def size(self) -> int:
        return len(self.header) + self.data_bytes

    async def chunks(self) -> AsyncIterator[bytes]:
        """The header, then the data in chunks, each read off the event loop."""
        yield self.header
        with self.path.open("rb") as file:
            file.seek(HEADER_BYTES)
            left = self.data_bytes
            while left > 0:
                chunk = await asyncio.to_thread(file.read, min(READ_CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk


def snapshot(path: Path) -> WavSnapshot | None:
    """``path``'s recording as written so far (see ``WavSnapshot``); None when it is not a
    recording (not a 16-bit stereo WAV of this service's layout)."""
    with path.open("rb") as file:
        head = file.read(HEADER_BYTES)
        size = file.seek(0, os.SEEK_END)
    if len(head) < HEADER_BYTES or head[:4] != b"RIFF" or head[8:12] != b"WAVE" or head[36:40] != b"data":
        return None
    channels, rate = struct.unpack_from("<HI", head, 22)
    if channels != CHANNELS:
        return None
    frame = CHANNELS * SAMPLE_BYTES
    declared = struct.unpack_from("<I", head, 40)[0]
    frames = min(declared, size - HEADER_BYTES) // frame
    return WavSnapshot(path, wav_header(frames, rate), frames * frame)
