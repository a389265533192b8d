"""uvicorn's WebSocket protocol with flow control that does not stop reading after every message.

uvicorn's ``websockets-sansio`` protocol pauses the socket's reading each time it queues a
message for the app and resumes it when the app takes it. On a media socket that is every
20 ms frame: two event-loop watcher changes (``epoll_ctl`` system calls) per frame and call,
for back-pressure nobody needs while the app keeps up. This subclass lets up to
``HIGH_WATER`` messages wait before it pauses (the session's reader drains them at once; a
stalled app still stops the peer after that many); reading resumes as the app empties the
queue, as before. Everything else (handshake, framing, close, deflate) is uvicorn's.

Use it as uvicorn's ``ws`` protocol class (``uvicorn.Config(ws=MediaWebSocketProtocol)``).
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

HIGH_WATER = 32  # messages waiting for the app before reading pauses (0.64 s of one call's frames)


class MediaWebSocketProtocol(WebSocketsSansIOProtocol):
    def send_receive_event_to_app(self) -> None:
        paused = self.read_paused
        self.read_paused = True  # the base class queues the message and pauses unless paused already
        try:
            super().send_receive_event_to_app()
        finally:
            self.read_paused = paused
        if not paused and self.queue.qsize() >= HIGH_WATER:
            self.read_paused = True
            self.transport.pause_reading()
