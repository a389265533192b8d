"""``VobizClient.get_call`` against the fake REST API on 127.0.0.1: the Call object of an ended
call, None while it is live (no record yet) or unknown; and the voicemail document it transfers to."""

from __future__ import annotations

import pytest

from app.simulator.vobiz_rest import FakeVobizState, create_fake_rest_app
from app.simulator.vobiz_rest_state import FakeCall
from app.telephony.rest import VobizClient
from app.telephony.xml import voicemail_xml
from tests.servers import serve_in_thread

AUTH_ID, AUTH_TOKEN = "MA_TESTACCOUNT000001", "test-token"


async def test_get_call_reads_the_call_record() -> None:
    state = FakeVobizState()
    state.add_call(FakeCall("c-live", to_number="+919800000001", direction="outbound"))
    state.add_call(FakeCall("c-busy", to_number="+919800000002", direction="outbound"))
    state.finish_call("c-busy", cause="USER_BUSY", answered=False, duration=0.0, source="Callee")
    with serve_in_thread(create_fake_rest_app(AUTH_ID, AUTH_TOKEN, state)) as url:
        async with VobizClient(AUTH_ID, AUTH_TOKEN, f"{url}/api/v1") as client:
            live = await client.get_call("c-live")
            busy = await client.get_call("c-busy")
            unknown = await client.get_call("nope")
    assert live is None
    assert unknown is None
    assert busy is not None
    assert busy["hangup_cause_name"] == "USER_BUSY"
    assert busy["answer_time"] is None
    assert busy["end_time"]
    assert busy["call_duration"] == 0
    (request,) = [r for r in state.requests if r.path.endswith("/c-busy/")]
    assert request.method == "GET"
    assert request.path == f"/api/v1/Account/{AUTH_ID}/Call/c-busy/"


def test_voicemail_xml() -> None:
    document = voicemail_xml("Hi <Asha> & co", 30)
    assert document.endswith(
        '<Response><Wait length="30" beep="true"/><Speak>Hi &lt;Asha&gt; &amp; co</Speak><Hangup/></Response>'
    )
    assert 'length="120"' in voicemail_xml("Hi", 999)
    with pytest.raises(ValueError, match="empty"):
        voicemail_xml("  ")
