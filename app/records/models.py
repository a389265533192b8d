"""The ``calls`` table. Changing it needs a new script in ``migrations/versions/``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Double, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class CallRow(Base):
    """One call. Times are unix seconds; the JSON columns hold what ``app.records.record`` makes."""

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_started_at_call_id", "started_at", "call_id"),
        Index("ix_calls_status", "status"),
    )

    call_id: Mapped[str] = mapped_column(String(), primary_key=True)
    status: Mapped[str] = mapped_column(String())  # "in-progress" until the call has ended
    persona: Mapped[str] = mapped_column(String())
    caller: Mapped[str] = mapped_column(String())  # digits only, "" if unknown
    called: Mapped[str] = mapped_column(String())
    started_at: Mapped[float] = mapped_column(Double)
    ended_at: Mapped[float | None] = mapped_column(Double)
    end_reason: Mapped[str | None] = mapped_column(String())
    agent: Mapped[str] = mapped_column(String(), default="")  # the agent's class: Conversation, EchoAgent
    barge_ins: Mapped[int | None] = mapped_column(Integer)  # None: the agent does not count them
    false_interruptions: Mapped[int | None] = mapped_column(Integer)
    provider_errors: Mapped[int | None] = mapped_column(Integer)
    preemptive_started: Mapped[int | None] = mapped_column(Integer)  # replies prepared before the turn ended
    preemptive_committed: Mapped[int | None] = mapped_column(Integer)  # ... that became the reply
    preemptive_wasted: Mapped[int | None] = mapped_column(Integer)  # ... discarded after their LLM request
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    transcript: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    tool_calls: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    latency: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    owner: Mapped[str | None] = mapped_column(String())  # the process holding it (``records.owner``)
    hangup_cause: Mapped[str | None] = mapped_column(String())  # from Vobiz's hang-up callback
    failovers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)  # None: rows of older versions
    dtmf: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)  # the caller's keys (None: older rows)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # counts and cost (``pipeline.usage``)
    recording: Mapped[str | None] = mapped_column(String())  # file name in DATA_DIR/recordings
    summary: Mapped[str | None] = mapped_column(Text)  # a few sentences by the LLM after the call
    disposition: Mapped[str | None] = mapped_column(String())  # one of the persona's ``dispositions``


class WebhookOutboxRow(Base):
    """One post-call webhook delivery (``app.postcall``), written in the transaction that completes
    the call's record. ``status``: pending until delivered or failed. A process claims a row by
    writing its ``lease_owner`` and ``lease_until`` (unix seconds) where the lease has run out, so
    two workers or replicas never send the same delivery at once."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (Index("ix_webhook_outbox_status_due_at", "status", "due_at"),)

    call_id: Mapped[str] = mapped_column(String(), primary_key=True)  # one delivery per call
    status: Mapped[str] = mapped_column(String())  # "pending" | "delivered" | "failed"
    created_at: Mapped[float] = mapped_column(Double)
    due_at: Mapped[float] = mapped_column(Double)  # not tried before this
    first_try_at: Mapped[float | None] = mapped_column(Double)  # the retry window counts from here
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String())
    lease_until: Mapped[float | None] = mapped_column(Double)
    body: Mapped[str | None] = mapped_column(Text)  # the JSON sent, fixed at the first attempt
    last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's last HTTP status
    last_error: Mapped[str | None] = mapped_column(String())  # an error's type, never its message
    finished_at: Mapped[float | None] = mapped_column(Double)
