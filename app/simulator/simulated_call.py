"""One call on the fake Vobiz, from the answer webhook to the hang-up callback (``SimulatedCall``).

``FakeVobiz`` (``platform.py``) makes one per call and runs it; the streams of the call
(``stream_audio.py``) and the REST API's effects on it (``rest_bridge.py``) see it through the
small protocols they declare, so neither imports this module.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

from app.audio.formats import AudioFormat
from app.audio.resample import StreamResampler
from app.simulator.callee import BEEP_TEXT
from app.simulator.caller import CallerRunner
from app.simulator.connect import MediaSocket, SocketRefused
from app.simulator.playout import mix
from app.simulator.recording import (
    PCM,
    CallRecording,
    EventKind,
    ProtocolViolation,
    TimelineEvent,
    TranscriptLine,
    TurnLatency,
)
from app.simulator.rest_bridge import ForkStream, Platform, close_forks
from app.simulator.stream_audio import StatusTarget, StreamAudio, dtmf_frame, media_frame, start_frame
from app.simulator.vobiz_answer import AnsweredStream, AnswerRefused, read_answer, signature_headers
from app.simulator.wire_audio import encode_wire

TICK = 0.02  # seconds: one media frame
_XML_VERBS = ("Wait", "Speak", "Hangup")  # what a transfer's XML may run here (after the stream)
AUDIBLE_FLOOR = 100  # int16 peak below which agent audio counts as silence (about -50 dBFS)


class _CallOver(Exception):
    """``stream_stopped``: Vobiz stopped the stream itself (WS ``stop``, ``streamTimeout``), so
    ``StopStream`` is posted (not for hang-ups or sockets closed by the app, D18)."""

    def __init__(self, reason: str, by: str, code: int = 4000, *, stream_stopped: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.by, self.code = reason, by, code
        self.stream_stopped = stream_stopped


Listener = Callable[[TimelineEvent], None]


class SimulatedCall:
    def __init__(
        self,
        platform: Platform,
        call_id: str,
        answer_url: str,
        from_number: str,
        to_number: str,
        direction: str,
        listener: Listener | None,
    ) -> None:
        self.platform = platform
        self.cfg = platform.config
        self.clock = platform.clock
        self.call_id = call_id
        self.answer_url = answer_url
        self.form = {"From": from_number, "To": to_number, "Direction": direction, "CallUUID": call_id}
        self.rec = CallRecording(call_id=call_id, sample_rate=self.cfg.recording_rate)
        self._listener = listener
        self._t0 = self.clock.now()
        self.rec.clock_origin = self._t0
        self._end: asyncio.Future[_CallOver] | None = None
        self.stream_id = str(uuid.uuid4())
        self.target = StatusTarget(self.stream_id, None)  # set from the answer's <Stream>
        self._caller: list[PCM] = []
        self._agent: list[PCM] = []
        self._audible = False
        self._turn_end: float | None = None
        self.forks: dict[str, ForkStream] = {}
        self.answer_method = self.cfg.answer_method
        self.hangup_url = answer_url
        self.beep_end: float | None = None  # when a machine callee's beep ended (``callee.py``)
        self._detached = False  # a transfer's XML runs: the stream to the app is over
        self._sock: MediaSocket | None = None
        self._speech = np.zeros(0, np.int16)  # <Speak> audio (Vobiz's own voice) still to play

    # ── bookkeeping ──

    def now(self) -> float:
        return round(self.clock.now() - self._t0, 6)

    def event(self, kind: EventKind, **detail: Any) -> None:
        item = TimelineEvent(self.now(), kind, detail)
        self.rec.events.append(item)
        if self._listener is not None:
            self._listener(item)

    def violation(self, rule: str, detail: str) -> None:
        self.rec.protocol_errors.append(ProtocolViolation(self.now(), rule, detail))
        self.event("protocol_error", rule=rule, detail=detail)

    def signed(self, url: str) -> dict[str, str]:
        """Signature headers for a webhook to ``url`` (none when signing is off)."""
        return signature_headers(url, self.cfg.auth_token) if self.cfg.sign_webhooks else {}

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as one of this call's tasks (ended with the call)."""
        self._tg.create_task(coro, name=name)

    def request_end(self, reason: str, by: str, code: int = 4000) -> None:
        if self._end is not None and not self._end.done():
            self._end.set_result(_CallOver(reason, by, code))

    def runs_xml(self, document: str) -> bool:
        """Run a transfer's ``<Wait>``/``<Speak>``/``<Hangup>`` document on this call (True);
        False for any other document (the caller ends the call as a plain transfer)."""
        try:
            root = ET.fromstring(document)
        except ET.ParseError:
            return False
        verbs = list(root)
        if (
            root.tag != "Response"
            or not verbs
            or any(v.tag not in ("Wait", "Speak", "Hangup") for v in verbs)
        ):
            return False
        self._detached = True
        self.spawn(self._run_verbs(verbs), name="vobiz-transfer-xml")
        return True

    async def _run_verbs(self, verbs: list[ET.Element]) -> None:
        if self._sock is not None and self._sock.close_code is None:
            await self._sock.close(1000)  # the transfer ends the stream (PROTOCOL.md §8.3)
        for verb in verbs:
            if verb.tag == "Wait":
                length = float(verb.get("length", "1"))
                if verb.get("beep", "false").lower() == "true":
                    waited = 0.0
                    while (self.beep_end is None or self.now() < self.beep_end) and waited < length:
                        await self.clock.sleep(TICK)
                        waited += TICK
                else:
                    await self.clock.sleep(length)
            elif verb.tag == "Speak":
                text = " ".join((verb.text or "").split())
                self.event("speak", text=text)
                self.rec.transcript.append(TranscriptLine(self.now(), "agent", text))
                seconds = max(0.5, len(text) / 15)  # about 15 characters a second
                rate = self.cfg.recording_rate
                t = np.arange(int(seconds * rate)) / rate
                voice = 0.3 * np.sin(2 * np.pi * 140 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
                self._speech = (voice * 32767).astype(np.int16)
                await self.clock.sleep(seconds)
            else:
                self.request_end("Hangup in the transfer's XML", "app", 4000)
                return
        self.request_end("End Of XML Instructions", "vobiz", 4010)

    def xml_request_form(self, event: str) -> dict[str, str]:
        """The fields of a request that fetches VobizXML (answer, transfer; PROTOCOL.md §1.1)."""
        form = {**self.form, "CallStatus": "in-progress", "Event": event}
        if self.form["Direction"] == "outbound":
            # a Make Call call is the A leg, and its request_uuid is its CallUUID (§8.1)
            form |= {"ALegUUID": self.call_id, "ALegRequestUUID": self.call_id}
        return form

    # ── the call ──

    async def run(self, caller: CallerRunner) -> CallRecording:
        self._end = asyncio.get_running_loop().create_future()
        self.event("call_started", **{k: v for k, v in self.form.items() if k in ("Direction",)})
        over = _CallOver("ended", "vobiz", 4010)
        sock: MediaSocket | None = None
        try:
            stream = await self._answer()
            fmt_in = AudioFormat(
                "l16" if stream.encoding == "l16" else "mulaw",
                stream.sample_rate,
                byte_order="big" if self.cfg.l16_byte_order == "big" else "little",
            )
            self.target = StatusTarget(
                self.stream_id, stream.status_callback_url, stream.status_callback_method
            )
            try:
                sock = self._sock = await self.platform.connector.open_socket(stream.url)
            except SocketRefused as exc:
                self.violation("socket-refused", f"the app refused the media socket (HTTP {exc.status})")
                raise _CallOver("media socket refused", "vobiz", 4010) from None
            self.event("socket_open")
            await self._send(sock, start_frame(self.call_id, self.stream_id, self.cfg.account_id, fmt_in))
            await self.status(self.target, "StartStream", ServiceURL=stream.url)
            if not stream.keep_call_alive:
                self.violation("stream-not-kept-alive", 'without keepCallAlive="true" the call hangs up')
                raise _CallOver("End Of XML Instructions", "vobiz", 4010)
            over = await self._converse(sock, stream, fmt_in, caller)
        except _CallOver as early:
            over = early
        finally:
            if sock is not None and sock.close_code is None:
                await sock.close(1000)
            await close_forks(self.forks)
        if over.stream_stopped:
            await self.status(self.target, "StopStream")
        self.event("hangup", by=over.by, reason=over.reason)
        await self._hangup_callback(over)
        return self._finish(over)

    async def _answer(self) -> AnsweredStream:
        form = self.xml_request_form("StartApp")
        headers = self.signed(self.answer_url)
        reply = await self.platform.connector.request(self.answer_method, self.answer_url, form, headers)
        if reply.status != 200:
            self.violation("answer-status", f"answer URL replied HTTP {reply.status}")
            raise _CallOver("answer URL failed", "vobiz", 4010)
        if "xml" not in reply.content_type:
            self.violation("answer-content-type", f"answer served as {reply.content_type!r}, not XML")
        try:
            stream = read_answer(reply.text)  # the fake's own reading, not the app's
        except AnswerRefused as exc:
            self.violation("answer-xml", str(exc))
            raise _CallOver("Invalid Answer XML", "vobiz", 4010) from None
        if not stream.url:
            self.violation(
                "stream-url-not-text", "the <Stream> URL must be the element text, not a url attribute"
            )
            raise _CallOver("Invalid Answer XML: no stream URL", "vobiz", 4010)
        return stream

    async def _send(self, sock: MediaSocket, text: str) -> None:
        if self._detached:
            return
        try:
            await sock.send(text)
        except ConnectionError:
            raise _CallOver("the app closed the socket", "app", 4010) from None

    async def _converse(
        self, sock: MediaSocket, stream: AnsweredStream, fmt_in: AudioFormat, caller: CallerRunner
    ) -> _CallOver:
        """Run the ticker and the reader until one of them, or ``request_end``, ends the call."""
        self._audio = StreamAudio(
            self,
            self.target,
            accepted=self.cfg.playback_format or fmt_in,
            bidirectional=stream.bidirectional,
            send=functools.partial(self._send, sock),
        )
        over: list[_CallOver] = []
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self._tick_loop(sock, stream, fmt_in, caller), name="vobiz-ticker")
                tg.create_task(self._read_loop(sock), name="vobiz-reader")
                tg.create_task(self._watch_end(), name="vobiz-watch-end")
        except* _CallOver as group:
            over.extend(e for e in group.exceptions if isinstance(e, _CallOver))
        return over[0]

    async def _watch_end(self) -> None:
        assert self._end is not None
        raise await self._end

    async def _tick_loop(
        self, sock: MediaSocket, stream: AnsweredStream, fmt_in: AudioFormat, caller: CallerRunner
    ) -> None:
        frame = self.cfg.recording_rate // 50
        to_line = StreamResampler(self.cfg.recording_rate, fmt_in.sample_rate)
        start = self.clock.now()
        max_frames = round(self.cfg.max_duration / TICK)
        stream_frames = round(stream.stream_timeout / TICK) if stream.stream_timeout else None
        n = 0
        while True:
            sides = self._sides()
            # checkpoints completed by the end of the previous tick are acknowledged now
            for side in sides:
                await side.send_acks()
            self._play_tick(sides, frame)
            tick = caller.tick(self._audible, TICK)
            if tick.hangup:
                raise _CallOver("caller hung up", "caller", 4000)
            self._on_caller(tick.started, tick.ended, tick.note)
            self._caller.append(tick.pcm)
            n += 1
            payload = encode_wire(to_line.process(tick.pcm), fmt_in.encoding, fmt_in.byte_order)
            if not self._detached:
                await self._send(sock, media_frame(self.stream_id, n, payload))
                if tick.key:  # after the tick's audio, as a key pressed during it
                    self.event("dtmf", digit=tick.key)
                    await self._send(sock, dtmf_frame(self.stream_id, n, tick.key))
            for fork in list(self.forks.values()):
                await fork.feed(tick.pcm)
            if n >= max_frames:
                raise _CallOver("maximum call duration", "vobiz", 4000)
            await self.clock.sleep(start + n * TICK - self.clock.now())
            if n == stream_frames:  # its last frame has played: Vobiz stops the stream (§1.3)
                over = "stream timeout (End Of XML Instructions)"  # no XML after <Stream>
                raise _CallOver(over, "vobiz", 4010, stream_stopped=True)

    def _sides(self) -> list[StreamAudio]:
        """Every stream whose playAudio the caller hears: the <Stream>, then REST-started ones."""
        forks = [fork.audio for fork in self.forks.values() if fork.audio is not None]
        return [self._audio, *forks]

    def _play_tick(self, sides: list[StreamAudio], frame: int) -> None:
        played = [side.play(frame) for side in sides]
        pcm = mix([p.pcm for p in played])
        if len(self._speech):  # Vobiz's own <Speak>, after a transfer
            chunk, self._speech = self._speech[:frame], self._speech[frame:]
            pcm = mix([pcm, np.pad(chunk, (0, frame - len(chunk)))])
        self._agent.append(pcm)
        if any(p.starved for p in played):
            self.rec.underruns.append(self.now())
        # audible = the tick carried agent audio above the noise floor (silence frames don't count)
        audible = any(p.audible for p in played) and int(np.abs(pcm).max()) > AUDIBLE_FLOOR
        if audible and not self._audible:
            self.event("agent_audio_start")
            if self._turn_end is not None:
                self.rec.turns.append(TurnLatency(len(self.rec.turns) + 1, self._turn_end, self.now()))
                self._turn_end = None
        elif self._audible and not audible:
            self.event("agent_audio_end")
        self._audible = audible

    def _on_caller(self, started: Any, ended: Any, note: str) -> None:
        if started is not None:
            if self._audible:
                self.event("barge_in")
            self.event("caller_speech_start", text=started.text)
            self.rec.transcript.append(TranscriptLine(self.now(), "caller", started.text))
            self._turn_end = None
        if ended is not None:
            self.event("caller_speech_end")
            if ended.text == BEEP_TEXT:
                self.beep_end = self.now() + TICK
            self._turn_end = self.now() + TICK  # the frame's last sample is on the line then
        if note:
            self.event("script_note", note=note)

    async def _read_loop(self, sock: MediaSocket) -> None:
        stopped = await self._audio.serve(sock)
        if self._detached:  # the transfer closed the stream; the call goes on with its XML
            await asyncio.Event().wait()
        if stopped:
            raise _CallOver("app sent stop (End Of XML Instructions)", "app", 4010, stream_stopped=True)
        raise _CallOver("the app closed the socket", "app", 4010)

    async def status(self, target: StatusTarget, event: str, **extra: str) -> None:
        """Send one stream status callback (§7.1) to ``target``; nothing when it has no URL."""
        url = target.url
        if not url:
            return
        form = {
            **{k: self.form[k] for k in ("From", "To", "CallUUID")},
            "Event": event,
            "StreamID": target.stream_id,
            "ParentAuthID": self.cfg.auth_id,
            "status_callback_url": url,
            "status_callback_method": target.method,
            "Timestamp": self.platform.wall_stamp(),
            **extra,
        }
        reply = await self.platform.connector.request(target.method, url, form, self.signed(url))
        detail: dict[str, Any] = {"event": event, "status": reply.status}
        if target.stream_id != self.stream_id:
            detail["stream"] = target.stream_id
        self.event("status_callback", **detail)
        if reply.status >= 400:
            self.violation("status-callback-status", f"{event} callback answered HTTP {reply.status}")

    _audio: StreamAudio
    _tg: asyncio.TaskGroup

    async def _hangup_callback(self, over: _CallOver) -> None:
        url = self.hangup_url
        source = {"caller": "Caller", "app": "Vobiz", "api": "API Request"}.get(over.by, "Vobiz")
        duration = str(int(self.now()))
        form = {
            **self.form,
            "Event": "Hangup",
            "CallStatus": "completed",
            "HangupCause": "NORMAL_CLEARING",
            "HangupCauseCode": str(over.code),
            "HangupSource": source,
            "Duration": duration,
            "BillDuration": duration,
            "EndTime": self.platform.wall_stamp(),
        }
        reply = await self.platform.connector.request("POST", url, form, self.signed(url))
        self.event("status_callback", event="Hangup", status=reply.status)
        if reply.status >= 400:
            self.violation("hangup-callback-status", f"hangup callback answered HTTP {reply.status}")

    def _finish(self, over: _CallOver) -> CallRecording:
        rec = self.rec
        empty = np.zeros(0, np.int16)
        rec.caller = np.concatenate(self._caller) if self._caller else empty
        rec.agent = np.concatenate(self._agent) if self._agent else empty
        rec.duration = self.now()
        rec.end_reason = over.reason
        return rec
