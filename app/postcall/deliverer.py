"""``PostCallWebhook``: sends the outbox's due deliveries (``app.records.outbox``).

The call's end queues its delivery with its record and wakes the sweeper; the sweeper also runs
at start-up (deliveries a stopped or crashed process left) and every ``POST_CALL_WEBHOOK_POLL_
SECONDS`` (deliveries waiting out a reconnect, or another process's run-out lease). Each due row
is claimed, its body fixed at the first attempt (after the optional summary), then POSTed with
``policy.RetryPolicy``'s retries; the lease is renewed before each attempt. Logs name the call
id, the HTTP status and the attempt count: never the body, the URL or the secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping

import httpx
from sqlalchemy.exc import SQLAlchemyError

from agents.personas import Persona
from app.config import Settings
from app.postcall.payload import encode, payload
from app.postcall.policy import RetryPolicy, TryAgain, Verdict, verdict
from app.postcall.signing import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, sign
from app.postcall.summary import summarize
from app.providers.base import LanguageModel
from app.records.outbox import DELIVERED, FAILED, Outbox
from app.records.owner import this_process
from app.records.record import IN_PROGRESS, CallRecord
from app.records.store import CallStore

log = logging.getLogger("app.postcall")

MAX_CONCURRENT = 8  # deliveries in flight per process
USER_AGENT = "voice-agent-post-call-webhook/1"


class Refused(Exception):
    """The receiver answered a final 4xx: the delivery failed for good."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class LeaseLost(Exception):
    """This process's claim ran out and another process took the delivery."""


class PostCallWebhook:
    """One per process (``create_app`` builds it when ``POST_CALL_WEBHOOK_URL`` is set).
    ``reconnectable``: end reasons of a socket that merely dropped (``app.api.guard``);
    ``wall`` and ``sleep`` are for tests (wall time of the outbox; the back-off's waits)."""

    def __init__(
        self,
        settings: Settings,
        store: CallStore,
        *,
        reconnectable: frozenset[str] = frozenset(),
        personas: Mapping[str, Persona] | None = None,
        llm: LanguageModel | None = None,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.url = settings.post_call_webhook_url
        self._secret = settings.post_call_webhook_secret.get_secret_value()
        self.policy = RetryPolicy.from_settings(settings)
        self.settle_s = settings.post_call_webhook_settle_seconds
        self.poll_s = settings.post_call_webhook_poll_seconds
        self.public_base = settings.public_base
        self.store = store
        # several apps may share a process (tests, a restart in place): each claims as its own
        self.outbox = Outbox(store, f"{this_process()}:{secrets.token_hex(4)}")
        self.reconnectable = reconnectable
        self.personas = personas or {}
        self.llm = llm
        self.wall = wall
        self._sleep = sleep
        self._wake = asyncio.Event()
        self._busy: set[str] = set()
        self._http: httpx.AsyncClient | None = None

    # --- the recorder's side (``records.listener.WebhookQueue``) ---

    def due_at(self, end_reason: str | None) -> float:
        """A socket that merely dropped waits out a possible reconnect (or the hang-up callback)."""
        settle = self.settle_s if end_reason in self.reconnectable else 0.0
        return self.wall() + settle

    def wake(self) -> None:
        self._wake.set()

    # --- the sweeper ---

    async def run(self) -> None:
        """Sweep until cancelled: at once, then on each wake-up or every ``poll_s``. Cancelling it
        releases the claims of deliveries in flight, so the next start sends them at once."""
        self._http = httpx.AsyncClient(
            timeout=self.policy.timeout_s, follow_redirects=False, headers={"User-Agent": USER_AGENT}
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                while True:
                    self._wake.clear()
                    for call_id in await self._due():
                        if call_id in self._busy or len(self._busy) >= MAX_CONCURRENT:
                            continue
                        self._busy.add(call_id)
                        tasks.create_task(self._deliver_logged(call_id), name="post-call-webhook-delivery")
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.poll_s):
                            await self._wake.wait()
        finally:
            await self._http.aclose()
            self._http = None

    async def _due(self) -> list[str]:
        try:
            return await self.outbox.due(self.wall(), limit=MAX_CONCURRENT)
        except (SQLAlchemyError, OSError) as exc:  # the database is down: the next sweep tries again
            log.warning("post-call webhook: outbox not read: %s", type(exc).__name__)
            return []

    async def _deliver_logged(self, call_id: str) -> None:
        try:
            await self.deliver(call_id)
        except (SQLAlchemyError, OSError) as exc:  # its lease runs out; a later sweep takes it again
            log.warning("post-call webhook: outbox not written: %s", type(exc).__name__,
                        extra={"call_id": call_id})  # fmt: skip
        except Exception:  # a bug in one delivery must not stop the sender (nor the service's tasks)
            log.exception("post-call webhook: delivery broke", extra={"call_id": call_id})
        finally:
            self._busy.discard(call_id)

    async def deliver(self, call_id: str) -> str | None:
        """Claim and send one delivery; its final status, or None when it is not (yet) final here
        (another process holds it, the call is in progress again, or this process lost it)."""
        now = self.wall()
        claimed = await self.outbox.claim(call_id, now, self.policy.lease_s)
        if claimed is None:
            return None
        try:
            body = claimed.body
            if body is None:
                record = await self.store.get(call_id)
                if record is None or record.status == IN_PROGRESS:  # reconnected: wait for its end
                    await self.outbox.postpone(call_id, now + max(self.settle_s, self.poll_s))
                    return None
                record = await self._annotated(record)
                body = encode(payload(record.to_json(), self.public_base))
            spent = 0.0 if claimed.first_try_at is None else max(0.0, now - claimed.first_try_at)
            status = await self._send(call_id, body, spent)
        except asyncio.CancelledError:  # shutting down: free the claim for the next start
            await asyncio.shield(self.outbox.postpone(call_id, self.wall()))
            raise
        except LeaseLost:
            log.warning("post-call webhook: claim lost to another process", extra={"call_id": call_id})
            return None
        await self.outbox.finish(call_id, status, self.wall())
        return status

    async def _send(self, call_id: str, body: str, spent_s: float) -> str:
        try:
            async for attempt in self.policy.retrying(spent_s, self._sleep):
                with attempt:
                    await self._attempt(call_id, body)
        except Refused as exc:
            log.warning("post-call webhook refused: HTTP %d (final)", exc.status, extra={"call_id": call_id})
            return FAILED
        except TryAgain as exc:
            log.warning("post-call webhook failed after its retries", extra={"call_id": call_id,
                        "status": exc.status, "error": exc.error})  # fmt: skip
            return FAILED
        log.info("post-call webhook delivered", extra={"call_id": call_id})
        return DELIVERED

    async def _attempt(self, call_id: str, body: str) -> None:
        if not await self.outbox.renew(call_id, self.wall(), self.policy.lease_s):
            raise LeaseLost(call_id)
        assert self._http is not None, "deliver() runs inside run()"
        raw = body.encode()
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: call_id}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(raw, self._secret)
        try:
            reply = await self._http.post(self.url, content=raw, headers=headers)
        except httpx.HTTPError as exc:  # connect, read, write, pool timeouts; refused; reset
            await self.outbox.attempted(call_id, body, self.wall(), None, type(exc).__name__)
            log.info("post-call webhook attempt failed: %s", type(exc).__name__, extra={"call_id": call_id})
            raise TryAgain(error=type(exc).__name__) from None
        await self.outbox.attempted(call_id, body, self.wall(), reply.status_code, None)
        match verdict(reply.status_code):
            case Verdict.DELIVERED:
                return
            case Verdict.RETRY:
                log.info("post-call webhook attempt answered HTTP %d", reply.status_code,
                         extra={"call_id": call_id})  # fmt: skip
                raise TryAgain(status=reply.status_code)
            case Verdict.FINAL:
                raise Refused(reply.status_code)

    async def _annotated(self, record: CallRecord) -> CallRecord:
        """The record with its summary and disposition, asked of the LLM once (before the body
        is fixed) when the persona wants them and a language model is configured."""
        persona = self.personas.get(record.persona)
        if persona is None or self.llm is None or record.summary_text or record.disposition:
            return record
        wanted = persona.settings
        if not (wanted.summary or wanted.dispositions):
            return record
        summary, disposition = await summarize(
            self.llm, wanted.llm_model, record.transcript, wanted.dispositions, wanted.summary, record.call_id
        )
        if summary is None and disposition is None:
            return record
        await self.outbox.annotate(record.call_id, summary, disposition)
        return dataclasses.replace(record, summary_text=summary, disposition=disposition)
