"""The service's uvicorn server: the first SIGTERM drains (``app.drain``), a second stops at once.

Uvicorn's own shutdown closes every WebSocket the moment ``should_exit`` is set, so the drain
happens before it: the first SIGTERM (or SIGINT) only starts the drain, and ``should_exit`` is set
when the drain says ``EXIT``. Meanwhile the process serves as before (live calls, their
webhooks, new calls) but ``/readyz`` answers 503.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from types import FrameType

import uvicorn
from fastapi import FastAPI

from app.api.deps import AppContext
from app.api.ws_protocol import MediaWebSocketProtocol
from app.drain import FINISH_S, DrainPhase
from app.pipeline.session import SHUTDOWN

log = logging.getLogger("app.server")


class DrainingServer(uvicorn.Server):
    """``uvicorn.Server`` with the drain. ``parent_pid``: a worker's supervisor; if it goes
    (killed, crashed), the worker drains and exits rather than serve on unsupervised."""

    def __init__(self, config: uvicorn.Config, ctx: AppContext, *, parent_pid: int | None = None) -> None:
        super().__init__(config)
        self.ctx = ctx
        self.stopped_by: int | None = None  # the signal that ended the process at once
        self._parent_pid = parent_pid
        self._phase = DrainPhase.SERVE

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # a signal handler: it only sets flags; ``on_tick`` acts on them
        if self.ctx.drain.begin(self.ctx.clock.now()):
            return
        self.stopped_by = sig
        self.should_exit = self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        drain, orphaned = self.ctx.drain, self._parent_pid not in (None, os.getppid())
        if orphaned and drain.begin(self.ctx.clock.now()):
            log.warning("the supervisor has gone: draining")
        if drain.draining and not self.should_exit:
            self._act(drain.phase(self.ctx.clock.now(), len(self.ctx.registry)))
        return await super().on_tick(counter)

    def _act(self, phase: DrainPhase) -> None:
        """Carry out ``phase``: each session's ``shut_down`` and ``end`` are idempotent, so they
        are applied on every tick of their phase (a call that arrives late is closed too)."""
        first = phase is not self._phase
        self._phase = phase
        live = self.ctx.registry.sessions()
        match phase:
            case DrainPhase.WAIT if first:
                log.info("draining: not ready; %d live call(s) go on", len(live))
            case DrainPhase.CLOSE:
                if first:
                    log.warning("drain timed out: %d live call(s) end with their closing line", len(live))
                for session in live:
                    session.shut_down()
            case DrainPhase.END:
                if first:
                    log.warning("drain: %d call(s) still live after their closing line: ended", len(live))
                for session in live:
                    session.end(SHUTDOWN)
            case DrainPhase.EXIT:
                if live:
                    log.error("drain: %d call(s) did not finish; stopping anyway", len(live))
                else:
                    log.info("drained: no live calls; stopping")
                self.should_exit = True


def serve_app(
    app: FastAPI,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    sockets: list[socket.socket] | None = None,
    parent_pid: int | None = None,
) -> None:
    """Serve ``app`` (built by ``create_app``) until it has drained, on ``host:port`` or on
    ``sockets`` (a worker's share of its supervisor's socket). A second signal ends the process
    by that signal, at once."""
    ctx: AppContext = app.state.ctx
    settings = ctx.settings
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ws=MediaWebSocketProtocol,  # uvicorn's, without a pause and resume of reading per message
        ws_max_size=settings.max_message_bytes,
        access_log=False,
        log_config=None,
        log_level=settings.log_level.lower(),
        # once drained, connections left open (idle keep-alive) do not hold the exit
        timeout_graceful_shutdown=int(FINISH_S),
    )
    server = DrainingServer(config, ctx, parent_pid=parent_pid)
    server.run(sockets=sockets)
    if server.stopped_by is not None:
        signal.raise_signal(server.stopped_by)  # uvicorn has restored the default handler
