"""The fake REST API's effects on live calls: REST-started streams really open a WebSocket to
``service_url``, and hang-up, transfer and make-call act on the emulator's calls.

The fake REST app must run on the emulator's event loop (in-process ASGI, or a uvicorn task
on the same loop): its hooks call straight into the calls.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from app.audio.codec import encode
from app.audio.formats import AudioFormat
from app.audio.resample import StreamResampler
from app.simulator import checks
from app.simulator.connect import MediaSocket, SocketRefused
from app.simulator.recording import PCM
from app.simulator.vobiz_rest_state import FakeCall, FakeStream, FakeVobizState

if TYPE_CHECKING:
    from app.simulator.platform import FakeVobiz, SimulatedCall


class ForkStream:
    """A stream started over REST on a live call: its own socket, fed the caller's audio."""

    def __init__(self, call: SimulatedCall, stream: FakeStream) -> None:
        self.call = call
        self.stream = stream
        self.fmt = AudioFormat.from_content_type(stream.content_type)
        self._resampler = StreamResampler(call.cfg.recording_rate, self.fmt.sample_rate)
        self._sock: MediaSocket | None = None
        self._chunk = 0
        self.received: list[checks.Command] = []

    async def open(self) -> None:
        call = self.call
        try:
            self._sock = await call.platform.connector.open_socket(self.stream.service_url)
        except SocketRefused as exc:
            call.violation("fork-socket-refused", f"REST stream socket refused (HTTP {exc.status})")
            return
        start = {
            "sequenceNumber": 0,
            "event": "start",
            "start": {
                "callId": call.call_id,
                "streamId": self.stream.stream_id,
                "accountId": call.cfg.account_id,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": self.fmt.mime, "sampleRate": self.fmt.sample_rate},
            },
            "extra_headers": "{}",
        }
        await self._sock.send(json.dumps(start))
        call.event("socket_open", stream=self.stream.stream_id, via="rest")
        call.spawn(self._read(), name=f"vobiz-fork-{self.stream.stream_id}")

    async def feed(self, pcm: PCM) -> None:
        """Send one 20 ms frame of caller audio (at the recording rate)."""
        sock = self._sock
        if sock is None or sock.close_code is not None:
            return
        self._chunk += 1
        payload = base64.b64encode(encode(self._resampler.process(pcm), self.fmt)).decode()
        frame = {
            "sequenceNumber": self._chunk,
            "streamId": self.stream.stream_id,
            "event": "media",
            "media": {"track": "inbound", "timestamp": str(self._chunk * 20), "chunk": self._chunk,
                      "payload": payload},
        }  # fmt: skip
        try:
            await sock.send(json.dumps(frame))
        except ConnectionError:
            await self.close()

    async def _read(self) -> None:
        sock = self._sock
        assert sock is not None
        while (frame := await sock.recv()) is not None:
            command = checks.check_command(
                frame,
                stream_id=self.stream.stream_id,
                accepted=self.fmt,
                bidirectional=self.stream.bidirectional,
            )
            if isinstance(command, checks.Violation):
                self.call.violation(command.rule, f"REST stream: {command.detail}")
            else:
                self.received.append(command)

    async def close(self) -> None:
        if self._sock is not None and self._sock.close_code is None:
            await self._sock.close(1000)


class RestBridge:
    """Wires ``FakeVobizState``'s hooks to a ``FakeVobiz``."""

    def __init__(self, platform: FakeVobiz, state: FakeVobizState) -> None:
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
        fork = call.forks.pop(stream.stream_id, None) if call is not None else None
        if fork is not None:
            await fork.close()

    async def _on_transfer(self, fake: FakeCall, body: Mapping[str, Any]) -> None:
        call = self.platform.calls.get(fake.call_uuid)
        if call is None or not body.get("aleg_url"):
            return
        url, method = str(body["aleg_url"]), str(body.get("aleg_method") or "POST")
        form = {**call.form, "CallStatus": "in-progress", "Event": "Transfer"}
        reply = await self.platform.connector.request(method, url, form, call.signed(url))
        call.event("status_callback", event="Transfer", status=reply.status, url=url)
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
        )


async def close_forks(forks: Mapping[str, ForkStream]) -> None:
    await asyncio.gather(*(fork.close() for fork in forks.values()))
