"""A peer that sends ``stop`` and then drops the connection: the end is ``stream-stopped`` even
when the agent's next write fails on the dead socket before the ``stop`` has been read."""

from __future__ import annotations

from app.clock import FakeClock
from app.pipeline.echo import EchoAgent
from app.pipeline.session import CallSession, SessionConfig, TransportClosed
from tests.e2e.test_media_socket import media_frame
from tests.e2e.test_pipeline_dtmf import CALL_ID, start_frame

STOP = '{"event":"stop","streamId":"stream-1"}'


class GoneSocket:
    """Delivers start and one frame; every write fails (the peer has reset the connection);
    the ``stop`` it had sent before the reset is read a little later, then the close."""

    def __init__(self, clock: FakeClock, stop_after_s: float) -> None:
        self.clock = clock
        self.frames = [start_frame(), media_frame(b"\xff" * 160)]
        self.stop_after_s = stop_after_s
        self.writes_failed = 0
        self.stop_read = False

    async def receive(self) -> str | bytes:
        if self.frames:
            return self.frames.pop(0)
        if not self.stop_read:
            await self.clock.sleep(self.stop_after_s)  # the writer runs (and fails) first
            self.stop_read = True
            return STOP
        raise TransportClosed(1006)

    async def send(self, message: str) -> None:
        self.writes_failed += 1
        raise TransportClosed(1006)

    async def close(self, code: int = 1000) -> None:
        raise TransportClosed(1006)


async def run_call(stop_after_s: float) -> tuple[str, GoneSocket]:
    clock = FakeClock()
    socket = GoneSocket(clock, stop_after_s)
    session = CallSession(
        call_id=CALL_ID, transport=socket, agent=EchoAgent(), clock=clock, config=SessionConfig()
    )
    return await clock.run(session.run(), real_timeout=10), socket


async def test_a_stop_read_after_a_failed_write_names_the_end() -> None:
    reason, socket = await run_call(stop_after_s=0.05)
    assert socket.writes_failed >= 1  # the echo's write failed before the stop was read
    assert socket.stop_read
    assert reason == "stream-stopped"


async def test_a_reader_that_never_reaches_the_end_leaves_it_socket_closed() -> None:
    reason, socket = await run_call(stop_after_s=60.0)  # nothing more arrives within the grace
    assert socket.writes_failed >= 1
    assert not socket.stop_read
    assert reason == "socket-closed"
