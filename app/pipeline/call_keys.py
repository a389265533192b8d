"""``CallKeys``: a call's phone keys, between the socket, the ``Keypad`` and the turn-taker.

The keypad's outcomes become turn events (``KeyPressed``, ``Keyed``, ``Collecting``), handed
to the conversation's ``handle``; a digit collection is awaited by the tool that asked for it
(``collect``), in the reply running that tool. Keys never reach a log line: only their count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from app.clock import Clock
from app.pipeline import keypad as kp
from app.pipeline import turn_events as te
from app.pipeline.responder import Responder

log = logging.getLogger("app.conversation")

PROMPT_DRAIN_S = 30.0  # at most this long waiting for a collection's prompt to be heard


class CallKeys:
    def __init__(
        self,
        keypad: kp.Keypad,
        clock: Clock,
        turns: Callable[[te.TurnEvent], list[te.TurnAction]],
        apply: Callable[[list[te.TurnAction]], None],
        call_id: str,
    ) -> None:
        """``turns``: the turn-taker's ``handle``; ``apply``: the conversation's, for its actions."""
        self.keypad, self._clock, self._turns, self._apply = keypad, clock, turns, apply
        self._call_id = call_id
        self.received = 0  # key events received
        self._collected: asyncio.Future[str] | None = None  # the digit collection running

    def press(self, keys: str) -> None:
        """One ``dtmf`` event (usually one key)."""
        self.received += 1
        log.debug("key pressed", extra={"call_id": self._call_id, "count": self.received})
        for key in keys:
            self._on(self.keypad.press(self._clock.now(), key))

    def tick(self, now: float) -> None:
        self._on(self.keypad.tick(now))

    def _handle(self, event: te.TurnEvent) -> None:
        self._apply(self._turns(event))

    def _on(self, outcomes: list[kp.KeyOutcome]) -> None:
        for outcome in outcomes:
            match outcome:
                case kp.KeyDown(t=t):
                    self._handle(te.KeyPressed(t))
                case kp.KeysEntered(t=t, text=text, menu=menu):
                    self._handle(te.Keyed(t, text, menu))
                case kp.Collected(result=result):
                    if self._collected is not None and not self._collected.done():
                        self._collected.set_result(result)

    async def collect(self, responder: Responder, request: kp.DigitRequest) -> str:
        """``collect_digits`` in the reply of ``responder``: its prompt is said, then the keys
        are awaited (speech is not listened to meanwhile). The digits, "timeout" or "empty"."""
        if self._collected is not None:
            return "error: digits are already being collected"
        self._collected = collected = asyncio.get_running_loop().create_future()
        try:
            self._on(self.keypad.collect(self._clock.now(), request))  # keys typed ahead count
            self._handle(te.Collecting(self._clock.now(), True))
            if request.prompt and not collected.done():
                await responder.say(request.prompt)
                await responder.playout.drain(PROMPT_DRAIN_S, stop=collected.done)
            self.keypad.arm(self._clock.now())  # the first-digit timer starts once it was heard
            result: str = await collected
            return result
        finally:
            self._collected = None
            self.keypad.stop_collecting(self._clock.now())
            self._handle(te.Collecting(self._clock.now(), False))  # after the end: nothing is said
