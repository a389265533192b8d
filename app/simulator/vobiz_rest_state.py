"""In-memory state of the fake Vobiz REST API: calls, streams, received requests, injected faults.

The server runs on its own thread (tests use ``tests.servers.serve_in_thread``) while a test
inspects this object from another thread, so the shared lists are guarded by a lock.
Objects handed out are the live ones: read them, don't mutate them from a test.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ACTIVE = "in-progress"
COMPLETED = "completed"
LIVE = "in-progress"
RINGING = "ringing"


async def _noop(*_args: Any) -> None:
    return None


def iso(moment: datetime | None) -> str | None:
    """``2026-04-24T09:25:00Z`` (the documented timestamp form) or None."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeCall:
    """One call. ``status``: ``ringing`` | ``in-progress`` | ``completed``."""

    call_uuid: str
    from_number: str = ""
    to_number: str = ""
    direction: str = "inbound"
    status: str = LIVE
    answer_url: str | None = None
    answer_method: str = "POST"
    hangup_url: str | None = None
    hangup_method: str = "POST"
    hangup_source: str | None = None  # "API" after a REST hangup (D28)
    request: dict[str, Any] = field(default_factory=dict)  # the Make Call body, outbound only
    transfers: list[dict[str, Any]] = field(default_factory=list)  # each transfer body, in order
    dtmf: list[dict[str, Any]] = field(default_factory=list)  # each DTMF body, in order
    initiated: datetime | None = None
    answer_time: datetime | None = None
    end_time: datetime | None = None
    hangup_cause: str = ""
    duration: float = 0.0

    def to_api(self) -> dict[str, Any]:
        """The Call object (CDR) of an ended call (PROTOCOL.md §8.4; the call-object fields)."""
        stamp = "%Y-%m-%d %H:%M:%S"
        return {
            "call_uuid": self.call_uuid,
            "call_direction": self.direction,
            "from_number": self.from_number,
            "to_number": self.to_number,
            "call_duration": int(self.duration),
            "bill_duration": int(self.duration),
            "hangup_cause_name": self.hangup_cause,
            "hangup_source": self.hangup_source,
            "initiation_time": self.initiated.strftime(stamp) if self.initiated else None,
            "answer_time": self.answer_time.strftime(stamp) if self.answer_time else None,
            "end_time": self.end_time.strftime(stamp) if self.end_time else None,
        }

    @property
    def is_live(self) -> bool:
        return self.status == LIVE


@dataclass
class FakeStream:
    """One REST audio stream. ``status``: ``in-progress`` | ``completed`` | ``failed``."""

    stream_id: str
    call_uuid: str
    service_url: str
    audio_track: str
    bidirectional: bool
    content_type: str
    stream_timeout: int
    status_callback_url: str | None
    status_callback_method: str
    extra_headers: str | None
    start_time: datetime
    status: str = ACTIVE
    end_time: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE

    @property
    def sampling_rate(self) -> int:
        _, _, rate = self.content_type.partition(";rate=")
        return int(rate) if rate.isdigit() else 8000

    def to_api(self, auth_id: str) -> dict[str, Any]:
        """The documented Stream object (mid revision field set)."""
        return {
            "stream_id": self.stream_id,
            "call_uuid": self.call_uuid,
            "service_url": self.service_url,
            "audio_track": self.audio_track,
            "bidirectional": self.bidirectional,
            "content_type": self.content_type,
            "sampling_rate": self.sampling_rate,
            "stream_timeout": self.stream_timeout,
            "status_callback_url": self.status_callback_url,
            "status_callback_method": self.status_callback_method,
            "status": self.status,
            "start_time": iso(self.start_time),
            "end_time": iso(self.end_time),
            "resource_uri": f"/api/v1/Account/{auth_id}/Call/{self.call_uuid}/Stream/{self.stream_id}/",
        }


@dataclass(frozen=True)
class RecordedRequest:
    """A request as received. ``path`` is decoded, ``raw_path`` as sent; header names lowercase."""

    method: str
    path: str
    raw_path: str
    query: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class _Fault:
    remaining: int
    status: int | None
    body: Any
    headers: Mapping[str, str]
    delay: float
    method: str | None
    path_contains: str | None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_contains is None or self.path_contains in path
        )


StreamHook = Callable[[FakeStream], Awaitable[None]]
CallHook = Callable[[FakeCall], Awaitable[None]]
HangupHook = Callable[[str], Awaitable[None]]
TransferHook = Callable[[FakeCall, Mapping[str, Any]], Awaitable[None]]


class FakeVobizState:
    """Calls, streams, the request log and fault injection behind ``create_fake_rest_app``.

    Hooks are awaited inside the request, before the response is sent; a later call
    emulator uses them to open or close the media WebSocket (spawn a task for slow work).
    ``on_transfer`` gets the call and the request body; REST streams are left running.
    ``auto_answer``: calls placed with Make Call start ``in-progress`` (else ``ringing``).
    """

    def __init__(
        self,
        *,
        now: Callable[[], datetime] | None = None,
        auto_answer: bool = True,
        on_stream_started: StreamHook = _noop,
        on_stream_stopped: StreamHook = _noop,
        on_hangup: HangupHook = _noop,
        on_transfer: TransferHook = _noop,
        on_call_fired: CallHook = _noop,
    ) -> None:
        self.now = now or (lambda: datetime.now(UTC))
        self.auto_answer = auto_answer
        self.on_stream_started = on_stream_started
        self.on_stream_stopped = on_stream_stopped
        self.on_hangup = on_hangup
        self.on_transfer = on_transfer
        self.on_call_fired = on_call_fired
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0  # requests being served (a delayed one outlives its client's timeout)
        self.calls: dict[str, FakeCall] = {}
        self.streams: dict[str, FakeStream] = {}
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []

    # ── setup and inspection (tests, emulator) ──

    def add_live_call(
        self,
        call_uuid: str | None = None,
        *,
        from_number: str = "+918071387423",
        to_number: str = "+14155551234",
        direction: str = "inbound",
    ) -> FakeCall:
        """Register an answered call (as if Vobiz had just run ``answer_url``)."""
        return self.add_call(
            FakeCall(
                call_uuid=call_uuid or str(uuid.uuid4()),
                from_number=from_number,
                to_number=to_number,
                direction=direction,
            )
        )

    def add_call(self, call: FakeCall) -> FakeCall:
        """Register a call in any state (replaces one with the same uuid)."""
        with self._lock:
            self.calls[call.call_uuid] = call
        return call

    def end_call(self, call_uuid: str, *, source: str = "Callee") -> list[FakeStream]:
        """Mark a call completed (caller hung up) and stop its streams; returns those stopped."""
        call = self.calls[call_uuid]
        call.status = COMPLETED
        call.hangup_source = call.hangup_source or source
        return self.stop_streams(call_uuid)

    def finish_call(
        self, call_uuid: str, *, cause: str, answered: bool, duration: float, source: str | None = None
    ) -> None:
        """Fill the ended call's CDR: its hang-up cause, whether it was answered, its length."""
        call = self.calls[call_uuid]
        call.status = COMPLETED
        call.hangup_source = call.hangup_source or source
        call.hangup_cause = call.hangup_cause or cause
        call.end_time = self.now()
        call.duration = duration
        if answered and call.answer_time is None:
            call.answer_time = call.initiated or call.end_time

    def streams_of(self, call_uuid: str) -> list[FakeStream]:
        """Every stream of a call (active and stopped), oldest first."""
        with self._lock:
            return [s for s in self.streams.values() if s.call_uuid == call_uuid]

    def active_streams(self, call_uuid: str | None = None) -> list[FakeStream]:
        with self._lock:
            return [s for s in self.streams.values() if s.is_active and call_uuid in (None, s.call_uuid)]

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the request log, oldest first (including refused and failed requests)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Logged requests with this method and exact decoded path (None = any)."""
        return [r for r in self.requests if method in (None, r.method) and path in (None, r.path)]

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Answer the next ``n`` matching requests with ``status`` (before auth, like a proxy).

        ``body`` None → the generic error envelope; a str is sent as text/plain.
        """
        self._add_fault(_Fault(n, status, body, headers or {}, 0.0, method, path_contains))

    def delay_next(
        self, n: int, seconds: float, *, method: str | None = None, path_contains: str | None = None
    ) -> None:
        """Hold the next ``n`` matching requests for ``seconds`` before serving them normally."""
        self._add_fault(_Fault(n, None, None, {}, seconds, method, path_contains))

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until no request is being served (False if ``timeout`` s passed first).

        A request the fake delays goes on after its client gave up; a test that injected a
        delay waits here, so the late request cannot change the state of the next test.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def reset(self) -> None:
        """Forget calls, streams, requests and pending faults (hooks are kept)."""
        with self._lock:
            self.calls.clear()
            self.streams.clear()
            self._requests.clear()
            self._faults.clear()

    # ── used by the app ──

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def request_started(self) -> None:
        with self._lock:
            self._in_flight += 1

    def request_finished(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def take_fault(self, method: str, path: str) -> _Fault | None:
        """The first pending fault matching this request, consuming one use of it."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def new_stream(self, **fields: Any) -> FakeStream:
        stream = FakeStream(stream_id=str(uuid.uuid4()), start_time=self.now(), **fields)
        with self._lock:
            self.streams[stream.stream_id] = stream
        return stream

    def stop_stream(self, stream: FakeStream) -> None:
        stream.status = COMPLETED
        stream.end_time = self.now()

    def stop_streams(self, call_uuid: str) -> list[FakeStream]:
        stopped = self.active_streams(call_uuid)
        for stream in stopped:
            self.stop_stream(stream)
        return stopped

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining > 0:
            with self._lock:
                self._faults.append(fault)
