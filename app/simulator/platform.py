"""The fake Vobiz: dials the app, streams the caller, plays the agent out as a phone would.

One ``FakeVobiz`` serves any number of calls. ``dial`` runs a whole call:

1. POST the answer URL with Vobiz's form fields (outbound calls add ``ALegUUID`` and
   ``ALegRequestUUID``) and valid V3/V2 signature headers;
2. parse the returned ``<Stream>``: the URL must be the element text (a ``url`` attribute is
   an error, D22); ``audioTrack="both"`` with bidirectional is refused as Vobiz does;
3. open the WebSocket, send ``start`` (IDs nested), then a ``media`` frame every 20 ms;
4. play ``playAudio`` at real-time rate; ack a ``checkpoint`` with ``playedStream`` once all
   audio before it has played; ``clearAudio`` drops the queue, voids pending checkpoints and
   answers ``clearedAudio``; ``stop`` ends the stream (``stream_audio.py``, shared with
   REST-started streams, whose audio the caller hears too);
5. end the stream after ``streamTimeout`` seconds (``StopStream``, then hang-up with 4010);
6. on hang-up close the socket (no inbound ``stop``) and POST ``Event=Hangup`` to the hangup URL.

Wall-clock fields (``Timestamp``, ``EndTime``) are ``PlatformConfig.epoch`` plus the clock's
time since the platform was made: deterministic on the virtual clock.

Everything the app sends is checked (``checks.py``); each broken rule is a protocol error.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from app.clock import Clock
from app.simulator.callee import UNANSWERED, Callee, machine_script
from app.simulator.caller import CallerRunner, HangUp, Step, WaitForAgent
from app.simulator.connect import Connector
from app.simulator.platform_config import PlatformConfig
from app.simulator.recording import PCM, CallRecording
from app.simulator.rest_bridge import RestBridge
from app.simulator.simulated_call import Listener, SimulatedCall
from app.simulator.vobiz_answer import signature_headers
from app.simulator.vobiz_rest_state import FakeVobizState

__all__ = ["FakeVobiz", "PlatformConfig", "SimulatedCall"]


class FakeVobiz:
    def __init__(self, connector: Connector, clock: Clock, config: PlatformConfig | None = None) -> None:
        self.connector = connector
        self.clock = clock
        self.config = config or PlatformConfig()
        self.calls: dict[str, SimulatedCall] = {}
        self.finished: list[CallRecording] = []  # calls placed over the REST API, once over
        self.outbound_steps: list[Step] = [WaitForAgent(), HangUp()]  # the callee of a REST call
        self.callees: dict[str, Callee] = {}  # by the number's digits: who answers (``callee.py``)
        self.rest: FakeVobizState | None = None
        self._background: asyncio.TaskGroup | None = None
        self._origin = clock.now()

    def wall_time(self) -> float:
        """Unix seconds: ``config.epoch`` advanced by the clock since this platform was made."""
        return self.config.epoch + self.clock.now() - self._origin

    def wall_stamp(self) -> str:
        """``YYYY-MM-DD HH:MM:SS`` (UTC, no zone given), the form of ``Timestamp``/``EndTime``."""
        return datetime.fromtimestamp(self.wall_time(), UTC).strftime("%Y-%m-%d %H:%M:%S")

    def attach_rest(self, state: FakeVobizState) -> None:
        """Let the fake REST API act on this platform's calls (see ``rest_bridge``)."""
        self.rest = state
        RestBridge(self, state)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[FakeVobiz]:
        """Own the tasks of calls placed over the REST API (Make Call) while inside."""
        async with asyncio.TaskGroup() as tg:
            self._background = tg
            try:
                yield self
            finally:
                self._background = None

    def place_outbound(self, answer_url: str, **kwargs: Any) -> None:
        """Start an outbound call (Make Call); its recording lands in ``finished``."""
        if self._background is None:
            raise RuntimeError("outbound calls need `async with FakeVobiz.serving()`")

        request: dict[str, Any] = kwargs.pop("request", None) or {}
        digits = "".join(ch for ch in str(kwargs.get("to_number", "")) if ch.isdigit())
        callee = self.callees.get(digits)
        answer = callee.next_answer() if callee is not None else "person"
        steps: list[Step] = list(self.outbound_steps)
        audio: dict[int, PCM] = {}
        if callee is not None and answer == "person":
            steps = list(callee.steps)
        elif callee is not None and answer == "machine":
            steps, audio = machine_script(callee, self.config.recording_rate)

        async def run() -> None:
            if callee is not None and answer in UNANSWERED:
                await self._unanswered(answer, callee, kwargs)
                return
            rec = await self.dial(answer_url, steps, audio, direction="outbound", **kwargs)
            self.finished.append(rec)

        tg = self._background
        tg.create_task(run(), name=f"vobiz-outbound-{kwargs.get('call_id', '')}")
        if callee is not None and answer == "machine" and request.get("machine_detection"):
            tg.create_task(self._detect_machine(callee, request, kwargs), name="vobiz-machine-detection")

    async def _unanswered(self, answer: str, callee: Callee, call: dict[str, Any]) -> None:
        """Ring, then end unanswered: the call's record says why; its hang-up URL is told."""
        await self.clock.sleep(callee.ring_s)
        status, cause, code = UNANSWERED[answer]
        call_id = str(call["call_id"])
        if self.rest is not None and call_id in self.rest.calls:
            self.rest.finish_call(call_id, cause=cause, source="Callee", answered=False, duration=0.0)
        url = call.get("hangup_url")
        if not url:
            return
        form = {
            "CallUUID": call_id, "From": str(call.get("from_number", "")),
            "To": str(call.get("to_number", "")), "Direction": "outbound", "Event": "Hangup",
            "CallStatus": status, "HangupCause": cause,
            "HangupCauseCode": str(code), "HangupSource": "Callee", "Duration": "0", "BillDuration": "0",
            "EndTime": self.wall_stamp(), "ALegUUID": call_id, "ALegRequestUUID": call_id,
        }  # fmt: skip
        await self.connector.request("POST", str(url), form, self._signed(str(url)))

    async def _detect_machine(self, callee: Callee, request: dict[str, Any], call: dict[str, Any]) -> None:
        """Vobiz's answering-machine detection: the verdict ``detect_after_s`` after the answer,
        POSTed to ``machine_detection_url``; with ``machine_detection=hangup`` the call ends."""
        limit = float(request.get("machine_detection_time") or 5000) / 1000
        await self.clock.sleep(min(callee.detect_after_s, limit))
        call_id = str(call["call_id"])
        if call_id not in self.calls:
            return
        mode = str(request.get("machine_detection")).lower()
        url = request.get("machine_detection_url")
        if url:
            form = {
                "CallUUID": call_id, "RequestUUID": call_id, "ALegUUID": call_id, "ALegRequestUUID": call_id,
                "From": str(call.get("from_number", "")), "To": str(call.get("to_number", "")),
                "Direction": "outbound", "Event": "MachineDetection", "CallStatus": "in-progress",
                "Machine": "true", "IfMachine": "hangup" if mode == "hangup" else "continue",
            }  # fmt: skip
            method = str(request.get("machine_detection_method") or "POST")
            await self.connector.request(method, str(url), form, self._signed(str(url)))
        if mode == "hangup":
            self.hang_up(call_id, "vobiz")

    def _signed(self, url: str) -> dict[str, str]:
        return signature_headers(url, self.config.auth_token) if self.config.sign_webhooks else {}

    async def dial(
        self,
        answer_url: str,
        steps: list[Step],
        audio: dict[int, PCM],
        *,
        from_number: str = "14155550100",
        to_number: str = "14155550199",
        direction: str = "inbound",
        call_id: str | None = None,
        listener: Listener | None = None,
        answer_method: str | None = None,
        hangup_url: str | None = None,
    ) -> CallRecording:
        """Run one call to its end and return what was recorded."""
        call = SimulatedCall(
            self, call_id or str(uuid.uuid4()), answer_url, from_number, to_number, direction, listener
        )
        call.answer_method = answer_method or self.config.answer_method
        call.hangup_url = hangup_url or self.config.hangup_url or answer_url
        self.calls[call.call_id] = call
        if self.rest is not None and call.call_id in self.rest.calls:  # placed by Make Call
            self.rest.calls[call.call_id].status = "in-progress"
        elif self.rest is not None:
            self.rest.add_live_call(call.call_id, from_number=from_number, to_number=to_number,
                                    direction=direction)  # fmt: skip
        rec: CallRecording | None = None
        try:
            rec = await call.run(CallerRunner(steps, audio, self.config.recording_rate // 50))
            return rec
        finally:
            del self.calls[call.call_id]
            if self.rest is not None and self.rest.calls[call.call_id].is_live:
                self.rest.end_call(call.call_id, source="Caller")
            if self.rest is not None and rec is not None:
                self.rest.finish_call(
                    call.call_id, cause="NORMAL_CLEARING", answered=True, duration=rec.duration
                )

    def hang_up(self, call_id: str, by: str = "api") -> bool:
        """End a live call from outside (the REST API's hang-up)."""
        call = self.calls.get(call_id)
        if call is None:
            return False
        call.request_end("hung up over the REST API", by, 4000)
        return True
