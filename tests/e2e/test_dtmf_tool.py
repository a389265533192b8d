"""``send_dtmf``: the model presses phone keys; they reach the Vobiz REST API's DTMF endpoint."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from app.config import Settings
from app.providers.scripted import Rule, ScriptedLLM
from app.simulator.caller import HangUp, Silence, Step, WaitForAgent
from app.simulator.vobiz_rest import create_fake_rest_app
from app.simulator.vobiz_rest_state import FakeCall, FakeVobizState
from app.telephony.rest import VobizClient
from tests.e2e.test_conversation import run_call, words

AUTH_ID, TOKEN = "MA_DTMF0000000000001", "dtmf-token"


async def test_the_agent_presses_keys_during_a_call(make_settings: Callable[..., Settings]) -> None:
    llm = ScriptedLLM(
        [
            Rule(
                r"press one",
                "Pressing one.",
                tool="send_dtmf",
                arguments={"digits": "1w#"},
                after_tool="Done.",
            )
        ]
    )
    steps: list[Step] = [
        WaitForAgent(),
        words("Please press one for me."),
        WaitForAgent(),
        Silence(1),
        HangUp(),
    ]
    call = await run_call(make_settings, steps, ["Please press one for me."], llm=llm)
    assert call.rest.calls[call.rec.call_id].dtmf == [{"digits": "1w#", "leg": "aleg"}]
    assert call.rec.protocol_errors == []
    assert [c.name for c in call.conversation.tool_ctx.calls] == ["send_dtmf"]


async def test_the_rest_client_sends_and_the_fake_checks_digits() -> None:
    state = FakeVobizState()
    state.calls["c-1"] = FakeCall(call_uuid="c-1", from_number="1", to_number="2", direction="inbound")
    app = create_fake_rest_app(AUTH_ID, TOKEN, state)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vobiz")
    async with VobizClient(AUTH_ID, TOKEN, base_url="http://vobiz/api/v1", http=http) as client:
        sent = await client.send_dtmf("c-1", "123#", leg="bleg")
        assert sent.message == "digits sent"
        with pytest.raises(ValueError, match="digits may hold only"):
            await client.send_dtmf("c-1", "12; DROP")
        assert state.calls["c-1"].dtmf == [{"digits": "123#", "leg": "bleg"}]
        assert [r.raw_path for r in state.requests] == [f"/api/v1/Account/{AUTH_ID}/Call/c-1/DTMF/"]
        bad = await http.post(
            f"/api/v1/Account/{AUTH_ID}/Call/c-1/DTMF/",
            json={"digits": "12x"},
            headers={"X-Auth-ID": AUTH_ID, "X-Auth-Token": TOKEN},
        )
        assert bad.status_code == 400
        assert "digits" in bad.text
