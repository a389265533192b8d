"""``CallSession``: one per media WebSocket; owns the call's tasks and its end.

Tasks (all in one ``asyncio.TaskGroup``):
- ``reader``: socket → ``parse_inbound`` → decoder → the agent: its ``CallIO.take_audio``
  handler, awaited in the reader (no task switch per frame), or else its inbound queue;
- ``writer``: the ``Outbox`` → socket (control before audio); when it takes a frame the agent
  marked, the agent gets ``AudioWritten`` on its event queue;
- ``agent``: started on ``start``; talks to the call only through ``CallIO``, which is given
  what it needs (the outbox, the counters, the end flag) and nothing else of the session;
- ``watch-end``: waits for ``end()`` (the socket closed, the hangup webhook, ``stop``, the
  agent's hang-up), lets the agent finish (``EndingAgent.finish``, at most ``end_grace_s``),
  then raises ``CallEnded``.

Every ending takes the same path: ``end(reason)``, then the agent's bounded finish (nothing
new is spoken meanwhile), then ``CallEnded`` cancels the group; ``run`` catches it, closes the
socket if it is still open and returns the reason. Bad frames never end a call. A peer that
closes the socket is never an error; once the agent has sent ``stop``, the ending that follows
is the agent's (``agent-hangup``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol, runtime_checkable

from app.audio.codec import detect_l16_byte_order
from app.audio.formats import AudioFormat, check_stream_format
from app.audio.frames import InboundDecoder
from app.clock import Clock, run_within
from app.logs import ContextLogger

# re-exported: the agent-facing names were defined here before ``call_io`` was split out
from app.pipeline.call_io import PCM as PCM
from app.pipeline.call_io import AgentEvent as AgentEvent
from app.pipeline.call_io import AudioWritten as AudioWritten
from app.pipeline.call_io import CallIO as CallIO
from app.pipeline.call_io import CallStats as CallStats
from app.pipeline.call_io import SessionConfig as SessionConfig
from app.pipeline.call_io import outbound_format as outbound_format
from app.pipeline.call_recording import CallAudioRecorder, background_writes, open_recording
from app.pipeline.outbox import Marked, Outbox
from app.telephony import events as ev

log = logging.getLogger("app.call")

BYTE_ORDER_PROBE_FRAMES = 25  # 0.5 s of inbound L16 decides the byte-order check
AGENT_HANGUP = "agent-hangup"
# the service shut down while the call was live: its drain timed out (``CallSession.shut_down``)
SHUTDOWN = "shutdown"
# endings that follow the agent's own ``stop``: Vobiz closes the socket, posts the hang-up
READER_DRAIN_S = 1.0  # a failed write waits this long for the reader to reach the socket's end
AFTER_STOP = frozenset({"socket-closed", "hangup", "stream-stopped"})
MAX_UNKNOWN_EVENT_NAMES = 16  # distinct unknown event names counted per call; the rest: "other"
UNKNOWN_OTHER = "other"


class CallEnded(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransportClosed(Exception):
    def __init__(self, code: int | None = None) -> None:
        super().__init__(f"socket closed (code {code})")
        self.code = code


class Transport(Protocol):
    """The socket, as the session sees it."""

    async def receive(self) -> str | bytes:
        """The next message; raises ``TransportClosed`` when the peer has gone."""
        ...

    async def send(self, message: str) -> None: ...

    async def close(self, code: int = 1000) -> None: ...


class Agent(Protocol):
    async def run(self, call: CallIO) -> None:
        """Converse until cancelled (the session cancels it when the call ends)."""
        ...


@runtime_checkable
class EndingAgent(Agent, Protocol):
    async def finish(self) -> None:
        """The call is ending: settle what is in flight and keep what was said, speaking
        nothing new. Awaited once, while ``run`` still runs; the session cancels it (and then
        ``run``) after ``SessionConfig.end_grace_s``."""
        ...


@runtime_checkable
class ClosingAgent(Agent, Protocol):
    def shut_down(self) -> None:
        """The service is going away: cut what is in flight, say a closing line and hang up
        (``CallIO.stop``). Called at most once, on the loop; returns at once."""
        ...


class CallSession:
    """Owns one media socket, its tasks and its end. ``run`` returns the end reason."""

    def __init__(
        self,
        *,
        call_id: str,
        transport: Transport,
        agent: Agent,
        clock: Clock,
        config: SessionConfig,
    ) -> None:
        self.call_id = call_id
        self.config = config
        self.stats = CallStats(call_id=call_id, started_at=clock.now())
        self.outbox = Outbox()
        self.io: CallIO | None = None
        self._transport = transport
        self._agent = agent
        self._clock = clock
        self._decoder: InboundDecoder | None = None
        self._byte_order_probe: list[bytes] | None = None
        self._end_requested = asyncio.Event()
        self._end_reason = "ended"
        self._shutting_down = False
        self._socket_open = True
        self._recorder: CallAudioRecorder | None = None
        self._log = ContextLogger(log, {"call_id": call_id})

    @property
    def agent(self) -> Agent:
        """The agent of this call (a ``Conversation`` for real calls)."""
        return self._agent

    @property
    def ending(self) -> bool:
        """The call is ending (``end`` was called): the agent only finishes what it had."""
        return self._end_requested.is_set()

    def end(self, reason: str) -> None:
        """Ask the call to end (safe to call from any task on the loop, more than once; the
        first reason counts)."""
        if not self._end_requested.is_set():
            stop_sent = self.io is not None and self.io.stop_sent
            if stop_sent and reason in AFTER_STOP:
                reason = SHUTDOWN if self._shutting_down else AGENT_HANGUP
            self._end_reason = reason
            self._end_requested.set()

    def shut_down(self) -> None:
        """The service is going away (its drain timed out): a ``ClosingAgent`` says its closing
        line and hangs up, and the ending that follows is ``shutdown``; any other agent's call
        ends now, as ``shutdown``. A caller who hangs up first keeps their reason. Idempotent."""
        if self._shutting_down or self.ending:
            return
        self._shutting_down = True
        if self.io is not None and isinstance(self._agent, ClosingAgent):
            self._agent.shut_down()
        else:
            self.end(SHUTDOWN)

    async def run(self) -> str:
        reason = "ended"
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self._reader = tg.create_task(self._read(), name=f"call-{self.call_id}-reader")
                tg.create_task(self._write(), name=f"call-{self.call_id}-writer")
                tg.create_task(self._watch_end(), name=f"call-{self.call_id}-watch-end")
        except* CallEnded as group:
            reason = _first_reason(group)
        except* Exception as group:
            reason = "error"
            self._log.error("call failed", exc_info=group.exceptions[0])
        if self._socket_open:
            await self._close(1011 if reason == "error" else 1000)
        if self._recorder is not None:
            await self._close_recording(self._recorder)
        self.stats.ended_at = self._clock.now()
        self.stats.end_reason = reason
        self._log.info(
            "call ended",
            extra={
                "reason": reason,
                "frames_in": self.stats.frames_in,
                "frames_out": self.stats.frames_out,
                "protocol_errors": sum(self.stats.protocol_errors.values()),
                "unknown_events": sum(self.stats.unknown_events.values()),
            },
        )
        return reason

    async def _close(self, code: int) -> None:
        self._socket_open = False
        with contextlib.suppress(TransportClosed, RuntimeError, OSError):
            await self._transport.close(code)  # may already be gone: nothing left to close

    async def _watch_end(self) -> None:
        await self._end_requested.wait()
        self.outbox.drop_audio()  # unsent agent audio: the caller has gone
        agent, grace = self._agent, self.config.end_grace_s
        if self.io is not None and isinstance(agent, EndingAgent):
            finished = await run_within(self._clock, grace, agent.finish())
            if not finished:
                self._log.warning("agent did not finish in %.1f s", grace)
        raise CallEnded(self._end_reason)

    async def _write(self) -> None:
        outbox = self.outbox
        while True:
            item = await outbox.get()
            if isinstance(item, str):
                message = item
            else:
                message = item.message
                self._written(item)
            try:
                await self._transport.send(message)
            except TransportClosed:
                self._socket_open = False
                # what the peer sent before it went (a ``stop``, then a reset) is still to be
                # read: the reader names the end; only if it does not soon is it socket-closed
                await run_within(self._clock, READER_DRAIN_S, self._reader_done())
                self.end("socket-closed")
                return

    def _written(self, item: Marked) -> None:
        """The writer takes a marked frame: tell the agent, stamped now."""
        io = self.io
        if io is None:
            return
        if io.events.full():
            self._protocol_error("events-overflow", "agent not reading control events")
        else:
            io.events.put_nowait(AudioWritten(item.mark, self._clock.now()))

    async def _reader_done(self) -> None:
        await asyncio.wait({self._reader})

    async def _read(self) -> None:
        limit = self.config.max_message_bytes
        while True:
            try:
                message = await self._transport.receive()
            except TransportClosed as exc:
                self._socket_open = False
                self.end("socket-closed" if exc.code != 1009 else "message-too-big")
                return
            if len(message) > limit:
                self._protocol_error("frame-too-large", f"{len(message)} bytes > {limit}")
                continue
            try:
                event = ev.parse_inbound(message)
                if type(event) is not ev.MediaEvent:
                    self._on_control(event)
                    continue
                pcm = self._on_media(event)
            except ev.ProtocolError as exc:
                self._protocol_error("bad-frame", str(exc))
                continue
            if pcm is not None:
                io = self.io
                assert io is not None  # a frame is decoded only after ``start``
                if io.audio_handler is not None:
                    await io.audio_handler(pcm)  # the agent hears it now (``CallIO.take_audio``)
                else:
                    self._queue_audio(io, pcm)

    def _on_media(self, event: ev.MediaEvent) -> PCM | None:
        """The frame's decoded audio; None when there is none to hear."""
        decoder = self._decoder
        if decoder is None or self.io is None:
            self._protocol_error("media-before-start", "media frame before start; dropped")
            return None
        if event.track != "inbound":
            return None
        try:
            line = decoder.line(event.payload)  # decoded once: for the recording and the agent
            pcm = decoder.resample(line)
        except ValueError as exc:
            raise ev.ProtocolError(str(exc)) from None
        self.stats.frames_in += 1
        if self._recorder is not None:
            self._recorder.caller_pcm(line)
        if self._byte_order_probe is not None:
            self._probe_byte_order(event.payload)
        return pcm

    def _queue_audio(self, io: CallIO, pcm: PCM) -> None:
        queue = io.audio_in
        if queue.full():
            queue.get_nowait()  # the agent is behind: keep the newest audio
            self.stats.inbound_dropped += 1
        queue.put_nowait(pcm)

    def _probe_byte_order(self, payload: bytes) -> None:
        """Once per L16 call: check the configured byte order against the first 0.5 s (D1)."""
        probe = self._byte_order_probe
        assert probe is not None
        probe.append(payload)
        if len(probe) < BYTE_ORDER_PROBE_FRAMES:
            return
        self._byte_order_probe = None
        audio = b"".join(probe)
        if not audio.strip(b"\x00"):
            return  # pure digital silence says nothing about byte order
        looks = detect_l16_byte_order(audio)
        if looks != self.config.l16_byte_order:
            self._log.warning(
                "inbound L16 looks %s-endian but L16_BYTE_ORDER=%s; check the setting",
                looks,
                self.config.l16_byte_order,
            )

    def _on_control(self, event: ev.InboundEvent) -> None:
        match event:
            case ev.StartEvent():
                self._on_start(event)
            case ev.StopEvent():
                self.end("stream-stopped")
            case ev.UnknownEvent(event=name):
                self._on_unknown(name)
            case _:
                if type(event) is ev.PlayedStreamEvent:
                    self.stats.checkpoints_acked += 1
                if self.io is None:
                    self._protocol_error("event-before-start", f"{type(event).__name__} before start")
                elif self.io.events.full():
                    self._protocol_error("events-overflow", "agent not reading control events")
                else:
                    self.io.events.put_nowait(event)

    def _on_unknown(self, name: str) -> None:
        """Count an unknown event by name; past ``MAX_UNKNOWN_EVENT_NAMES`` names, under "other".

        A peer chooses the names: the counter (kept in the call record) and the log lines
        stay bounded however many distinct names it sends. Each counted name logs once."""
        counts = self.stats.unknown_events
        key = name[:40]
        if key not in counts and len(counts) >= MAX_UNKNOWN_EVENT_NAMES:
            key = UNKNOWN_OTHER
        counts[key] += 1
        if counts[key] == 1:
            self._log.info("unknown event ignored", extra={"event": key})

    def _on_start(self, start: ev.StartEvent) -> None:
        if self.io is not None:
            self._protocol_error("duplicate-start", "second start on one socket ignored")
            return
        if start.call_id != self.call_id:
            # the token named one call, the stream another: refuse to mix them up
            raise CallEnded("call-id-mismatch")
        try:
            fmt = check_stream_format(
                AudioFormat.from_media_format(start.encoding, start.sample_rate, self.config.l16_byte_order)
            )
        except ValueError as exc:
            self._protocol_error("bad-media-format", str(exc))
            raise CallEnded("unsupported-media-format") from None
        self._decoder = InboundDecoder(fmt, self.config.pipeline_rate)
        if fmt.encoding == "l16":
            self._byte_order_probe = []
        self.stats.stream_id = start.stream_id
        outbound = outbound_format(fmt, self.config.playback_rate)
        self._recorder = self._open_recording(fmt, outbound)
        self.io = CallIO(
            start,
            fmt,
            config=self.config,
            outbox=self.outbox,
            stats=self.stats,
            ended=self._end_requested,
            recorder=self._recorder,
        )
        self._log.info(
            "stream started",
            extra={"encoding": fmt.encoding, "sample_rate": fmt.sample_rate},
        )
        self._tg.create_task(self._agent.run(self.io), name=f"call-{self.call_id}-agent")

    def _open_recording(self, inbound: AudioFormat, outbound: AudioFormat) -> CallAudioRecorder | None:
        """The call's recorder when recording is on (``SessionConfig.recording_dir``); a file that
        cannot be opened leaves the call unrecorded, never refused."""
        directory = self.config.recording_dir
        if directory is None:
            return None
        try:
            recorder = open_recording(
                directory, self.call_id, self._clock, inbound, outbound, writes=background_writes()
            )
        except (OSError, ValueError) as exc:
            self._log.warning("call not recorded: %s", type(exc).__name__)
            return None
        self.stats.recording = recorder.name
        return recorder

    async def _close_recording(self, recorder: CallAudioRecorder) -> None:
        """Cut at the end (queued audio the caller never heard is left out) and wait for the
        file to be on disk, held on the clock (the writes run on a thread)."""
        with self._clock.hold():
            try:
                await asyncio.wrap_future(recorder.close())
            except OSError as exc:
                self._log.warning("recording not completed: %s", type(exc).__name__)

    def _protocol_error(self, kind: str, detail: str) -> None:
        count = self.stats.protocol_errors[kind] = self.stats.protocol_errors[kind] + 1
        if count <= 3 or count % 500 == 0:
            self._log.warning("protocol error: %s", detail, extra={"kind": kind, "count": count})


def _first_reason(group: BaseExceptionGroup[CallEnded]) -> str:
    for exc in group.exceptions:
        if isinstance(exc, CallEnded):
            return exc.reason
        if isinstance(exc, BaseExceptionGroup):
            return _first_reason(exc)
    return "ended"
