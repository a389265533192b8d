"""Run an outbound campaign: dial each contact through the Vobiz REST API, at most N at once.

Each contact is dialled when its calling hours are open (its own time zone), with Vobiz's
answering-machine detection on; the call's outcome comes from Vobiz's Call object (hang-up
cause, duration) and, once answered, from the service's call record (an answering machine, the
disposition). Busy and no-answer are dialled again after ``retry_delay`` up to ``retries`` times.

Progress is kept in a state file, rewritten atomically (a temporary file, then ``os.replace``)
after every change: an interrupted run started again skips the contacts that are done, waits for
a call that was live when it stopped (it is not dialled twice), and dials the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from app.campaign.contacts import CallingHours, Contact, local_now
from app.campaign.sealed import seal
from app.clock import Clock
from app.telephony.rest import VobizClient, VobizValidationError

OUTCOMES = ("answered", "voicemail", "busy", "no-answer", "failed", "dnc", "skipped")
RETRIED = frozenset({"busy", "no-answer"})
RESULT_COLUMNS = ("number", "outcome", "attempts", "duration", "disposition", "record_id")
STATE_VERSION = 1

RecordLookup = Callable[[str], Awaitable[Mapping[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    persona: str
    from_number: str
    public_base: str  # the service's PUBLIC_URL: answer, hang-up and machine-detection URLs
    key: bytes  # seals each contact's variables into those URLs (``sealed.py``)
    max_concurrent: int = 1
    retries: int = 2
    retry_delay: float = 300.0  # seconds
    hours: CallingHours | None = None  # None: any time
    poll_interval: float = 2.0  # seconds between looks at a live call
    max_call_seconds: float = 4 * 3600.0  # a call still live after this is given up on (failed)


def classify(detail: Mapping[str, Any]) -> str:
    """``busy`` / ``no-answer`` / ``failed`` / ``answered`` from an ended call's Call object
    (``hangup_cause_name``, ``answer_time``, ``call_status``; names compared loosely)."""
    cause = " ".join(str(detail.get(k) or "") for k in ("call_status", "hangup_cause_name")).lower()
    cause = cause.replace("_", " ").replace("-", " ")
    if "busy" in cause:
        return "busy"
    if any(word in cause for word in ("no answer", "noanswer", "timeout", "not answered", "unanswered")):
        return "no-answer"
    if not detail.get("answer_time") or any(w in cause for w in ("fail", "invalid", "reject", "cancel")):
        return "failed"
    return "answered"


def _ended(detail: Mapping[str, Any]) -> bool:
    return bool(detail.get("end_time") or detail.get("hangup_cause_name"))


class CampaignState:
    """The state file: per number ``attempts``, ``live`` (a call id while a call is live), and
    once done ``outcome``, ``duration``, ``disposition``, ``record_id``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.contacts: dict[str, dict[str, Any]] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read the state file {path}: {exc}") from None
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ValueError(f"{path} is not a campaign state file")
            self.contacts = {str(k): dict(v) for k, v in data.get("contacts", {}).items()}

    def entry(self, number: str) -> dict[str, Any]:
        return self.contacts.setdefault(number, {"attempts": 0})

    def done(self, number: str) -> bool:
        return "outcome" in self.contacts.get(number, {})

    def save(self) -> None:
        """Write atomically: a reader (or a crash) sees the old file or the new, never half."""
        body = json.dumps({"version": STATE_VERSION, "contacts": self.contacts}, indent=1, sort_keys=True)
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".campaign-", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class Campaign:
    """One run. ``progress(done, total)`` is told after each contact is finished."""

    def __init__(
        self,
        plan: CampaignPlan,
        client: VobizClient,
        clock: Clock,
        state: CampaignState,
        lookup: RecordLookup,
        progress: Callable[[int, int], None] = lambda done, total: None,
    ) -> None:
        self.plan = plan
        self.client = client
        self.clock = clock
        self.state = state
        self.lookup = lookup
        self.progress = progress
        self._slots = asyncio.Semaphore(plan.max_concurrent)
        self._done = 0
        self._total = 0

    async def run(self, contacts: tuple[Contact, ...], dnc: frozenset[str]) -> None:
        self._total = len(contacts)
        self._done = sum(1 for c in contacts if self.state.done(c.key))
        self.progress(self._done, self._total)
        async with asyncio.TaskGroup() as tg:
            for contact in contacts:
                if self.state.done(contact.key):
                    continue
                if contact.key in dnc:
                    self._finish(contact, {"outcome": "dnc"})
                    continue
                tg.create_task(self._contact(contact), name=f"campaign-contact-{contact.row}")

    def _finish(self, contact: Contact, fields: Mapping[str, Any]) -> None:
        entry = self.state.entry(contact.key)
        entry.pop("live", None)
        entry.pop("next_at", None)
        entry.update(fields)
        self.state.save()
        self._done += 1
        self.progress(self._done, self._total)

    async def _contact(self, contact: Contact) -> None:
        entry = self.state.entry(contact.key)
        while True:
            live = entry.get("live")
            if live:  # a call placed before an interruption: see it through, never dial twice
                async with self._slots:
                    outcome, fields = await self._follow(str(live))
            else:
                await self._wait_until_due(contact, float(entry.get("next_at") or 0.0))
                async with self._slots:
                    call_uuid = await self._dial_once(contact, entry)
                    if call_uuid is None:
                        self._finish(contact, {"outcome": "failed"})
                        return
                    outcome, fields = await self._follow(call_uuid)
            if outcome in RETRIED and int(entry["attempts"]) <= self.plan.retries:
                entry.pop("live", None)
                entry["next_at"] = self.clock.wall() + self.plan.retry_delay
                entry["last"] = outcome
                self.state.save()
                continue
            self._finish(contact, {"outcome": outcome, **fields})
            return

    async def _dial_once(self, contact: Contact, entry: dict[str, Any]) -> str | None:
        """Place one call and record it in the state file, as one step: a Make Call request in
        flight when the run is interrupted has an unknown outcome (Vobiz may have placed the
        call), so it is let finish and recorded; a re-run then follows that call instead of
        dialling the number twice. (A task of its own, shielded: cancelling the contact must not
        abort it half way.)"""
        dialling = asyncio.ensure_future(self._dial_and_record(contact, entry))
        try:
            return await asyncio.shield(dialling)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await dialling
            raise

    async def _dial_and_record(self, contact: Contact, entry: dict[str, Any]) -> str | None:
        entry["attempts"] = int(entry.get("attempts", 0)) + 1
        try:
            call_uuid = await self._dial(contact)
        except VobizValidationError:  # Vobiz refuses this number: the others go on
            call_uuid = None
        if call_uuid is not None:
            entry["live"] = call_uuid
        self.state.save()
        return call_uuid

    async def _wait_until_due(self, contact: Contact, not_before: float) -> None:
        while True:
            now = self.clock.wall()
            due = max(now, not_before)
            if self.plan.hours is not None:
                local = local_now(due, contact.timezone)
                due = self.plan.hours.opens_after(local).timestamp()
            if due <= now:
                return
            await self.clock.sleep(min(due - now, 3600.0))  # re-checked: clocks and zones shift

    async def _dial(self, contact: Contact) -> str | None:
        plan = self.plan
        query = {"persona": plan.persona}
        if contact.variables:
            query["vars"] = seal(plan.key, contact.variables)
        suffix = "?" + urlencode(query)
        base = plan.public_base
        fired = await self.client.make_call(
            plan.from_number,
            contact.key,
            f"{base}/vobiz/answer{suffix}",
            hangup_url=f"{base}/vobiz/hangup",
            machine_detection="true",
            extra={
                "machine_detection_url": f"{base}/vobiz/machine{suffix}",
                "machine_detection_method": "POST",
            },
        )
        return fired.call_uuid

    async def _follow(self, call_uuid: str) -> tuple[str, dict[str, Any]]:
        """Wait for the call to end; its outcome and the results' fields."""
        started = self.clock.now()
        detail: Mapping[str, Any] | None = None
        while self.clock.now() - started < self.plan.max_call_seconds:
            detail = await self.client.get_call(call_uuid)
            if detail is not None and _ended(detail):
                break
            await self.clock.sleep(self.plan.poll_interval)
        else:
            return "failed", {"record_id": call_uuid}
        outcome = classify(detail)
        fields: dict[str, Any] = {
            "duration": _int(detail.get("call_duration") or detail.get("bill_duration"))
        }
        if outcome == "answered":
            record = await self.lookup(call_uuid)
            if record is not None:
                fields["record_id"] = record.get("call_id", call_uuid)
                fields["disposition"] = record.get("disposition") or ""
                if (record.get("stats") or {}).get("answered_by") == "machine":
                    outcome = "voicemail"
            else:
                fields["record_id"] = call_uuid
        return outcome, fields


def _int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def write_results(
    path: Path, contacts: tuple[Contact, ...], state: CampaignState, skipped: tuple[tuple[int, str, str], ...]
) -> None:
    """The results CSV (:data:`RESULT_COLUMNS`), one row per contact line; written atomically."""
    rows: list[dict[str, Any]] = []
    for contact in contacts:
        entry = state.contacts.get(contact.key, {})
        outcome = entry.get("outcome") or "pending"
        rows.append({
            "number": contact.key,
            "outcome": outcome,
            "attempts": entry.get("attempts", 0),
            "duration": "" if entry.get("duration") is None else entry["duration"],
            "disposition": entry.get("disposition", ""),
            "record_id": entry.get("record_id", ""),
        })  # fmt: skip
    for _line, raw, _why in skipped:
        rows.append({"number": raw, "outcome": "skipped", "attempts": 0,
                     "duration": "", "disposition": "", "record_id": ""})  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".results-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, RESULT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
