"""``CallIO``: the agent's side of one call, and what it is built from.

The session creates it on ``start`` and hands it what it needs (the outbox, the counters, the
end flag); it knows nothing else of the session. It is the playout's ``AudioSink``: frames,
checkpoints, clears. What the agent receives comes on ``events``: Vobiz's control events and
``AudioWritten`` for each frame it marked, once the socket writer has taken it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from app.audio.formats import AudioFormat
from app.audio.frames import OutboundEncoder
from app.pipeline.call_recording import CallAudioRecorder
from app.pipeline.outbox import Outbox
from app.telephony import events as ev

PCM = npt.NDArray[np.int16]
AudioHandler = Callable[[PCM], Awaitable[None]]  # takes one inbound frame (``CallIO.take_audio``)


@dataclass(frozen=True, slots=True)
class SessionConfig:
    pipeline_rate: int = 16000  # rate of the PCM the agent receives
    playback_rate: int = 0  # outbound playAudio rate; 0 = same as inbound
    l16_byte_order: Literal["little", "big"] = "little"
    max_message_bytes: int = 64 * 1024
    inbound_queue_frames: int = 100  # 2 s of 20 ms frames; the oldest is dropped past it
    end_grace_s: float = 2.0  # at most this long for the agent to finish once the call ends
    chunk_frames: int = 1  # 20 ms frames per outbound playAudio at most (the playout's chunk)
    recording_dir: Path | None = None  # record the call to <dir>/<call_id>.wav; None: not recorded


@dataclass(slots=True)
class CallStats:
    """Counters for one call; logged when it ends (no audio or text in them)."""

    call_id: str
    stream_id: str | None = None
    started_at: float = 0.0
    ended_at: float | None = None
    end_reason: str | None = None
    frames_in: int = 0
    frames_out: int = 0
    inbound_dropped: int = 0
    checkpoints_acked: int = 0
    unknown_events: Counter[str] = field(default_factory=Counter)
    protocol_errors: Counter[str] = field(default_factory=Counter)
    recording: str | None = None  # the call's recording's file name (in DATA_DIR/recordings)


@dataclass(frozen=True, slots=True)
class AudioWritten:
    """The socket writer took a frame the agent marked (``CallIO.send_frame(..., mark)``)."""

    mark: int
    t: float  # when, on the call's clock


AgentEvent = ev.InboundEvent | AudioWritten  # what the agent reads from ``CallIO.events``


def outbound_format(inbound: AudioFormat, playback_rate: int) -> AudioFormat:
    """The playAudio format: the inbound one unless a playback rate is configured."""
    if playback_rate in (0, inbound.sample_rate):
        return inbound
    if playback_rate == 8000 and inbound.encoding == "mulaw":
        return inbound
    return AudioFormat("l16", playback_rate, inbound.byte_order)


class CallIO:
    """What an agent may do with the call. Created by the session on ``start``; it is the
    agent's ``AudioSink``."""

    def __init__(
        self,
        start: ev.StartEvent,
        inbound_fmt: AudioFormat,
        *,
        config: SessionConfig,
        outbox: Outbox,
        stats: CallStats,
        ended: asyncio.Event,
        recorder: CallAudioRecorder | None = None,
    ) -> None:
        """``outbox``: what the socket writer sends; ``stats``: the call's counters (frames out);
        ``ended``: set once the call's end was asked for; ``recorder``: hears each frame sent
        and each clear (the call's recording)."""
        self.start = start
        self.inbound_format = inbound_fmt
        self.outbound_format = outbound_format(inbound_fmt, config.playback_rate)
        self.pipeline_rate = config.pipeline_rate
        self.chunk_frames = config.chunk_frames
        self._frame_bytes = self.outbound_format.frame_bytes()
        self.audio_in: asyncio.Queue[PCM] = asyncio.Queue(config.inbound_queue_frames)
        self.events: asyncio.Queue[AgentEvent] = asyncio.Queue(256)
        self.audio_handler: AudioHandler | None = None  # see ``take_audio``
        self.stop_sent = False  # the agent sent ``stop``: it hung up
        self._outbox = outbox
        self._stats = stats
        self._ended = ended
        self._encoders: dict[int, OutboundEncoder] = {}
        self._recorder = recorder

    def take_audio(self, handler: AudioHandler | None) -> None:
        """Have the socket's reader hand each inbound frame to ``handler`` at once (no queue, no
        task switch: 50 times a second per call) instead of queueing it on ``audio_in``; None:
        back to the queue. The reader awaits it before reading on, so it must not wait (no I/O).
        Frames queued before are left on ``audio_in``: take them first, then register."""
        self.audio_handler = handler

    @property
    def ending(self) -> bool:
        """The call is ending: nothing new is spoken, the agent only finishes what it had."""
        return self._ended.is_set()

    def _encoder(self, rate: int) -> OutboundEncoder:
        enc = self._encoders.get(rate)
        if enc is None:
            enc = self._encoders[rate] = OutboundEncoder(rate, self.outbound_format)
        return enc

    async def play(self, pcm: PCM, rate: int) -> None:
        """Queue ``pcm`` (int16 at ``rate`` Hz) as 20 ms ``playAudio`` frames."""
        for frame in self._encoder(rate).push(pcm):
            await self.send_frame(frame)

    async def flush(self, rate: int) -> None:
        """Send the partial last frame of ``rate`` audio, padded with silence."""
        for frame in self._encoder(rate).flush():
            await self.send_frame(frame)

    async def send_frame(self, payload: bytes, mark: int | None = None) -> None:
        """Queue already-encoded audio (whole 20 ms frames in ``outbound_format``) as one
        ``playAudio``; ``CallStats.frames_out`` counts its 20 ms frames.

        With a ``mark``, ``AudioWritten(mark, t)`` arrives on ``events`` when the socket writer
        takes the frame; a frame dropped by a ``clear`` (even while it waited for room) is never
        sent and never reported."""
        if self._ended.is_set():
            return  # the call is over: nothing new is spoken
        fmt = self.outbound_format
        message = ev.play_audio(self.start.stream_id, fmt.mime, fmt.sample_rate, payload)
        if await self._outbox.put_audio(message, mark):
            self._stats.frames_out += max(1, len(payload) // self._frame_bytes)
            if self._recorder is not None:
                self._recorder.agent(payload)

    def checkpoint(self, name: str) -> None:
        """Mark the end of the audio queued so far; Vobiz acks with ``playedStream``."""
        self._outbox.put_audio_after_audio(ev.checkpoint(self.start.stream_id, name))

    def clear(self) -> None:
        """Barge-in: drop unsent audio and tell Vobiz to flush what it queued."""
        for enc in self._encoders.values():
            enc.clear()
        self._outbox.drop_audio()
        self._outbox.put_control(ev.clear_audio(self.start.stream_id))
        if self._recorder is not None:
            self._recorder.cut()

    def stop(self) -> None:
        """End the stream (Vobiz then runs the next XML verb or hangs up). The call's end that
        follows (the socket closed, the hang-up callback) is recorded as ``agent-hangup``."""
        self.stop_sent = True
        self._outbox.put_control(ev.stop(self.start.stream_id))
