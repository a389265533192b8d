"""The post-call webhook end to end: a call through the fake Vobiz and the real app (scripted
providers), a real HTTP receiver on 127.0.0.1 (``http.server`` in a thread) that checks nothing
itself: the test verifies the signature, the body and the outbox row."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from agents.personas import load_personas
from app.clock import FakeClock
from app.config import Settings
from app.main import conversation_factory, create_app
from app.postcall.deliverer import PostCallWebhook
from app.postcall.signing import verify
from app.providers.registry import ProviderSet
from app.providers.scripted import Rule, ScriptedLLM, ScriptedSTT, ToneTTS
from app.records.models import WebhookOutboxRow
from app.records.outbox import DELIVERED, FAILED, Outbox
from app.records.record import COMPLETED, CallRecord, TranscriptLine
from app.records.store import CallStore
from app.simulator.caller import HangUp, Step, WaitForAgent
from tests.e2e.test_logging_calls import rendered
from tests.e2e.test_metrics import dial, words

ROOT = Path(__file__).resolve().parents[2]
SECRET = "receiver-shared-secret-0123"
ASKED = "I would like a table for two"
RULES = [Rule(r"table", "Certainly, a table for two at seven.")]
WAIT_S = 60.0  # generous: the machine may be loaded; a pass is usually well under a second


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    """Answers each POST with the next status of ``answers``, then ``then``; keeps every request."""

    answers: list[int] = field(default_factory=list)
    then: int = 200
    got: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            status = self.answers.pop(0) if self.answers else self.then
            self.got.append(Received(headers, body, status))
            return status

    def requests(self) -> list[Received]:
        with self.lock:
            return list(self.got)


@contextlib.contextmanager
def receiving(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver.answer({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/call-ended"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def webhook_app(
    make_settings: Callable[..., Settings], url: str, clock: FakeClock, settle_s: float = 0
) -> FastAPI:
    providers = ProviderSet(stt=ScriptedSTT([ASKED]), llm=ScriptedLLM(RULES), tts={"offline": ToneTTS()})
    settings = make_settings(
        prompts_dir=ROOT / "prompts",
        post_call_webhook_url=url,
        post_call_webhook_secret=SECRET,
        post_call_webhook_backoff_initial_seconds=0.02,  # quick for the test; the window stays 15 min
        post_call_webhook_backoff_max_seconds=0.1,
        post_call_webhook_settle_seconds=settle_s,
        post_call_webhook_poll_seconds=0.2,
    )
    return create_app(settings, clock=clock, agent_factory=conversation_factory(providers))


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app's lifespan (start-up sweep, background sender) around the block."""
    async with app.router.lifespan_context(app):
        yield app


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait (up to ``WAIT_S``) for a row in the database: a condition with no event to await."""
    async with asyncio.timeout(WAIT_S):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    assert await check(), what


async def outbox_row(app: FastAPI, call_id: str) -> WebhookOutboxRow | None:
    store: CallStore = app.state.call_records
    return await Outbox(store, "test").get(call_id)


def status_is(app: FastAPI, call_id: str, status: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        row = await outbox_row(app, call_id)
        return row is not None and row.status == status

    return check


STEPS: list[Step] = [WaitForAgent(), words(ASKED), WaitForAgent(), HangUp()]


async def test_a_call_makes_one_signed_post_with_the_heard_transcript(
    make_settings: Callable[..., Settings],
) -> None:
    clock = FakeClock()
    with receiving(Receiver()) as receiver:
        app = webhook_app(make_settings, receiver.url, clock)
        async with running(app):
            rec = await dial(app, clock, STEPS)
            await eventually(status_is(app, rec.call_id, DELIVERED), "delivered")
            row = await outbox_row(app, rec.call_id)
        [got] = receiver.requests()
    assert row is not None
    assert row.attempts == 1
    assert row.last_status == 200
    assert got.headers["content-type"] == "application/json"
    assert got.headers["idempotency-key"] == rec.call_id
    assert verify(got.body, SECRET, got.headers["x-voice-agent-signature"])
    assert not verify(got.body, "another-secret", got.headers["x-voice-agent-signature"])
    body = json.loads(got.body)
    record = await app.state.call_records.get(rec.call_id)
    assert record is not None
    assert body["call_id"] == rec.call_id
    assert body["event"] == "call.ended"
    assert body["persona"] == record.persona == "default"
    assert (body["started_at"], body["ended_at"]) == (record.started_at, record.ended_at)
    assert body["end_reason"] == record.end_reason
    said = [(line["speaker"], line["text"], line["interrupted"]) for line in body["transcript"]]
    assert ("caller", ASKED, False) in said
    assert ("agent", RULES[0].reply, False) in said
    assert [line["text"] for line in body["transcript"]] == [line["text"] for line in record.transcript]
    assert body["tool_calls"] == []
    assert body["dtmf"] == []
    assert body["usage"] == dict(record.usage)  # the record's counts and cost, as stored
    assert body["usage"]["llm_requests"] == 1
    assert body["recording_url"] is None
    assert body["summary"] is None
    assert body["disposition"] is None
    assert set(body) >= {"caller", "called"}


async def test_the_hang_up_callback_sends_at_once_a_delivery_waiting_for_a_reconnect(
    make_settings: Callable[..., Settings],
) -> None:
    """The socket closes first (a reconnect could follow), then the fake Vobiz's signed hang-up
    callback says the call is over: the delivery goes at once, not an hour later."""
    clock = FakeClock()
    with receiving(Receiver()) as receiver:
        app = webhook_app(make_settings, receiver.url, clock, settle_s=3600)
        async with running(app):
            rec = await dial(app, clock, STEPS)
            record = await app.state.call_records.get(rec.call_id)
            await eventually(status_is(app, rec.call_id, DELIVERED), "delivered before the hour")
        [got] = receiver.requests()
    assert record is not None
    assert record.end_reason == "socket-closed"  # a reason that may be followed by a reconnect
    assert got.headers["idempotency-key"] == rec.call_id


async def test_a_receiver_answering_500_gets_the_same_delivery_again(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()
    with receiving(Receiver(answers=[500, 503])) as receiver:
        app = webhook_app(make_settings, receiver.url, clock)
        async with running(app):
            rec = await dial(app, clock, STEPS)
            await eventually(status_is(app, rec.call_id, DELIVERED), "delivered after retries")
            row = await outbox_row(app, rec.call_id)
        got = receiver.requests()
    assert [r.answered for r in got] == [500, 503, 200]
    assert len({r.body for r in got}) == 1  # the body is fixed at the first attempt
    assert {r.headers["idempotency-key"] for r in got} == {rec.call_id}
    assert all(verify(r.body, SECRET, r.headers["x-voice-agent-signature"]) for r in got)
    assert row is not None
    assert row.attempts == 3
    # the sender's log lines name the call and the status: no secret, URL, number or words
    sender_lines = [r for r in caplog.records if r.name == "app.postcall"]
    assert any(getattr(r, "call_id", None) == rec.call_id for r in sender_lines)
    assert any("HTTP 500" in r.getMessage() for r in sender_lines)
    caller = json.loads(got[0].body)["caller"] or "+unknown-caller"
    for line in sender_lines:
        text = rendered(line)
        for private in (SECRET, receiver.url, "127.0.0.1", ASKED, RULES[0].reply, caller[1:]):
            assert private not in text, line.getMessage()


async def test_a_4xx_is_final_and_kept_as_failed(make_settings: Callable[..., Settings]) -> None:
    clock = FakeClock()
    with receiving(Receiver(then=422)) as receiver:
        app = webhook_app(make_settings, receiver.url, clock)
        async with running(app):
            rec = await dial(app, clock, STEPS)
            await eventually(status_is(app, rec.call_id, FAILED), "failed")
            row = await outbox_row(app, rec.call_id)
        got = receiver.requests()
    assert [r.answered for r in got] == [422]  # not retried
    assert row is not None
    assert row.attempts == 1
    assert row.last_status == 422


async def test_a_delivery_pending_at_shutdown_is_made_after_a_restart(
    make_settings: Callable[..., Settings],
) -> None:
    clock = FakeClock()
    with receiving(Receiver(then=503)) as receiver:
        first = webhook_app(make_settings, receiver.url, clock)
        async with running(first):
            rec = await dial(first, clock, STEPS)

            async def tried() -> bool:
                row = await outbox_row(first, rec.call_id)
                return row is not None and row.attempts >= 1

            await eventually(tried, "attempted while the receiver is down")
        # the first service has stopped with its delivery pending; the receiver recovers
        stopped = await outbox_row(first, rec.call_id)
        assert stopped is not None
        assert stopped.status == "pending"
        refused = len(receiver.requests())
        with receiver.lock:
            receiver.then = 200
        second = webhook_app(make_settings, receiver.url, FakeClock())  # same DATA_DIR, same database
        async with running(second):
            await eventually(status_is(second, rec.call_id, DELIVERED), "delivered after the restart")
            row = await outbox_row(second, rec.call_id)
        got = receiver.requests()
    assert [r.answered for r in got] == [503] * refused + [200]
    assert len({r.body for r in got}) == 1  # the restart sends the same body
    assert verify(got[-1].body, SECRET, got[-1].headers["x-voice-agent-signature"])
    assert json.loads(got[-1].body)["call_id"] == got[-1].headers["idempotency-key"] == rec.call_id
    assert row is not None
    # counted in the database: an attempt cut short by the shutdown may have reached the receiver
    # without being counted
    assert row.attempts == stopped.attempts + 1
    assert stopped.attempts >= 1


async def test_a_persona_asking_for_them_gets_a_summary_and_a_disposition_in_record_and_post(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """The sender on its own (the app's conversation LLM is the scripted one here, passed to it
    as the service passes its configured model), with a persona that asks for both."""
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "desk.md").write_text(
        "---\ndisplay_name: Front desk\nsummary: true\ndispositions: [booked, callback, not_interested]\n"
        "---\nYou take bookings.\n"
    )
    llm = ScriptedLLM([Rule(r"table for two", "The caller booked a table for two.\nDISPOSITION: booked")])
    with receiving(Receiver()) as receiver:
        settings = make_settings(
            post_call_webhook_url=receiver.url,
            post_call_webhook_secret=SECRET,
            post_call_webhook_poll_seconds=0.2,
        )
        store = CallStore.from_settings(settings)
        record = CallRecord(
            "c-desk", COMPLETED, "desk", "14155550100", "14155550199", 1000.0, 1042.0, "hangup",
            transcript=(TranscriptLine(t=1.0, speaker="caller", text=ASKED, interrupted=False),),
        )  # fmt: skip
        sender = PostCallWebhook(settings, store, personas=load_personas(prompts), llm=llm)
        await store.save(record, webhook_due=sender.due_at("hangup"))
        try:
            async with asyncio.TaskGroup() as tasks:
                running_sender = tasks.create_task(sender.run())

                async def delivered() -> bool:
                    row = await sender.outbox.get("c-desk")
                    return row is not None and row.status == DELIVERED

                await eventually(delivered, "delivered")
                running_sender.cancel()
            stored = await store.get("c-desk")
        finally:
            await store.aclose()
        [got] = receiver.requests()
    body = json.loads(got.body)
    assert (body["summary"], body["disposition"]) == ("The caller booked a table for two.", "booked")
    assert stored is not None
    assert (stored.summary_text, stored.disposition) == ("The caller booked a table for two.", "booked")
    [asked] = llm.requests  # one request, with the transcript
    assert "booked, callback, not_interested" in asked[0].content
    assert ASKED in asked[-1].content
