"""One stream's app→Vobiz side, shared by ``<Stream>`` and REST-started streams.

Every command the app sends is checked (``checks.py``); ``playAudio`` is queued and played out
at real-time rate; a ``checkpoint`` is answered with ``playedStream`` (and a ``PlayedStream``
status callback) once all audio before it has played; ``clearAudio`` drops the queue, voids the
pending checkpoints and is answered with ``clearedAudio`` after ``clear_latency`` (audio sent in
between is a protocol error); ``stop`` ends the stream (PROTOCOL.md §3.3, §3.4, §4).

The owner ticks ``play`` once per 20 ms frame and calls ``send_acks`` at the start of the next
frame, so a checkpoint is acknowledged right after its last sample has been heard.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from app.audio.formats import AudioFormat
from app.audio.resample import StreamResampler
from app.clock import Clock
from app.simulator import checks
from app.simulator.connect import MediaSocket
from app.simulator.platform_config import PlatformConfig
from app.simulator.playout import PhonePlayout, Played
from app.simulator.recording import PCM, EventKind
from app.simulator.wire_audio import decode_wire

Send = Callable[[str], Awaitable[None]]


class CallSide(Protocol):
    """What a stream uses of the call it belongs to (``SimulatedCall`` is one)."""

    @property
    def cfg(self) -> PlatformConfig: ...

    @property
    def clock(self) -> Clock: ...

    def event(self, kind: EventKind, **detail: Any) -> None:
        """Put one event on the call's timeline."""

    def violation(self, rule: str, detail: str) -> None:
        """Record a broken protocol rule."""

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as one of the call's tasks (ended with the call)."""

    async def status(self, target: StatusTarget, event: str, **extra: str) -> None:
        """Send one stream status callback to ``target``."""


def start_frame(call_id: str, stream_id: str, account_id: str, fmt: AudioFormat) -> str:
    """The ``start`` event: IDs nested under ``start``, the inbound format echoed (§3.1)."""
    start = {
        "callId": call_id,
        "streamId": stream_id,
        "accountId": account_id,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": fmt.mime, "sampleRate": fmt.sample_rate},
    }
    return json.dumps({"sequenceNumber": 0, "event": "start", "start": start, "extra_headers": "{}"})


def media_frame(stream_id: str, chunk: int, payload: bytes) -> str:
    """The ``chunk``-th (from 1) 20 ms ``media`` event; timestamp in ms as a string (§3.2)."""
    media = {
        "track": "inbound",
        "timestamp": str((chunk - 1) * 20),
        "chunk": chunk,
        "payload": base64.b64encode(payload).decode(),
    }
    return json.dumps(
        {
            "sequenceNumber": chunk,
            "streamId": stream_id,
            "event": "media",
            "media": media,
            "extra_headers": "{}",
        }
    )


def dtmf_frame(stream_id: str, chunk: int, key: str) -> str:
    """A phone key as a ``dtmf`` event: Plivo's shape, the one Vobiz's socket summary names
    (PROTOCOL.md §3.5, D25), numbered like the ``chunk``-th media frame it comes beside."""
    dtmf = {"track": "inbound", "digit": key, "timestamp": str((chunk - 1) * 20)}
    return json.dumps(
        {"sequenceNumber": chunk, "streamId": stream_id, "event": "dtmf", "dtmf": dtmf, "extra_headers": "{}"}
    )


@dataclass(frozen=True, slots=True)
class StatusTarget:
    """Where one stream's status callbacks go (PROTOCOL.md §7.1); ``url`` None: nowhere."""

    stream_id: str
    url: str | None
    method: str = "POST"


class StreamAudio:
    """The commands of one stream's socket, and the audio they queue for the caller's ear."""

    def __init__(
        self,
        call: CallSide,
        target: StatusTarget,
        *,
        accepted: AudioFormat,
        bidirectional: bool,
        send: Send,
        label: str = "",
    ) -> None:
        """``accepted``: the one playAudio format allowed; ``send`` puts a frame on the socket;
        a ``label`` (REST streams) prefixes violation details, and their timeline events get
        ``stream=<id>`` (``tag``)."""
        self.call = call
        self.target = target
        self.accepted = accepted
        self.bidirectional = bidirectional
        self.playout = PhonePlayout()
        self.clearing = False  # clearAudio sent, clearedAudio not yet
        self._send = send
        self._label = label
        self.tag: dict[str, str] = {"stream": target.stream_id} if label else {}
        self._acked: tuple[str, ...] = ()
        self._to_rec: dict[int, StreamResampler] = {}

    async def serve(self, sock: MediaSocket) -> bool:
        """Handle the app's commands until it sends ``stop`` (True) or closes the socket (False)."""
        while (frame := await sock.recv()) is not None:
            command = checks.check_command(
                frame,
                stream_id=self.target.stream_id,
                accepted=self.accepted,
                bidirectional=self.bidirectional,
            )
            match command:
                case checks.Violation(rule=rule, detail=detail):
                    self.call.violation(rule, self._label + detail)
                case checks.PlayAudio(fmt=fmt, payload=payload):
                    if self.clearing:
                        self.call.violation(
                            "audio-during-clear", self._label + "playAudio sent before clearedAudio"
                        )
                        continue
                    self.playout.push_audio(
                        self._to_recording(
                            decode_wire(payload, fmt.encoding, fmt.byte_order), fmt.sample_rate
                        )
                    )
                case checks.Checkpoint(name=name):
                    self.playout.push_checkpoint(name)
                    self.call.event("checkpoint", name=name, **self.tag)
                case checks.ClearAudio():
                    dropped, voided = self.playout.clear()
                    seconds = dropped / self.call.cfg.recording_rate
                    self.call.event("clear_audio", dropped_s=seconds, voided=list(voided), **self.tag)
                    if not self.clearing:
                        self.clearing = True
                        self.call.spawn(self._ack_clear(), name=f"vobiz-clear-ack-{self.target.stream_id}")
                case checks.Stop():
                    self.call.event("stop", **self.tag)
                    return True
        return False

    def play(self, samples: int) -> Played:
        """Play one tick; checkpoints it completes are acknowledged by the next ``send_acks``."""
        played = self.playout.tick(samples)
        self._acked += played.acked
        return played

    async def send_acks(self) -> None:
        acked, self._acked = self._acked, ()
        if not self.call.cfg.acks_checkpoints:
            return  # lost: the app must not wait for them forever
        for name in acked:
            self.call.event("played_stream", name=name, **self.tag)
            await self._send(json.dumps({"event": "playedStream", "name": name}))
            await self.call.status(self.target, "PlayedStream", Name=name)

    async def _ack_clear(self) -> None:
        await self.call.clock.sleep(self.call.cfg.clear_latency)
        self.clearing = False
        self.call.event("cleared_audio", **self.tag)
        await self._send(json.dumps({"event": "clearedAudio", "streamId": self.target.stream_id}))

    def _to_recording(self, pcm: PCM, rate: int) -> PCM:
        """``pcm`` at the recording rate (one stateful resampler per stream and input rate)."""
        if rate == self.call.cfg.recording_rate:
            return pcm
        resampler = self._to_rec.get(rate)
        if resampler is None:
            resampler = self._to_rec[rate] = StreamResampler(rate, self.call.cfg.recording_rate)
        return resampler.process(pcm)
