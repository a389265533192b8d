"""Graceful drain of ``voice-agent serve`` (one process), driven by real signals: SIGTERM makes
``/readyz`` 503 while ``/healthz`` stays 200, live calls go on and the process exits once they
have ended; past ``DRAIN_TIMEOUT`` a call is ended (``shutdown``); a second SIGTERM stops it at once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as connect_sync

from tests.e2e.processes import MULAW, echoed, service, start_call
from tests.e2e.test_media_socket import start_frame, token_for


def test_readyz_turns_503_on_sigterm_while_healthz_stays_200(tmp_path: Path) -> None:
    with service(tmp_path, DRAIN_TIMEOUT="60") as svc:
        ready = svc.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        # a live call holds the process: it drains instead of exiting
        with connect_sync(f"{svc.ws}/vobiz/media/{token_for('c-ready')}") as ws:
            ws.send(start_frame("c-ready", MULAW))
            svc.until("/healthz", 200)
            svc.signal(signal.SIGTERM)
            draining = svc.until("/readyz", 503)
            assert draining.json()["status"] == "draining"
            health = svc.get("/healthz")
            assert health.status_code == 200
            assert health.json() == {"status": "ok", "active_calls": 1}
            assert svc.proc.poll() is None
            ws.close()
        assert svc.exited(within=10) == 0


async def test_a_live_call_is_served_after_sigterm_and_the_process_exits_when_it_ends(tmp_path: Path) -> None:
    with service(tmp_path, DRAIN_TIMEOUT="60") as svc:
        async with connect(f"{svc.ws}/vobiz/media/{token_for('c-live')}") as ws:
            await start_call(ws, "c-live")
            assert (await echoed(ws, 1))["event"] == "playAudio"
            svc.signal(signal.SIGTERM)
            svc.until("/readyz", 503)
            for seq in range(2, 30):  # 0.5 s more of the call, every frame echoed
                assert (await echoed(ws, seq))["event"] == "playAudio"
            assert svc.proc.poll() is None
        # the caller hung up: nothing is live, the process exits by itself
        assert svc.exited(within=10) == 0
        record = await svc.record("c-live")
        assert record.end_reason == "socket-closed"


async def test_past_drain_timeout_a_live_call_is_ended_as_shutdown(tmp_path: Path) -> None:
    with service(tmp_path, DRAIN_TIMEOUT="1") as svc:
        async with connect(f"{svc.ws}/vobiz/media/{token_for('c-late')}") as ws:
            await start_call(ws, "c-late")
            await echoed(ws, 1)
            svc.signal(signal.SIGTERM)
            svc.until("/readyz", 503)
            with pytest.raises(ConnectionClosed) as closed:
                await talk(ws, frames=500)  # up to 10 s of audio; the drain ends the call after ~1 s
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1000  # closed by the service, normally
        assert svc.exited(within=10) == 0
        record = await svc.record("c-late")
        assert (record.status, record.end_reason) == ("completed", "shutdown")


async def test_a_second_sigterm_ends_the_process_at_once(tmp_path: Path) -> None:
    with service(tmp_path, DRAIN_TIMEOUT="60") as svc:
        async with connect(f"{svc.ws}/vobiz/media/{token_for('c-kill')}") as ws:
            await start_call(ws, "c-kill")
            await echoed(ws, 1)
            svc.signal(signal.SIGTERM)
            svc.until("/readyz", 503)
            assert svc.proc.poll() is None  # the call holds the drain
            svc.signal(signal.SIGTERM)
            assert svc.exited(within=5) == -signal.SIGTERM


async def talk(ws: ClientConnection, frames: int) -> None:
    """``frames`` frames of caller audio at a caller's pace, each echoed."""
    for seq in range(2, 2 + frames):
        await echoed(ws, seq)
        await asyncio.sleep(0.02)
