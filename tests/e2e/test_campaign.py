"""An outbound campaign end to end: the campaign runner dials through the fake Vobiz REST API, the
fake places each call to the service (a person, a busy line, an answering machine, no answer),
and the results and the state file say what happened. Virtual time: minutes of calls and retry
delays take seconds.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest

from app.campaign.contacts import CallingHours, read_contacts, read_dnc
from app.campaign.runner import Campaign, CampaignPlan, CampaignState, write_results
from app.campaign.sealed import campaign_key
from app.clock import FakeClock
from app.config import Settings
from app.main import create_app
from app.simulator.callee import BEEP_TEXT, Callee
from app.simulator.caller import HangUp, Silence
from app.simulator.connect import AsgiConnector
from app.simulator.platform import FakeVobiz, PlatformConfig
from app.simulator.recording import CallRecording
from app.simulator.vobiz_answer import signature_headers
from app.simulator.vobiz_rest import create_fake_rest_app
from app.simulator.vobiz_rest_state import FakeVobizState
from app.telephony.rest import VobizClient
from tests.e2e.test_emulator import clean

AUTH_ID, AUTH_TOKEN = "MA_SIMULATOR00000001", "simulator-auth-token"
PUBLIC = "https://agent.example.com"
# 10:30 in India on a Friday: inside 09:00-20:00 for every +91 contact
WALL_START = datetime(2026, 12, 4, 10, 30, tzinfo=ZoneInfo("Asia/Kolkata")).timestamp()

PERSONA = """---
display_name: Sunrise Finance
greeting: Hello {name}, this is Sunrise Finance.
variables: {name: "there", due_date: ""}
voicemail: leave
voicemail_message: "Hello {name}, your payment is due on {due_date}. Please call us back."
---
You remind {name} that a payment is due on {due_date}.
"""

CONTACTS = """number,name,due_date
+91 98000 00001,Asha,5 January
+919800000002,Ravi,6 January
+919800000003,Meera {today},7 January
+919800000004,Dev,8 January
+919800000005,Kiran,9 January
"""
PERSON, BUSY_THEN_PERSON, MACHINE, DNC, NO_ANSWER = (f"+9198000000{i:02d}" for i in range(1, 6))


@dataclass
class World:
    clock: FakeClock
    vobiz: FakeVobiz
    state: FakeVobizState
    app: Any
    client: VobizClient
    folder: Path


@asynccontextmanager
async def world(
    make_settings: Callable[..., Settings], tmp_path: Path, persona: str = PERSONA
) -> AsyncIterator[World]:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "collector.md").write_text(persona)
    settings = make_settings(
        signature_mode="enforce",
        vobiz_auth_id=AUTH_ID,
        vobiz_auth_token=AUTH_TOKEN,
        vobiz_api_base_url="http://vobiz/api/v1",
        prompts_dir=prompts,
        default_persona="collector",
    )
    clock = FakeClock(wall_start=WALL_START)
    state = FakeVobizState()
    rest_app = create_fake_rest_app(AUTH_ID, AUTH_TOKEN, state)
    service_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=rest_app), base_url="http://vobiz")
    app = create_app(settings, clock=clock, vobiz_http=service_http)
    connector = AsgiConnector(app, {})
    vobiz = FakeVobiz(connector, clock, PlatformConfig(auth_token=AUTH_TOKEN))
    vobiz.attach_rest(state)
    person = Callee(steps=(Silence(3.0), HangUp()))
    vobiz.callees = {
        PERSON[1:]: person,
        BUSY_THEN_PERSON[1:]: Callee(answers=("busy", "person"), steps=person.steps),
        MACHINE[1:]: Callee(answers=("machine",), greeting_s=2.0, beep_s=0.5, record_s=20.0),
        DNC[1:]: person,
        NO_ANSWER[1:]: Callee(answers=("no-answer",)),
    }
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=rest_app), base_url="http://vobiz")
    client = VobizClient(AUTH_ID, AUTH_TOKEN, "http://vobiz/api/v1", http=http, retry_backoff=0)
    try:
        async with app.router.lifespan_context(app):
            yield World(clock, vobiz, state, app, client, tmp_path)
    finally:
        await http.aclose()
        await service_http.aclose()
        await connector.aclose()


class Interrupted(Exception):
    """Stands for Ctrl-C after a number of contacts."""


def dialled(state: FakeVobizState) -> Counter[str]:
    """Make Call requests per number."""
    made = state.requests_to("POST", f"/api/v1/Account/{AUTH_ID}/Call/")
    return Counter(str(r.json()["to"]) for r in made)


async def test_campaign_retries_leaves_voicemail_skips_dnc_and_resumes(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    async with world(make_settings, tmp_path) as w:
        (w.folder / "contacts.csv").write_text(CONTACTS)
        (w.folder / "dnc.txt").write_text("# asked not to be called\n0091 98000-00004\n")
        contacts = read_contacts(w.folder / "contacts.csv", {"name", "due_date"})
        dnc = read_dnc(w.folder / "dnc.txt")
        plan = CampaignPlan(
            persona="collector",
            from_number="+918071387423",
            public_base=PUBLIC,
            key=campaign_key("test-secret-0123456789", AUTH_TOKEN),
            max_concurrent=2,
            retries=1,
            retry_delay=30.0,
            hours=CallingHours.parse("09:00-20:00"),
            poll_interval=1.0,
        )
        store = w.app.state.call_records

        async def lookup(call_id: str) -> Mapping[str, Any] | None:
            with w.clock.hold():
                record = await store.get(call_id)
            return None if record is None else record.to_json()

        state_file = w.folder / "state.json"

        def stop_after_two(done: int, total: int) -> None:
            if done >= 2:
                raise Interrupted

        async def both_runs() -> tuple[dict[str, Any], Counter[str], Counter[str]]:
            async with w.vobiz.serving():
                first = Campaign(plan, w.client, w.clock, CampaignState(state_file), lookup, stop_after_two)
                with pytest.raises(ExceptionGroup) as caught:
                    await first.run(contacts.contacts, dnc)
                assert caught.group_contains(Interrupted)
                interrupted = json.loads(state_file.read_text())["contacts"]
                before = dialled(w.state)
                await w.clock.sleep(1.0)  # the live calls go on while the dialler is down
                second = Campaign(plan, w.client, w.clock, CampaignState(state_file), lookup)
                await second.run(contacts.contacts, dnc)
                after = dialled(w.state)
            write_results(
                w.folder / "results.csv", contacts.contacts, CampaignState(state_file), contacts.skipped
            )
            return interrupted, before, after

        interrupted, before, after = await w.clock.run(both_runs(), real_timeout=120)
        results = {
            row["number"]: row for row in csv.DictReader((w.folder / "results.csv").read_text().splitlines())
        }
        machine_recs = [rec for rec in w.vobiz.finished if rec.call_id == results[MACHINE]["record_id"]]

    assert set(results) == {PERSON, BUSY_THEN_PERSON, MACHINE, DNC, NO_ANSWER}
    assert results[PERSON]["outcome"] == "answered"
    assert results[PERSON]["attempts"] == "1"
    assert results[BUSY_THEN_PERSON]["outcome"] == "answered"
    assert results[BUSY_THEN_PERSON]["attempts"] == "2"  # busy, redialled after the delay, answered
    assert results[MACHINE]["outcome"] == "voicemail"
    assert results[DNC]["outcome"] == "dnc"
    # resumed: what was done at the interruption was not dialled again; a call live then was
    # followed to its end (the totals below: no number was dialled more than its attempts)
    assert sum("outcome" in e for e in interrupted.values()) == 2
    assert any(e.get("live") for e in interrupted.values())
    for number, entry in interrupted.items():
        if "outcome" in entry:
            assert after[number] == before[number], number
    assert results[DNC]["attempts"] == "0"
    assert results[NO_ANSWER]["outcome"] == "no-answer"
    assert results[NO_ANSWER]["attempts"] == "2"
    assert int(results[PERSON]["duration"]) >= 3
    assert results[PERSON]["record_id"]
    total = dialled(w.state)
    assert DNC not in total
    assert total[PERSON] == 1  # never dialled twice, across the interruption
    assert total[MACHINE] == 1
    assert total[BUSY_THEN_PERSON] == 2
    assert total[NO_ANSWER] == 2
    # the voicemail: said after the machine's beep, with the contact's values (its text literal)
    (rec,) = machine_recs
    check_voicemail(rec)


def check_voicemail(rec: CallRecording) -> None:
    clean(rec)
    kinds = [(e.kind, e.detail.get("text")) for e in rec.events]
    beep_start = kinds.index(("caller_speech_start", BEEP_TEXT))
    beep_end = next(e.t for e in rec.events[beep_start:] if e.kind == "caller_speech_end")
    (speak,) = [e for e in rec.events if e.kind == "speak"]
    assert speak.detail["text"] == (
        "Hello Meera {today}, your payment is due on 7 January. Please call us back."
    )
    assert speak.t >= beep_end
    rate = rec.sample_rate
    spoken = rec.agent[int(speak.t * rate) : int((speak.t + 1.0) * rate)]
    assert np.sqrt(np.mean(spoken.astype(np.float64) ** 2)) > 1000  # the message is heard
    assert any(line.text == BEEP_TEXT for line in rec.transcript)


async def test_machine_hung_up_and_calling_hours_wait(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A persona with ``voicemail: hangup``: the machine's call is hung up over the REST API, no
    message. A contact in New York (midnight there) is dialled when its 09:00 comes."""
    persona = PERSONA.replace("voicemail: leave", "voicemail: hangup")
    async with world(make_settings, tmp_path, persona) as w:
        (w.folder / "contacts.csv").write_text(
            "number,name,due_date,timezone\n"
            f"{MACHINE},Meera,7 January,\n+14155550199,Bo,8 January,America/New_York\n"
        )
        w.vobiz.callees["14155550199"] = Callee(steps=(Silence(2.0), HangUp()))
        contacts = read_contacts(w.folder / "contacts.csv", {"name", "due_date"})
        plan = CampaignPlan(
            persona="collector",
            from_number="+918071387423",
            public_base=PUBLIC,
            key=campaign_key("test-secret-0123456789", AUTH_TOKEN),
            max_concurrent=2,
            hours=CallingHours.parse("09:00-20:00"),
            poll_interval=1.0,
        )
        store = w.app.state.call_records

        async def lookup(call_id: str) -> Mapping[str, Any] | None:
            with w.clock.hold():
                record = await store.get(call_id)
            return None if record is None else record.to_json()

        state = CampaignState(w.folder / "state.json")

        async def run() -> None:
            async with w.vobiz.serving():
                await Campaign(plan, w.client, w.clock, state, lookup).run(contacts.contacts, frozenset())

        await w.clock.run(run(), real_timeout=120)
        machine = state.contacts[MACHINE]
        new_york = state.contacts["+14155550199"]
        with w.clock.hold():
            record = await store.get(new_york["record_id"])
    assert machine["outcome"] == "voicemail"
    (rec,) = [r for r in w.vobiz.finished if r.call_id == machine["record_id"]]
    assert not [e for e in rec.events if e.kind == "speak"]
    assert rec.end_reason == "hung up over the REST API"
    assert w.state.calls[machine["record_id"]].hangup_source == "API"
    assert new_york["outcome"] == "answered"
    assert record is not None
    opening = datetime(2026, 12, 4, 9, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()
    assert opening <= record.started_at < opening + 60  # waited for 09:00 in New York, then dialled


async def test_machine_callback_ignores_humans_and_forged_values(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """``Machine=false`` changes nothing; values that do not verify are not used."""
    async with world(make_settings, tmp_path) as w:
        transport = httpx.ASGITransport(app=w.app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC) as http:
            url = f"{PUBLIC}/vobiz/machine?persona=collector"
            form = {"CallUUID": "c-1", "Event": "MachineDetection", "Machine": "false"}
            reply = await http.post(url, data=form, headers=signature_headers(url, AUTH_TOKEN))
            assert reply.status_code == 204
            unsigned = await http.post(url, data={**form, "Machine": "true"})
            assert unsigned.status_code == 403  # the callback is signed like every webhook
            vm = f"{PUBLIC}/vobiz/voicemail/collector?vars=forged"
            xml = await http.post(vm, data={"CallUUID": "c-1"}, headers=signature_headers(vm, AUTH_TOKEN))
    assert w.state.requests == []  # no hang-up, no transfer
    assert xml.status_code == 200
    assert "<Wait" in xml.text
    assert "Hello there, your payment is due on ." in xml.text  # the persona's defaults
