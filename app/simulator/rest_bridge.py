"""The fake REST API's effects on live calls: REST-started streams really open a WebSocket to
``service_url``, and hang-up, transfer and make-call act on the emulator's calls.

A REST-started stream speaks the same protocol as ``<Stream>`` (PROTOCOL.md §6): ``start``, a
``media`` frame per 20 ms, and, when bidirectional, the same playout (``stream_audio.py``): its
audio is mixed into what the caller hears, checkpoints are acked once played, ``clearAudio`` is
answered. ``StartStream``/``PlayedStream``/``StopStream`` go to its ``status_callback_url``;
``StopStream`` only when Vobiz stopped it (REST DELETE, WS ``stop``, ``stream_timeout``), not
when the call ended (D18).

The fake REST app must run on the emulator's event loop (in-process ASGI, or a uvicorn task
on the same loop): its hooks call straight into the calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from app.audio.formats import AudioFormat
from app.audio.resample import StreamResampler
from app.clock import Clock
from app.simulator.connect import Connector, MediaSocket, SocketRefused
from app.simulator.platform_config import PlatformConfig
from app.simulator.recording import PCM
from app.simulator.stream_audio import CallSide, StatusTarget, StreamAudio, media_frame, start_frame
from app.simulator.vobiz_rest_state import FakeCall, FakeStream, FakeVobizState
from app.simulator.wire_audio import encode_wire


class Platform(Protocol):
    """What a call and the REST bridge use of the fake platform (``FakeVobiz`` is one)."""

    @property
    def config(self) -> PlatformConfig: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def connector(self) -> Connector: ...

    @property
    def rest(self) -> FakeVobizState | None: ...

    @property
    def calls(self) -> Mapping[str, LiveCall]:
        """The live calls by call id."""

    def wall_stamp(self) -> str:
        """The platform's wall clock as ``Timestamp``/``EndTime`` text."""

    def hang_up(self, call_id: str, by: str = "api") -> bool:
        """End a live call from outside; False if it is not live."""

    def place_outbound(self, answer_url: str, **kwargs: Any) -> None:
        """Start an outbound call (Make Call)."""


class LiveCall(CallSide, Protocol):
    """What the REST bridge uses of a live call (``SimulatedCall`` is one)."""

    @property
    def call_id(self) -> str: ...

    @property
    def platform(self) -> Platform: ...

    @property
    def forks(self) -> dict[str, ForkStream]:
        """The call's REST-started streams by stream id, mutated by the bridge."""

    def now(self) -> float:
        """Seconds since the call started."""

    def signed(self, url: str) -> dict[str, str]:
        """Signature headers for a webhook to ``url``."""

    def xml_request_form(self, event: str) -> dict[str, str]:
        """The fields of a request that fetches VobizXML."""

    def request_end(self, reason: str, by: str, code: int = 4000) -> None:
        """End the call at once."""

    def runs_xml(self, document: str) -> bool:
        """Run a transfer's XML of Wait/Speak/Hangup verbs (True), or refuse it (False)."""


class ForkStream:
    """A stream started over REST on a live call: its own socket, fed the caller's audio."""

    def __init__(self, call: LiveCall, stream: FakeStream) -> None:
        self.call = call
        self.stream = stream
        self.fmt = AudioFormat.from_content_type(stream.content_type)
        self.target = StatusTarget(
            stream.stream_id, stream.status_callback_url, stream.status_callback_method
        )
        self._resampler = StreamResampler(call.cfg.recording_rate, self.fmt.sample_rate)
        self._sock: MediaSocket | None = None
        self._chunk = 0
        self._opened_at = 0.0
        self.audio: StreamAudio | None = None  # set once the socket is open
        self.ended = False

    async def open(self) -> None:
        call = self.call
        try:
            sock = self._sock = await call.platform.connector.open_socket(self.stream.service_url)
        except SocketRefused as exc:
            call.violation("fork-socket-refused", f"REST stream socket refused (HTTP {exc.status})")
            await self.end(callback=False)
            return
        self._opened_at = call.now()
        audio = self.audio = StreamAudio(
            call,
            self.target,
            accepted=self.fmt,
            bidirectional=self.stream.bidirectional,
            send=self._send,
            label="REST stream: ",
        )
        await self._send(start_frame(call.call_id, self.stream.stream_id, call.cfg.account_id, self.fmt))
        if self.ended:  # the app closed the socket at once
            return
        call.event("socket_open", stream=self.stream.stream_id, via="rest")
        call.spawn(self._run(sock, audio), name=f"vobiz-fork-{self.stream.stream_id}")

    async def _run(self, sock: MediaSocket, audio: StreamAudio) -> None:
        await self.call.status(self.target, "StartStream", ServiceURL=self.stream.service_url)
        stopped = await audio.serve(sock)
        await self.end(callback=stopped)

    async def feed(self, pcm: PCM) -> None:
        """Send one 20 ms frame of caller audio (at the recording rate)."""
        if self.ended or self._sock is None:
            return
        if self.call.now() - self._opened_at >= self.stream.stream_timeout - 1e-9:
            await self.end(callback=True)  # Vobiz stops the stream at stream_timeout
            return
        self._chunk += 1
        payload = encode_wire(self._resampler.process(pcm), self.fmt.encoding, self.fmt.byte_order)
        await self._send(media_frame(self.stream.stream_id, self._chunk, payload))

    async def _send(self, text: str) -> None:
        sock = self._sock
        if sock is None or sock.close_code is not None:
            return
        try:
            await sock.send(text)
        except ConnectionError:
            await self.end(callback=False)

    async def end(self, *, callback: bool) -> None:
        """Stop this stream (once): close its socket, mark it stopped in the REST state and,
        with ``callback`` (Vobiz stopped it), post ``StopStream``."""
        if self.ended:
            return
        self.ended = True
        self.call.forks.pop(self.stream.stream_id, None)
        await self.close()
        rest = self.call.platform.rest
        if rest is not None and self.stream.is_active:
            rest.stop_stream(self.stream)
        if callback:
            await self.call.status(self.target, "StopStream")

    async def close(self) -> None:
        if self._sock is not None and self._sock.close_code is None:
            await self._sock.close(1000)


class RestBridge:
    """Wires ``FakeVobizState``'s hooks to a platform (``FakeVobiz``)."""

    def __init__(self, platform: Platform, state: FakeVobizState) -> None:
        self.platform = platform
        self.state = state
        state.on_hangup = self._on_hangup
        state.on_stream_started = self._on_stream_started
        state.on_stream_stopped = self._on_stream_stopped
        state.on_transfer = self._on_transfer
        state.on_call_fired = self._on_call_fired

    async def _on_hangup(self, call_uuid: str) -> None:
        self.platform.hang_up(call_uuid, "api")

    async def _on_stream_started(self, stream: FakeStream) -> None:
        call = self.platform.calls.get(stream.call_uuid)
        if call is not None:
            fork = ForkStream(call, stream)
            call.forks[stream.stream_id] = fork
            await fork.open()

    async def _on_stream_stopped(self, stream: FakeStream) -> None:
        call = self.platform.calls.get(stream.call_uuid)
        fork = call.forks.get(stream.stream_id) if call is not None else None
        if fork is not None:
            # stopped over REST: StopStream; stopped because the call hung up: none (D18)
            fake = self.state.calls.get(stream.call_uuid)
            await fork.end(callback=fake is not None and fake.is_live)

    async def _on_transfer(self, fake: FakeCall, body: Mapping[str, Any]) -> None:
        call = self.platform.calls.get(fake.call_uuid)
        if call is None or not body.get("aleg_url"):
            return
        url, method = str(body["aleg_url"]), str(body.get("aleg_method") or "POST")
        form = call.xml_request_form("Transfer")
        reply = await self.platform.connector.request(method, url, form, call.signed(url))
        call.event("status_callback", event="Transfer", status=reply.status, url=url)
        if reply.status == 200 and call.runs_xml(reply.text):
            return  # the new XML (``<Wait>``, ``<Speak>``, ``<Hangup>``) now runs on the call
        call.request_end(f"transferred to {url}", "api", 4000)

    async def _on_call_fired(self, fake: FakeCall) -> None:
        if fake.answer_url is None:
            return
        self.platform.place_outbound(
            fake.answer_url,
            call_id=fake.call_uuid,
            from_number=fake.from_number,
            to_number=fake.to_number,
            answer_method=fake.answer_method,
            hangup_url=fake.hangup_url,
            request=fake.request,
        )


async def close_forks(forks: Mapping[str, ForkStream]) -> None:
    await asyncio.gather(*(fork.close() for fork in forks.values()))
