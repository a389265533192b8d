"""``serve --workers N``: N worker processes on one port, and a small supervisor over them.

The supervisor binds the socket once and starts N workers (spawned interpreters), each serving
the socket with its own app (``app.server``: the drain). It forwards every SIGTERM/SIGINT to
every worker, so the first starts each worker's drain and a second ends them at once; it starts
a new worker in place of one that dies unexpectedly; it exits once all have exited after a
signal. A worker that fails to start with a configuration error (exit 2) or a start-up failure
(uvicorn's exit 3) stops the whole service with that code: restarting it would fail again.

Before the workers start it runs the call records' migrations once (SQLite has no lock that
orders two migrating processes; on PostgreSQL an advisory lock would) and, if
``STREAM_TOKEN_SECRET`` is unset, makes one random secret for all the workers: a stream token
issued by the worker that answered the call must verify on the worker that gets its socket.
Workers run in a process group of their own: a terminal's Ctrl+C reaches the supervisor alone,
which forwards it once. A worker whose supervisor disappears drains and exits.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import secrets
import signal
import socket
import sys
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

from app.config import Settings
from app.records.store import CallStore

log = logging.getLogger("app.supervisor")

FATAL_EXIT_CODES = frozenset({2, 3})  # a configuration error; uvicorn's start-up failure
POLL_S = 0.1


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket every worker shares."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def migrate_once(settings: Settings) -> None:
    """The call records' schema, current before any worker starts."""
    store = CallStore.from_settings(settings)
    try:
        await store.migrate()
    finally:
        await store.aclose()


def share_token_secret(settings: Settings, workers: int) -> None:
    """No ``STREAM_TOKEN_SECRET``: one random secret for every worker (they inherit it)."""
    if settings.stream_token_secret.get_secret_value():
        return
    os.environ["STREAM_TOKEN_SECRET"] = secrets.token_urlsafe(32)
    log.warning(
        "STREAM_TOKEN_SECRET is not set: the %d workers share a random key (valid for this replica only)",
        workers,
    )


def run_worker(sock: socket.socket, parent_pid: int) -> None:
    """One worker (in its spawned interpreter): settings from the environment, its own app."""
    from app.logs import configure_logging
    from app.main import ConfigurationError, create_app
    from app.server import serve_app

    os.setpgid(0, 0)  # its own process group: Ctrl+C reaches the supervisor only
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format, loggers=("app", "uvicorn"))
    try:
        app = create_app(settings)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    serve_app(app, sockets=[sock], parent_pid=parent_pid)


class Supervisor:
    """Keeps ``count`` workers serving ``sock`` until a signal; see the module docstring."""

    def __init__(self, sock: socket.socket, count: int) -> None:
        self._sock = sock
        self._count = count
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[BaseProcess] = []
        self._signals: list[int] = []
        self._stopping = False
        self._exit_code = 0

    def run(self) -> int:
        """Serve until every worker has exited after a signal; the exit code."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for _ in range(self._count):
                self._start()
            while self._workers:
                wait([w.sentinel for w in self._workers], timeout=POLL_S)
                self._forward()
                self._reap()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self._exit_code

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self._signals.append(sig)  # a signal handler: the loop forwards it

    def _start(self) -> None:
        worker = self._context.Process(
            target=run_worker, args=(self._sock, os.getpid()), name=f"voice-agent-worker-{len(self._workers)}"
        )
        worker.start()
        self._workers.append(worker)
        log.info("worker started", extra={"pid": worker.pid})

    def _forward(self) -> None:
        while self._signals:
            sig = self._signals.pop(0)
            if not self._stopping:
                log.info("signal %d: the workers drain", sig)
            self._stopping = True
            self._signal_all(sig)

    def _signal_all(self, sig: int) -> None:
        for worker in self._workers:
            if worker.pid is not None and worker.exitcode is None:
                with contextlib.suppress(ProcessLookupError):  # exited meanwhile: reaped next
                    os.kill(worker.pid, sig)

    def _reap(self) -> None:
        for worker in [w for w in self._workers if w.exitcode is not None]:
            self._workers.remove(worker)
            code = worker.exitcode or 0
            worker.close()
            if self._stopping:
                if code not in (0, -signal.SIGTERM, -signal.SIGINT) and not self._exit_code:
                    self._exit_code = 1
                continue
            if code in FATAL_EXIT_CODES:
                log.error("a worker could not start (exit %d): stopping", code)
                self._exit_code, self._stopping = code, True
                self._signal_all(signal.SIGTERM)
                continue
            log.error("a worker died unexpectedly (exit %d): starting another", code)
            self._start()
