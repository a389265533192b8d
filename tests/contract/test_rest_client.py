"""Contract tests: ``VobizClient`` against the fake Vobiz REST API over real sockets.

Response variants the fake never emits (old doc revisions, PROTOCOL.md §10 D13–D16) are
served by ``httpx.MockTransport`` with the documented JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from app.config import Settings
from app.simulator.vobiz_rest import FakeVobizState, create_fake_rest_app
from app.simulator.vobiz_rest_state import FakeCall, FakeStream
from app.telephony.rest import (
    Stream,
    VobizAuthError,
    VobizClient,
    VobizConnectionError,
    VobizError,
    VobizNotFoundError,
    VobizRateLimitError,
    VobizServerError,
    VobizTimeoutError,
    VobizValidationError,
    render_extra_headers,
)
from tests.servers import serve_in_thread

AUTH_ID = "MATESTACCOUNT01"
TOKEN = "tok-Secr3t-never-print-me"
CALL = "c6ebf396-59c2-4f2a-8771-fbb5d981e301"
ACCOUNT = f"/api/v1/Account/{AUTH_ID}"
WS = "wss://agent.example.com/fork"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, FakeVobizState]]:
    state = FakeVobizState()
    with serve_in_thread(create_fake_rest_app(AUTH_ID, TOKEN, state)) as base:
        yield base, state


@pytest.fixture
def state(server: tuple[str, FakeVobizState]) -> Iterator[FakeVobizState]:
    state = server[1]
    state.reset()
    state.add_live_call(CALL)
    yield state
    # a request the fake delayed outlives its client's timeout: let it finish here, not in the next test
    assert state.wait_idle(), "a request to the fake REST API is still being served"


@pytest.fixture
def api(server: tuple[str, FakeVobizState]) -> str:
    return server[0] + "/api/v1"


@pytest.fixture
async def client(api: str, state: FakeVobizState) -> AsyncIterator[VobizClient]:
    async with VobizClient(AUTH_ID, TOKEN, api, max_retries=2, retry_backoff=0, timeout=5) as c:
        yield c


Handler = Callable[[httpx.Request], httpx.Response]


@asynccontextmanager
async def mocked(handler: Handler, **options: Any) -> AsyncIterator[VobizClient]:
    """A client whose transport answers with ``handler`` (documented variants)."""
    transport = httpx.MockTransport(handler)
    async with (
        httpx.AsyncClient(transport=transport) as http,
        VobizClient(AUTH_ID, TOKEN, http=http, retry_backoff=0, **options) as c,
    ):
        yield c


def reply(status: int, body: Any = None, seen: list[httpx.Request] | None = None) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if body is None:
            return httpx.Response(status)
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    return handle


# ── every operation against the fake ──


async def test_start_stream_sends_the_documented_request(client: VobizClient, state: FakeVobizState) -> None:
    started = await client.start_stream(
        CALL,
        WS,
        content_type="audio/x-mulaw;rate=8000",
        stream_timeout=600,
        status_callback_url="https://agent.example.com/stream-status",
        extra_headers={"X-Session": "abc", "X-Agent": "7"},
    )
    assert started.message == "Stream started"
    assert started.api_id
    [stream] = state.active_streams(CALL)
    assert started.stream_id == stream.stream_id
    assert stream.extra_headers == "X-Session:abc,X-Agent:7"  # header:value, PROTOCOL.md §6.1
    [request] = state.requests
    assert (request.method, request.raw_path) == ("POST", f"{ACCOUNT}/Call/{CALL}/Stream/")
    assert request.headers["x-auth-id"] == AUTH_ID
    assert request.headers["x-auth-token"] == TOKEN
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("vobiz-voice-agent/")
    assert request.json() == {
        "service_url": WS,
        "bidirectional": False,
        "audio_track": "inbound",
        "content_type": "audio/x-mulaw;rate=8000",
        "stream_timeout": 600,
        "status_callback_url": "https://agent.example.com/stream-status",
        "status_callback_method": "POST",
        "extra_headers": "X-Session:abc,X-Agent:7",
    }


async def test_start_stream_always_sends_audio_track(client: VobizClient, state: FakeVobizState) -> None:
    await client.start_stream(CALL, WS, bidirectional=True)
    assert state.requests[0].json() == {
        "service_url": WS,
        "bidirectional": True,
        "audio_track": "inbound",
        "content_type": "audio/x-l16;rate=8000",
    }


async def test_get_stream_returns_the_full_object(client: VobizClient, state: FakeVobizState) -> None:
    started = await client.start_stream(CALL, WS, content_type="audio/x-l16;rate=16000")
    assert started.stream_id is not None
    stream = await client.get_stream(CALL, started.stream_id)
    assert (stream.stream_id, stream.call_uuid, stream.service_url) == (started.stream_id, CALL, WS)
    assert (stream.audio_track, stream.bidirectional, stream.status) == ("inbound", False, "in-progress")
    assert (stream.content_type, stream.sampling_rate, stream.stream_timeout) == (
        "audio/x-l16;rate=16000",
        16000,
        86400,
    )
    assert stream.start_time is not None
    assert stream.start_time.tzinfo is not None
    assert stream.end_time is None
    assert stream.resource_uri == f"{ACCOUNT}/Call/{CALL}/Stream/{started.stream_id}/"
    assert stream.api_id
    assert stream.raw["stream_id"] == started.stream_id
    get = state.requests[-1]
    assert (get.method, get.raw_path, get.body) == (
        "GET",
        f"{ACCOUNT}/Call/{CALL}/Stream/{started.stream_id}/",
        b"",
    )
    assert "content-type" not in get.headers


async def test_list_streams_pages(client: VobizClient, state: FakeVobizState) -> None:
    for n in range(3):
        await client.start_stream(CALL, f"{WS}/{n}")
    page = await client.list_streams(CALL, limit=2, offset=2)
    assert (page.page, page.per_page, page.total) == (2, 2, 3)
    assert [s.service_url for s in page.streams] == [f"{WS}/2"]
    assert state.requests[-1].query == "limit=2&offset=2"


async def test_stop_stream_then_again_is_not_an_error(client: VobizClient, state: FakeVobizState) -> None:
    started = await client.start_stream(CALL, WS)
    assert started.stream_id is not None
    assert await client.stop_stream(CALL, started.stream_id) is True
    assert await client.stop_stream(CALL, started.stream_id) is False
    assert state.streams[started.stream_id].status == "completed"
    assert (await client.get_stream(CALL, started.stream_id)).end_time is not None
    assert state.requests[1].raw_path == f"{ACCOUNT}/Call/{CALL}/Stream/{started.stream_id}/"


async def test_stop_all_streams_is_idempotent(client: VobizClient, state: FakeVobizState) -> None:
    await client.start_stream(CALL, f"{WS}/a")
    await client.start_stream(CALL, f"{WS}/b")
    assert await client.stop_all_streams(CALL) is None
    assert await client.stop_all_streams(CALL) is None
    assert state.active_streams(CALL) == []
    assert state.requests[-1].method == "DELETE"
    assert state.requests[-1].raw_path == f"{ACCOUNT}/Call/{CALL}/Stream/"


async def test_hangup_call(client: VobizClient, state: FakeVobizState) -> None:
    await client.start_stream(CALL, WS)
    assert await client.hangup_call(CALL) is True
    assert await client.hangup_call(CALL) is False
    call = state.calls[CALL]
    assert (call.status, call.hangup_source) == ("completed", "API")
    assert state.active_streams(CALL) == []
    assert [(r.method, r.raw_path) for r in state.requests[1:]] == [("DELETE", f"{ACCOUNT}/Call/{CALL}/")] * 2


async def test_transfer_call(client: VobizClient, state: FakeVobizState) -> None:
    result = await client.transfer_call(CALL, "https://agent.example.com/transfer")
    assert (result.call_uuid, result.message) == (CALL, "call transferred")
    assert result.api_id
    assert state.calls[CALL].transfers == [
        {"legs": "aleg", "aleg_url": "https://agent.example.com/transfer", "aleg_method": "POST"}
    ]
    await client.transfer_call(CALL, "https://a.example/x", legs="both", bleg_url="https://b.example/y")
    assert state.requests[-1].json() == {
        "legs": "both",
        "aleg_url": "https://a.example/x",
        "aleg_method": "POST",
        "bleg_url": "https://b.example/y",
        "bleg_method": "POST",
    }
    assert state.requests[-1].raw_path == f"{ACCOUNT}/Call/{CALL}/"


async def test_make_call(client: VobizClient, state: FakeVobizState) -> None:
    fired = await client.make_call(
        "+918071387423",
        "+14155551234",
        "https://agent.example.com/vobiz/answer",
        hangup_url="https://agent.example.com/vobiz/hangup",
        machine_detection=True,
        time_limit=300,
        extra={"caller_name": "Agent"},
    )
    assert fired.message == "Call fired"
    assert fired.call_uuid is not None
    assert fired.call_uuids == (fired.call_uuid,)
    call = state.calls[fired.call_uuid]
    assert (call.direction, call.status, call.to_number) == ("outbound", "in-progress", "+14155551234")
    assert state.requests[-1].raw_path == f"{ACCOUNT}/Call/"
    assert call.request == {
        "from": "+918071387423",
        "to": "+14155551234",
        "answer_url": "https://agent.example.com/vobiz/answer",
        "answer_method": "POST",
        "hangup_url": "https://agent.example.com/vobiz/hangup",
        "hangup_method": "POST",
        "machine_detection": "true",
        "time_limit": 300,
        "caller_name": "Agent",
    }
    with pytest.raises(ValueError, match="answer_method"):
        await client.make_call("+1", "+2", "https://a.example/", extra={"answer_method": "GET"})


async def test_fake_runs_hooks() -> None:
    seen: list[str] = []

    async def started(stream: FakeStream) -> None:
        seen.append(f"start {stream.service_url}")

    async def stopped(stream: FakeStream) -> None:
        seen.append(f"stop {stream.service_url}")

    async def transferred(call: FakeCall, body: Any) -> None:
        seen.append(f"transfer {call.call_uuid} {body['aleg_url']}")

    async def hung_up(call_uuid: str) -> None:
        seen.append(f"hangup {call_uuid}")

    async def fired(call: FakeCall) -> None:
        seen.append(f"fired {call.to_number}")

    state = FakeVobizState(
        on_stream_started=started,
        on_stream_stopped=stopped,
        on_transfer=transferred,
        on_hangup=hung_up,
        on_call_fired=fired,
    )
    state.add_live_call(CALL)
    with serve_in_thread(create_fake_rest_app(AUTH_ID, TOKEN, state)) as base:
        async with VobizClient(AUTH_ID, TOKEN, base + "/api/v1") as c:
            await c.start_stream(CALL, WS)
            await c.transfer_call(CALL, "https://a.example/t")
            await c.hangup_call(CALL)
            await c.make_call("+1", "+2", "https://a.example/answer")
    assert seen == [
        f"start {WS}",
        f"transfer {CALL} https://a.example/t",
        f"stop {WS}",
        f"hangup {CALL}",
        "fired +2",
    ]


# ── typed errors ──


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (
            lambda c: c.start_stream(CALL, "https://not-a-socket.example"),
            "service_url must be a valid ws/wss URL",
        ),
        (
            lambda c: c.start_stream(CALL, WS, bidirectional=True, audio_track="both"),
            "audio_track must be inbound if bidirectional",
        ),
        (
            lambda c: c.transfer_call(CALL, "https://a.example/t", legs="bleg"),
            "No transfer URL given for legs=bleg",
        ),
        (lambda c: c.make_call("+1", "+2", ""), "answer_url is required"),
    ],
)
async def test_validation_errors(client: VobizClient, operation: Any, message: str) -> None:
    with pytest.raises(VobizValidationError) as caught:
        await operation(client)
    error = caught.value
    assert (error.status_code, error.message, error.code) == (400, message, "VALIDATION_ERROR")
    assert error.request_id is not None
    assert error.request_id.startswith("req_")
    assert str(error) == f"400 {message}"


async def test_not_found_errors(client: VobizClient) -> None:
    with pytest.raises(VobizNotFoundError) as caught:
        await client.get_stream(CALL, "no-such-stream")
    assert str(caught.value) == "404 Stream not found"
    assert caught.value.api_id
    with pytest.raises(VobizNotFoundError, match="Call not found"):
        await client.start_stream("no-such-call", WS)


async def test_bad_credentials_never_leak_the_token(api: str, state: FakeVobizState) -> None:
    wrong = TOKEN + "-wrong"
    async with VobizClient(AUTH_ID, wrong, api) as c:
        with pytest.raises(VobizAuthError) as caught:
            await c.list_streams(CALL)
    error = caught.value
    assert error.status_code == 401
    assert "invalid" in error.message
    for text in (str(error), repr(error), repr(c)):
        assert wrong not in text
        assert TOKEN not in text
    assert len(state.requests) == 1  # 4xx is never retried


async def test_token_echoed_by_a_server_is_redacted() -> None:
    async with mocked(reply(403, {"error": f"token {TOKEN} is suspended"})) as c:
        with pytest.raises(VobizAuthError) as caught:
            await c.hangup_call(CALL)
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value)
    assert str(caught.value) == "403 token [redacted] is suspended"


async def test_fake_refuses_wrong_casing_foreign_account_and_missing_slash(
    api: str, state: FakeVobizState
) -> None:
    headers = {"X-Auth-ID": AUTH_ID, "X-Auth-Token": TOKEN}
    async with httpx.AsyncClient(headers=headers) as http:
        lower = await http.get(f"{api}/account/{AUTH_ID}/call/{CALL}/stream/")
        foreign = await http.get(f"{api}/Account/MAOTHER/Call/{CALL}/Stream/")
        no_slash = await http.get(f"{api}/Account/{AUTH_ID}/Call/{CALL}/Stream")
        no_auth = await http.get(f"{api}/Account/{AUTH_ID}/Call/{CALL}/Stream/", headers={"X-Auth-Token": ""})
    assert [lower.status_code, foreign.status_code, no_slash.status_code, no_auth.status_code] == [
        401,
        401,
        404,
        401,
    ]
    assert lower.json()["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    ("path", "content", "content_type"),
    [
        ("/Stream/", json.dumps({"service_url": WS}), "text/plain"),
        ("/Stream/", json.dumps({"service_url": WS}), "application/x-www-form-urlencoded"),
        ("/Stream/", json.dumps({"service_url": WS}), None),
        ("/", json.dumps({"legs": "aleg", "aleg_url": "https://a.example/x"}), "text/json"),
    ],
)
async def test_fake_refuses_a_body_that_is_not_labelled_json(
    api: str, state: FakeVobizState, path: str, content: str, content_type: str | None
) -> None:
    headers = {"X-Auth-ID": AUTH_ID, "X-Auth-Token": TOKEN}
    if content_type is not None:
        headers["Content-Type"] = content_type
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{api}/Account/{AUTH_ID}/Call/{CALL}{path}", content=content, headers=headers
        )
    assert answer.status_code == 415
    assert answer.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert state.active_streams(CALL) == []
    assert state.calls[CALL].transfers == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/Stream/", {"service_url": WS, "bidirectonal": True}, "bidirectonal"),  # misspelt
        ("/Stream/", {"service_url": WS, "audio_track": "inbound", "track": "both"}, "track"),
        ("/", {"legs": "aleg", "aleg_url": "https://a.example/x", "aleg_methd": "GET"}, "aleg_methd"),
        ("/DTMF/", {"digits": "12", "legs": "aleg"}, "legs"),
    ],
)
async def test_fake_refuses_unknown_and_misspelt_fields(
    api: str, state: FakeVobizState, path: str, body: dict[str, Any], field: str
) -> None:
    async with httpx.AsyncClient(headers={"X-Auth-ID": AUTH_ID, "X-Auth-Token": TOKEN}) as http:
        answer = await http.post(f"{api}/Account/{AUTH_ID}/Call/{CALL}{path}", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["details"] == {"field": field}
    assert state.active_streams(CALL) == []
    assert state.calls[CALL].dtmf == []


async def test_fake_takes_json_with_a_charset(api: str, state: FakeVobizState) -> None:
    headers = {"X-Auth-ID": AUTH_ID, "X-Auth-Token": TOKEN, "Content-Type": "application/json; charset=utf-8"}
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{api}/Account/{AUTH_ID}/Call/{CALL}/Stream/",
            content=json.dumps({"service_url": WS}),
            headers=headers,
        )
    assert answer.status_code == 202
    assert [s.service_url for s in state.active_streams(CALL)] == [WS]


@pytest.mark.parametrize(
    ("status", "body", "kind", "message"),
    [
        (
            404,
            {"api_id": "a1", "error": "No active stream found"},
            VobizNotFoundError,
            "No active stream found",
        ),
        (
            402,
            {
                "status": "error",
                "error": {"code": "INSUFFICIENT_BALANCE", "message": "Balance too low", "details": {}},
                "timestamp": "2026-04-24T09:25:00Z",
                "requestId": "req_abc",
            },
            VobizError,
            "Balance too low",
        ),
        (409, {"message": "Conflict on stream"}, VobizValidationError, "Conflict on stream"),
        (422, {"detail": [{"msg": "field required"}]}, VobizValidationError, "field required"),
        (429, "Too many requests\n", VobizRateLimitError, "Too many requests"),
        (
            502,
            "<html><body>Bad   Gateway</body></html>",
            VobizServerError,
            "<html><body>Bad Gateway</body></html>",
        ),
        (503, None, VobizServerError, "Service Unavailable"),
    ],
)
async def test_error_bodies_are_parsed_liberally(
    status: int, body: Any, kind: type[VobizError], message: str
) -> None:
    async with mocked(reply(status, body), max_retries=0) as c:
        with pytest.raises(kind) as caught:
            await c.get_stream(CALL, "s1")
    assert type(caught.value) is kind
    assert (caught.value.status_code, caught.value.message) == (status, message)
    if status == 402:
        assert (caught.value.code, caught.value.request_id) == ("INSUFFICIENT_BALANCE", "req_abc")


# ── retries ──


async def test_get_is_retried_after_503(client: VobizClient, state: FakeVobizState) -> None:
    state.fail_next(2, 503, method="GET")
    page = await client.list_streams(CALL)
    assert page.total == 0
    assert len(state.requests_to("GET", f"{ACCOUNT}/Call/{CALL}/Stream/")) == 3


async def test_delete_is_retried_after_5xx(client: VobizClient, state: FakeVobizState) -> None:
    state.fail_next(2, 502, body="upstream down", method="DELETE")
    assert await client.hangup_call(CALL) is True
    assert len(state.requests_to("DELETE")) == 3


async def test_post_is_never_retried(client: VobizClient, state: FakeVobizState) -> None:
    state.fail_next(1, 503, method="POST")
    with pytest.raises(VobizServerError, match="503"):
        await client.start_stream(CALL, WS)
    state.fail_next(1, 500, method="POST")
    with pytest.raises(VobizServerError):
        await client.make_call("+1", "+2", "https://a.example/answer")
    assert len(state.requests_to("POST")) == 2
    assert state.active_streams(CALL) == []


async def test_retries_are_bounded(client: VobizClient, state: FakeVobizState) -> None:
    state.fail_next(100, 503)
    with pytest.raises(VobizServerError) as caught:
        await client.get_stream(CALL, "s1")
    assert caught.value.status_code == 503
    assert len(state.requests) == 3  # max_retries=2 → 3 attempts


async def test_4xx_is_not_retried(client: VobizClient, state: FakeVobizState) -> None:
    state.fail_next(5, 429, headers={"Retry-After": "7"})
    with pytest.raises(VobizRateLimitError) as caught:
        await client.list_streams(CALL)
    assert caught.value.retry_after == 7.0
    assert len(state.requests) == 1


async def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with VobizClient(AUTH_ID, TOKEN, f"http://127.0.0.1:{port}/api/v1", retry_backoff=0) as c:
        with pytest.raises(VobizConnectionError) as caught:
            await c.hangup_call(CALL)
    assert caught.value.status_code is None
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert TOKEN not in repr(caught.value)


async def test_timeout_is_a_connection_error(api: str, state: FakeVobizState) -> None:
    state.delay_next(1, 0.5, method="POST")
    async with VobizClient(AUTH_ID, TOKEN, api, timeout=0.1, max_retries=0) as c:
        with pytest.raises(VobizConnectionError) as caught:
            await c.start_stream(CALL, WS)
    assert isinstance(caught.value, VobizTimeoutError)
    assert "timed out" in str(caught.value)
    for _ in range(200):  # the server still starts the stream: let it land in this test, not the next
        if state.active_streams(CALL):
            break
        await asyncio.sleep(0.01)


async def test_a_delayed_request_is_awaited_before_the_state_is_reused(
    api: str, state: FakeVobizState
) -> None:
    state.delay_next(1, 0.5, method="POST")
    async with VobizClient(AUTH_ID, TOKEN, api, timeout=0.1, max_retries=0) as c:
        with pytest.raises(VobizTimeoutError):
            await c.start_stream(CALL, WS)
    assert not await asyncio.to_thread(state.wait_idle, 0.0)  # the fake still serves the late request
    assert await asyncio.to_thread(state.wait_idle)
    assert [s.service_url for s in state.active_streams(CALL)] == [WS]  # it landed before the next test


async def test_get_timeout_is_retried(api: str, state: FakeVobizState) -> None:
    state.delay_next(1, 0.5, method="GET")
    async with VobizClient(AUTH_ID, TOKEN, api, timeout=0.1, max_retries=1, retry_backoff=0) as c:
        assert (await c.list_streams(CALL)).total == 0
    assert len(state.requests_to("GET")) == 2


# ── variants the fake does not emit (PROTOCOL.md §6, D13–D16) ──

DOC_LIST = {
    "page": 1,
    "per_page": 10,
    "total": 1,
    "objects": [
        {
            "stream_id": "728e273b-9c2c-4902-8509-2f88224cd3d5",
            "call_uuid": "c6ebf396-59c2-4f2a-8771-fbb5d981e301",
            "service_url": "wss://your-server.com/ws",
            "status_callback_url": "https://your-server.com/stream-status",
            "bidirectional": True,
            "audio_track": "both",
            "content_type": "audio/x-l16;rate=16000",
            "status": "in-progress",
            "start_time": "2026-04-24T09:25:00Z",
            "end_time": None,
        }
    ],
}


async def test_documented_list_example() -> None:
    async with mocked(reply(200, DOC_LIST)) as c:
        page = await c.list_streams(CALL)
    assert (page.page, page.per_page, page.total) == (1, 10, 1)
    [stream] = page.streams
    assert stream.sampling_rate == 16000
    assert stream.bidirectional is True
    assert stream.start_time == datetime(2026, 4, 24, 9, 25, tzinfo=UTC)
    assert stream.status_callback_url == "https://your-server.com/stream-status"


async def test_meta_envelope() -> None:
    body = {
        "meta": {"limit": 2, "offset": 2, "total_count": 3, "next": None, "previous": "/x"},
        "objects": [{"stream_id": "s3", "status": "completed"}, {"no_id": True}, "junk"],
    }
    async with mocked(reply(200, body)) as c:
        page = await c.list_streams(CALL, limit=2, offset=2)
    assert (page.page, page.per_page, page.total) == (2, 2, 3)
    assert [(s.stream_id, s.call_uuid, s.status) for s in page.streams] == [("s3", CALL, "completed")]


def test_old_stream_object_fields() -> None:
    stream = Stream.from_api(
        {
            "api_id": "a1",
            "account_id": "MA1",
            "stream_id": "s1",
            "call_uuid": CALL,
            "service_url": WS,
            "status_url": "https://a.example/status",
            "status_method": "GET",
            "extra_headers": '{"session": "abc"}',
            "bidirectional": "false",
            "content_type": "audio/x-mulaw",
            "stream_timeout": "86400",
            "start_time": "2026-04-24 09:25:00",
            "end_time": "2026-04-24T09:30:00+05:30",
        }
    )
    assert (stream.status_callback_url, stream.status_callback_method) == ("https://a.example/status", "GET")
    assert (stream.api_id, stream.account_id, stream.extra_headers) == ("a1", "MA1", {"session": "abc"})
    assert (stream.bidirectional, stream.sampling_rate, stream.stream_timeout) == (False, 8000, 86400)
    assert stream.start_time == datetime(2026, 4, 24, 9, 25, tzinfo=UTC)
    assert stream.end_time == datetime(2026, 4, 24, 4, 0, tzinfo=UTC)
    assert Stream.from_api({"stream_id": "s", "extra_headers": "a=1,b=2"}).extra_headers == {
        "a": "1",
        "b": "2",
    }


@pytest.mark.parametrize(
    ("fields", "rate"),
    [
        ({"content_type": "audio/x-l16;rate=24000"}, 24000),
        ({"content_type": "audio/x-l16"}, None),
        ({"content_type": "audio/x-l16", "sampling_rate": "16000"}, 16000),
        ({"content_type": "audio/x-mulaw;rate=8000", "sampling_rate": 8000}, 8000),
        ({}, None),
    ],
)
def test_sampling_rate_derivation(fields: dict[str, Any], rate: int | None) -> None:
    assert Stream.from_api({"stream_id": "s", **fields}).sampling_rate == rate


def test_stream_without_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="stream_id"):
        Stream.from_api({"call_uuid": CALL})


async def test_old_stop_responses() -> None:
    one = {"message": "Stream stopped successfully", "stream_id": "s1"}
    async with mocked(reply(200, one)) as c:
        assert await c.stop_stream(CALL, "s1") is True
    async with mocked(reply(200, {"message": "All streams stopped successfully", "streams_stopped": 2})) as c:
        assert await c.stop_all_streams(CALL) == 2
    async with mocked(reply(404, {"error": "No active stream found"})) as c:
        assert await c.stop_stream(CALL, "s1") is False
        assert await c.stop_all_streams(CALL) == 0


async def test_old_make_call_and_start_responses() -> None:
    seen: list[httpx.Request] = []
    async with mocked(reply(200, {"api_id": "a", "message": "call fired", "call_uuid": "u1"}, seen)) as c:
        fired = await c.make_call("+1", "+2", "https://a.example/answer")
    assert (fired.call_uuid, fired.message) == ("u1", "call fired")
    assert json.loads(seen[0].content)["answer_method"] == "POST"
    async with mocked(
        reply(201, {"api_id": "a", "request_uuid": ["u1", "u2"], "message": "Call fired"})
    ) as c:
        assert (await c.make_call("+1", "+2<+3", "https://a.example/")).call_uuids == ("u1", "u2")
    async with mocked(reply(200, {"stream_id": "str_XXXXXXXXXX", "message": "Stream started"})) as c:
        assert (await c.start_stream(CALL, WS)).stream_id == "str_XXXXXXXXXX"


async def test_path_segments_are_quoted() -> None:
    seen: list[httpx.Request] = []
    async with mocked(reply(204, None, seen)) as c:
        await c.stop_stream("a/b c", "s?1")
    assert seen[0].url.raw_path == f"{ACCOUNT}/Call/a%2Fb%20c/Stream/s%3F1/".encode()


def test_extra_headers_rendering() -> None:
    assert render_extra_headers({"X-A": "1", "b": "x=y:z"}) == "X-A:1,b:x=y:z"
    assert render_extra_headers("X-Raw:as,given:1") == "X-Raw:as,given:1"
    with pytest.raises(ValueError, match="cannot hold ','"):
        render_extra_headers({"a": "1,2"})
    with pytest.raises(ValueError, match="is not header:value"):
        render_extra_headers("a=1,b=2")  # the <Stream extraHeaders> form
    with pytest.raises(ValueError, match="not an HTTP header name"):
        render_extra_headers({"X Session": "1"})
    with pytest.raises(ValueError, match="control characters"):
        render_extra_headers({"X-A": "1\r\nX-Injected: 1"})


@pytest.mark.parametrize("value", ["a=1", "X-A:1,b=2", "X A:1", "X-A:1,", ":1", "X-A:a\tb"])
async def test_the_fake_refuses_extra_headers_not_in_header_value_form(
    api: str, state: FakeVobizState, value: str
) -> None:
    """A strict fake: the ``k=v`` form of ``<Stream extraHeaders>`` is not the REST form."""
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            f"{api.removesuffix('/api/v1')}{ACCOUNT}/Call/{CALL}/Stream/",
            json={"service_url": WS, "extra_headers": value},
            headers={"X-Auth-ID": AUTH_ID, "X-Auth-Token": TOKEN},
        )
    assert resp.status_code == 400
    assert resp.json()["error"]["details"] == {"field": "extra_headers"}
    assert state.active_streams(CALL) == []


def test_stream_objects_parse_either_pair_form() -> None:
    parsed = Stream.from_api({"stream_id": "s", "extra_headers": "X-A:1,b=2,X-C:http://x"})
    assert parsed.extra_headers == {"X-A": "1", "b": "2", "X-C": "http://x"}


# ── lifecycle, settings, logging ──


async def test_shared_http_client_is_not_closed(api: str, state: FakeVobizState) -> None:
    async with httpx.AsyncClient() as http:
        async with VobizClient(AUTH_ID, TOKEN, api, http=http) as c:
            await c.stop_all_streams(CALL)
        assert not http.is_closed
    owned = VobizClient(AUTH_ID, TOKEN, api)
    await owned.aclose()
    with pytest.raises(ValueError, match="required"):
        VobizClient(AUTH_ID, "", api)


async def test_from_settings(api: str, state: FakeVobizState) -> None:
    settings = Settings(
        _env_file=None,
        vobiz_auth_id=AUTH_ID,
        vobiz_auth_token=SecretStr(TOKEN),
        vobiz_api_base_url=api + "/",
        vobiz_max_retries=1,
    )
    state.fail_next(1, 503)
    async with VobizClient.from_settings(settings, retry_backoff=0) as c:
        assert c.base_url == api
        assert await c.stop_all_streams(CALL) is None
    assert len(state.requests) == 2


async def test_debug_log_has_method_path_status_only(
    client: VobizClient, state: FakeVobizState, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="app.vobiz.rest"):
        await client.list_streams(CALL)
    assert f"GET {ACCOUNT.removeprefix('/api/v1')}/Call/{CALL}/Stream/ -> 200" in caplog.text
    assert TOKEN not in caplog.text


# ── independent cross-check: the official sync SDK against the same fake ──


def test_vobiz_sdk_sees_the_same_results(server: tuple[str, FakeVobizState], state: FakeVobizState) -> None:
    import vobiz
    from vobiz.exceptions import ResourceNotFoundError

    answer, target = "https://a.example/answer", "https://a.example/t"
    sdk = vobiz.RestClient(AUTH_ID, TOKEN)
    sdk.base_uri = server[0] + "/api/v1/Account"  # the SDK's base is a plain attribute
    with sdk:
        fired = sdk.calls.create("+918071387423", "+14155551234", answer, answer_method="POST")
        assert fired.message == "Call fired"
        assert state.calls[fired.request_uuid].direction == "outbound"
        moved = sdk.calls.transfer(CALL, legs="aleg", aleg_url=target, aleg_method="POST")
        assert (moved.message, moved.call_uuid) == ("call transferred", CALL)
        assert sdk.calls.hangup(CALL) is None
        with pytest.raises(ResourceNotFoundError, match="Call not found"):
            sdk.calls.hangup(CALL)
    sdk_requests = [(r.method, r.raw_path, r.json()) for r in state.requests]

    state.reset()
    state.add_live_call(CALL)

    async def ours() -> tuple[Any, ...]:
        async with VobizClient(AUTH_ID, TOKEN, server[0] + "/api/v1") as c:
            ours_fired = await c.make_call("+918071387423", "+14155551234", answer)
            ours_moved = await c.transfer_call(CALL, target)
            return ours_fired, ours_moved, await c.hangup_call(CALL), await c.hangup_call(CALL)

    ours_fired, ours_moved, first, second = asyncio.run(ours())
    assert (ours_fired.message, ours_moved.message, ours_moved.call_uuid) == (
        fired.message,
        moved.message,
        CALL,
    )
    assert (first, second) == (True, False)
    assert [(r.method, r.raw_path, r.json()) for r in state.requests] == sdk_requests
