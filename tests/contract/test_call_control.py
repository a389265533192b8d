"""The agent's call control (hang-up, transfer, DTMF) against the fake Vobiz REST API, errors included."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from app.pipeline.control import VobizCallControl
from app.simulator.vobiz_rest import FakeVobizState, create_fake_rest_app
from app.telephony.rest import VobizClient
from tests.servers import serve_in_thread

AUTH_ID = "MACONTROL0001"
TOKEN = "control-token-never-logged"
CALL = "7f6a3c1e-2b4d-4e8f-9a0b-1c2d3e4f5a6b"
TRANSFER = "https://agent.example.com/vobiz/transfer"


@pytest.fixture
def fake() -> Iterator[tuple[str, FakeVobizState]]:
    state = FakeVobizState()
    state.add_live_call(CALL)
    with serve_in_thread(create_fake_rest_app(AUTH_ID, TOKEN, state)) as base:
        yield base + "/api/v1", state


@pytest.fixture
async def client(fake: tuple[str, FakeVobizState]) -> AsyncIterator[VobizClient]:
    async with VobizClient(AUTH_ID, TOKEN, fake[0], max_retries=0, retry_backoff=0, timeout=5) as c:
        yield c


async def test_hang_up_and_transfer_reach_the_call(
    client: VobizClient, fake: tuple[str, FakeVobizState]
) -> None:
    state = fake[1]
    control = VobizCallControl(client, CALL, TRANSFER)
    assert await control.transfer() == "The caller is being transferred now."
    assert state.calls[CALL].transfers[-1]["aleg_url"] == TRANSFER
    assert await control.send_dtmf("12#") == "Pressed 3 key(s)."
    assert state.calls[CALL].dtmf[-1]["digits"] == "12#"
    await control.hang_up()
    assert not state.calls[CALL].is_live
    assert state.calls[CALL].hangup_source == "API"


async def test_a_failed_rest_hang_up_is_logged_not_raised(
    client: VobizClient, fake: tuple[str, FakeVobizState], caplog: pytest.LogCaptureFixture
) -> None:
    fake[1].fail_next(1, 500, method="DELETE")
    with caplog.at_level(logging.WARNING, logger="app.control"):
        await VobizCallControl(client, CALL, TRANSFER).hang_up()  # the stream's stop ends the call anyway
    (record,) = [r for r in caplog.records if r.name == "app.control"]
    assert record.getMessage().startswith("REST hang-up failed")
    assert getattr(record, "call_id", None) == CALL
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("status", [400, 404, 500, 503])
async def test_a_failed_transfer_tells_the_model_to_apologise(
    client: VobizClient, fake: tuple[str, FakeVobizState], status: int, caplog: pytest.LogCaptureFixture
) -> None:
    fake[1].fail_next(1, status, method="POST")
    with caplog.at_level(logging.WARNING, logger="app.control"):
        answer = await VobizCallControl(client, CALL, TRANSFER).transfer()
    assert answer == "The transfer did not go through; apologise and offer to help another way."
    assert [r.getMessage().split(":")[0] for r in caplog.records if r.name == "app.control"] == [
        "transfer failed"
    ]
    assert fake[1].calls[CALL].transfers == []


async def test_transfer_to_an_ended_call_fails_cleanly(
    client: VobizClient, fake: tuple[str, FakeVobizState]
) -> None:
    fake[1].end_call(CALL)
    answer = await VobizCallControl(client, CALL, TRANSFER).transfer()
    assert answer.startswith("The transfer did not go through")


@pytest.mark.parametrize(
    ("digits", "fault"),
    [("12", 500), ("12", 404), ("", None), ("12x", None)],  # REST errors; digits refused before sending
)
async def test_failed_dtmf_is_an_error_for_the_model_and_never_logs_the_digits(
    client: VobizClient,
    fake: tuple[str, FakeVobizState],
    digits: str,
    fault: int | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if fault is not None:
        fake[1].fail_next(1, fault, method="POST")
    with caplog.at_level(logging.DEBUG):
        answer = await VobizCallControl(client, CALL, TRANSFER).send_dtmf(digits)
    assert answer == "error: the keys could not be pressed"
    assert fake[1].calls[CALL].dtmf == []
    messages = [r.getMessage() for r in caplog.records if r.name == "app.control"]
    assert len(messages) == 1
    assert messages[0].startswith("DTMF failed: ")
    if digits:
        assert digits not in messages[0]


async def test_without_rest_credentials_nothing_is_sent() -> None:
    control = VobizCallControl(None, CALL, TRANSFER)
    await control.hang_up()
    assert await control.transfer() == "Transfer is not available on this line; offer to help another way."
    assert await control.send_dtmf("1") == "error: pressing keys is not available on this line"


async def test_without_a_transfer_url_transfer_is_unavailable(
    client: VobizClient, fake: tuple[str, FakeVobizState]
) -> None:
    answer = await VobizCallControl(client, CALL, None).transfer()
    assert answer.startswith("Transfer is not available")
    assert fake[1].requests == []
