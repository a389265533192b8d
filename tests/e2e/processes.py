"""The service as a real process on a free 127.0.0.1 port, for the signal and worker tests, and an
echo call over the Vobiz media protocol."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

from app.audio.formats import AudioFormat
from app.config import Settings
from app.records.record import CallRecord
from app.records.store import CallStore
from tests.e2e.test_media_socket import media_frame, start_frame
from tests.servers import ROOT, free_port

MULAW = AudioFormat("mulaw", 8000)
SECRET = "test-secret-0123456789"  # tests.e2e.test_media_socket's: its ``token_for`` works here


@dataclass(frozen=True, slots=True)
class Reply:
    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def get(self, path: str) -> Reply:
        """``path`` on a fresh connection (so that any worker may take it). ``http.client``:
        an ``httpx.Client`` per request costs ~0.1 s of CPU (its TLS context) on a busy machine."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return Reply(response.status, response.read())
        finally:
            connection.close()

    def until(self, path: str, status: int, tries: int = 200) -> Reply:
        """Poll ``path`` until it answers ``status`` (0.05 s apart, ``tries`` times at most). A
        connection reset is a try that failed: a draining worker with no call left exits, and a
        connection the shared port gave it just then is reset while the other worker serves on."""
        for _ in range(tries):
            try:
                response = self.get(path)
            except ConnectionError:
                time.sleep(0.05)
                continue
            if response.status_code == status:
                return response
            time.sleep(0.05)
        raise AssertionError(f"{path} never answered {status}")

    def exited(self, within: float) -> int:
        """The exit code, once the process has exited by itself within ``within`` seconds."""
        return self.proc.wait(timeout=within)

    async def record(self, call_id: str) -> CallRecord:
        store = CallStore.from_settings(Settings(_env_file=None, data_dir=self.data_dir))
        try:
            record = await store.get(call_id)
        finally:
            await store.aclose()
        assert record is not None
        return record


@contextmanager
def service(tmp_path: Path, *args: str, **env: str) -> Iterator[Service]:
    """``voice-agent serve ARGS`` (echo agent, signatures off, ``SECRET``) until it answers
    ``/healthz``; killed (its whole process group) when the test ends."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    environ.update(
        PUBLIC_URL=f"https://agent.example.com:{port}",
        PROVIDERS="echo",
        STREAM_TOKEN_SECRET=SECRET,
        PROMPTS_DIR=str(ROOT / "prompts"),
        DATA_DIR=str(tmp_path / "data"),
        SIGNATURE_MODE="off",
        LOG_FORMAT="text",
    )
    environ.update(env)
    environ = {k: v for k, v in environ.items() if v}  # an empty value: the setting is unset
    argv = [str(Path(sys.executable).parent / "voice-agent"), "serve", "--host", "127.0.0.1", "--port"]
    proc = subprocess.Popen(
        [*argv, str(port), *args], env=environ, cwd=tmp_path, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    running = Service(proc, port, tmp_path / "data")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                running.get("/healthz")
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(proc.stdout.read().decode() if proc.stdout else "") from None
                assert time.monotonic() < deadline, "the service did not come up in 60 s"
                time.sleep(0.1)
        yield running
    finally:
        if proc.poll() is None:
            workers = children(proc.pid)  # in process groups of their own
            os.killpg(proc.pid, signal.SIGKILL)
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        proc.communicate(timeout=10)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def children(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (the supervisor's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.append(int(entry.name))
    return found


async def start_call(ws: ClientConnection, call_id: str) -> None:
    await ws.send(start_frame(call_id, MULAW))


async def echoed(ws: ClientConnection, seq: int) -> dict[str, Any]:
    """Send one frame of caller audio; the echo's next ``playAudio``."""
    await ws.send(media_frame(b"\x10" * 160, seq))
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message["event"] == "playAudio":
            return dict(message)
