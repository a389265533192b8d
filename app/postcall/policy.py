"""Which answers are retried, and how long: capped exponential back-off with jitter (tenacity).

Retried: connection errors, timeouts, HTTP 5xx, 408 and 429. Any other 4xx is final (the
receiver refuses this body; sending it again cannot help). 2xx is delivered; a 3xx is treated
like a 4xx (redirects are not followed: the signed body must reach the URL configured).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential, wait_random

from app.config import Settings

RETRYABLE_4XX = frozenset({408, 429})


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FINAL = "final"


def verdict(status: int) -> Verdict:
    """What an HTTP status means for the delivery."""
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status >= 500 or status in RETRYABLE_4XX:
        return Verdict.RETRY
    return Verdict.FINAL


class TryAgain(Exception):
    """An attempt failed in a way worth retrying: ``status`` (HTTP) or ``error`` (a type's name)."""

    def __init__(self, status: int | None = None, error: str | None = None) -> None:
        super().__init__(f"status={status} error={error}")
        self.status = status
        self.error = error


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``window_s``: how long a delivery is retried, counted from its first attempt;
    ``initial_s`` and ``max_s``: the first back-off and its cap; ``timeout_s``: one attempt."""

    window_s: float = 900.0
    initial_s: float = 2.0
    max_s: float = 60.0
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            window_s=settings.post_call_webhook_retry_seconds,
            initial_s=settings.post_call_webhook_backoff_initial_seconds,
            max_s=settings.post_call_webhook_backoff_max_seconds,
            timeout_s=settings.post_call_webhook_timeout_seconds,
        )

    @property
    def lease_s(self) -> float:
        """A claim outlives the longest wait plus an attempt; it is renewed before each attempt."""
        return self.max_s + self.timeout_s + 30.0

    def retrying(
        self, spent_s: float = 0.0, sleep: Callable[[float], Awaitable[None]] | None = None
    ) -> AsyncRetrying:
        """Attempts until one succeeds or raises something other than ``TryAgain``, or the window
        (less ``spent_s``, already used before a restart) has passed; the last ``TryAgain`` is
        then raised. ``sleep``: tests pass one that does not wait."""
        left = max(0.0, self.window_s - spent_s)

        def stop(state: RetryCallState) -> bool:
            # ``idle_for`` (the waits) counts too, so a sleep that does not wait still ends it
            return max(state.seconds_since_start or 0.0, state.idle_for) >= left

        options: dict[str, object] = {}
        if sleep is not None:
            options["sleep"] = sleep
        return AsyncRetrying(
            stop=stop,
            # initial, 2x, 4x ... capped at max_s, plus up to initial_s of jitter (receivers that
            # failed together are not hit again in step)
            wait=wait_exponential(multiplier=self.initial_s, max=self.max_s) + wait_random(0, self.initial_s),
            retry=retry_if_exception_type(TryAgain),
            reraise=True,
            **options,  # type: ignore[arg-type]
        )
