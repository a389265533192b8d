"""`voice-agent streams …` / `voice-agent call …` against the fake Vobiz REST API on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from app.cli import cli
from app.simulator.vobiz_rest import FakeVobizState, create_fake_rest_app
from tests.servers import serve_in_thread

AUTH_ID = "MACLITEST01"
TOKEN = "cli-token-do-not-print"
CALL = "3f1c2a7e-0000-4000-8000-000000000001"
WS = "wss://agent.example.com/ws"

runner = CliRunner()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, FakeVobizState]]:
    state = FakeVobizState()
    with serve_in_thread(create_fake_rest_app(AUTH_ID, TOKEN, state)) as base:
        yield base, state


@pytest.fixture
def state(server: tuple[str, FakeVobizState]) -> FakeVobizState:
    server[1].reset()
    server[1].add_live_call(CALL)
    return server[1]


@pytest.fixture
def env(
    server: tuple[str, FakeVobizState],
    state: FakeVobizState,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # Settings() also reads ./.env: keep a developer's out
    return {
        "VOBIZ_AUTH_ID": AUTH_ID,
        "VOBIZ_AUTH_TOKEN": TOKEN,
        "VOBIZ_API_BASE_URL": server[0] + "/api/v1",
        "VOBIZ_MAX_RETRIES": "0",
        "COLUMNS": "200",
    }


def run(env: dict[str, str], *args: str) -> Result:
    return runner.invoke(cli, list(args), env=env)


def ok(env: dict[str, str], *args: str) -> str:
    result = run(env, *args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result.stdout


def ok_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(ok(env, *args, "--json"))


def start(state: FakeVobizState, url: str = WS) -> str:
    stream = state.new_stream(
        call_uuid=CALL,
        service_url=url,
        audio_track="inbound",
        bidirectional=False,
        content_type="audio/x-mulaw;rate=8000",
        stream_timeout=86400,
        status_callback_url=None,
        status_callback_method="POST",
        extra_headers=None,
    )
    return stream.stream_id


def test_streams_start(env: dict[str, str], state: FakeVobizState) -> None:
    out = ok(
        env,
        "streams",
        "start",
        CALL,
        WS,
        "--extra-header",
        "X-A:1",
        "--extra-header",
        "X-B: 2",
        "--timeout",
        "60",
    )
    [stream] = state.active_streams(CALL)
    assert out.strip() == f"Stream started: {stream.stream_id}"
    assert state.requests[-1].json() == {
        "service_url": WS,
        "bidirectional": False,
        "audio_track": "inbound",
        "content_type": "audio/x-l16;rate=8000",
        "stream_timeout": 60,
        "extra_headers": "X-A:1,X-B:2",
    }
    data = ok_json(env, "streams", "start", CALL, WS + "/2", "--content-type", "audio/x-mulaw;rate=8000")
    assert data["message"] == "Stream started"
    assert data["stream_id"] in state.streams
    assert set(data) == {"stream_id", "message", "api_id"}


def test_streams_start_bidirectional_and_callback(env: dict[str, str], state: FakeVobizState) -> None:
    cb = "https://agent.example.com/status"
    ok(
        env,
        "streams",
        "start",
        CALL,
        WS,
        "--bidirectional",
        "--status-callback-url",
        cb,
        "--audio-track",
        "inbound",
    )
    body = state.requests[-1].json()
    assert (body["bidirectional"], body["status_callback_url"], body["status_callback_method"]) == (
        True,
        cb,
        "POST",
    )


def test_streams_get(env: dict[str, str], state: FakeVobizState) -> None:
    stream_id = start(state)
    out = ok(env, "streams", "get", CALL, stream_id)
    for text in (stream_id, "service_url", WS, "sampling_rate", "8000", "in-progress"):
        assert text in out
    data = ok_json(env, "streams", "get", CALL, stream_id)
    assert (data["stream_id"], data["call_uuid"], data["content_type"]) == (
        stream_id,
        CALL,
        "audio/x-mulaw;rate=8000",
    )
    assert data["end_time"] is None
    assert "raw" not in data


def test_streams_list(env: dict[str, str], state: FakeVobizState) -> None:
    ids = [start(state, f"{WS}/{n}") for n in range(3)]
    out = ok(env, "streams", "list", CALL)
    assert all(stream_id in out for stream_id in ids)
    assert "total 3" in out
    data = ok_json(env, "streams", "list", CALL, "--limit", "2", "--offset", "2")
    assert (data["page"], data["per_page"], data["total"]) == (2, 2, 3)
    assert [s["stream_id"] for s in data["streams"]] == ids[2:]
    assert state.requests[-1].query == "limit=2&offset=2"


def test_streams_stop(env: dict[str, str], state: FakeVobizState) -> None:
    stream_id = start(state)
    assert ok(env, "streams", "stop", CALL, stream_id).strip() == f"Stream stopped: {stream_id}"
    assert "not active" in ok(env, "streams", "stop", CALL, stream_id)
    assert ok_json(env, "streams", "stop", CALL, stream_id) == {
        "call_uuid": CALL,
        "stream_id": stream_id,
        "stopped": False,
    }
    other = start(state, WS + "/other")
    assert ok_json(env, "streams", "stop", CALL, other)["stopped"] is True


def test_streams_stop_all(env: dict[str, str], state: FakeVobizState) -> None:
    start(state)
    assert ok(env, "streams", "stop-all", CALL).strip() == "All streams stopped"
    assert state.active_streams(CALL) == []
    assert ok_json(env, "streams", "stop-all", CALL) == {"call_uuid": CALL, "streams_stopped": None}


def test_call_dial(env: dict[str, str], state: FakeVobizState) -> None:
    answer, hangup = "https://agent.example.com/answer", "https://agent.example.com/hangup"
    out = ok(env, "call", "dial", "+918071387423", "+14155551234", answer, "--hangup-url", hangup)
    [outbound] = [c for c in state.calls.values() if c.direction == "outbound"]
    assert out.strip() == f"Call fired: {outbound.call_uuid}"
    assert outbound.request == {
        "from": "+918071387423",
        "to": "+14155551234",
        "answer_url": answer,
        "answer_method": "POST",
        "hangup_url": hangup,
        "hangup_method": "POST",
    }
    data = ok_json(env, "call", "dial", "+918071387423", "+14155551234", answer, "--time-limit", "30")
    assert data["message"] == "Call fired"
    assert state.calls[data["call_uuid"]].request["time_limit"] == 30


def test_call_hangup(env: dict[str, str], state: FakeVobizState) -> None:
    assert ok(env, "call", "hangup", CALL).strip() == f"Call hung up: {CALL}"
    assert state.calls[CALL].hangup_source == "API"
    assert "already ended" in ok(env, "call", "hangup", CALL)
    assert ok_json(env, "call", "hangup", CALL) == {"call_uuid": CALL, "hung_up": False}
    state.add_live_call(CALL)
    assert ok_json(env, "call", "hangup", CALL) == {"call_uuid": CALL, "hung_up": True}


def test_call_transfer(env: dict[str, str], state: FakeVobizState) -> None:
    url = "https://agent.example.com/transfer"
    assert ok(env, "call", "transfer", CALL, url).strip() == f"call transferred: {CALL}"
    data = ok_json(env, "call", "transfer", CALL, url, "--legs", "both", "--method", "GET")
    assert (data["call_uuid"], data["message"]) == (CALL, "call transferred")
    ok(env, "call", "transfer", CALL, url, "--legs", "bleg")
    assert state.calls[CALL].transfers == [
        {"legs": "aleg", "aleg_url": url, "aleg_method": "POST"},
        {"legs": "both", "aleg_url": url, "aleg_method": "GET", "bleg_url": url, "bleg_method": "GET"},
        {"legs": "bleg", "bleg_url": url, "bleg_method": "POST"},
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("streams", "get", CALL, "nope"), "error: 404 Stream not found"),
        (
            ("streams", "start", CALL, "https://not-ws.example"),
            "error: 400 service_url must be a valid ws/wss URL",
        ),
        (("call", "transfer", "no-such-call", "https://a.example/"), "error: 404 Call not found"),
    ],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_api_errors_exit_1(env: dict[str, str], args: tuple[str, ...], message: str, as_json: bool) -> None:
    result = run(env, *args, *(["--json"] if as_json else []))
    assert result.exit_code == 1
    assert result.stderr == message + "\n"
    assert result.stdout == ""


def test_bad_token_exit_1_without_leaking(env: dict[str, str]) -> None:
    result = run({**env, "VOBIZ_AUTH_TOKEN": "wrong-" + TOKEN}, "streams", "list", CALL)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 401 ")
    assert TOKEN not in result.output


def test_unreachable_api_exit_1(env: dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run({**env, "VOBIZ_API_BASE_URL": f"http://127.0.0.1:{port}/api/v1"}, "call", "hangup", CALL)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach http://127.0.0.1:")


@pytest.mark.parametrize("missing", ["VOBIZ_AUTH_ID", "VOBIZ_AUTH_TOKEN"])
def test_missing_credentials_exit_2(env: dict[str, str], state: FakeVobizState, missing: str) -> None:
    result = run({**env, missing: ""}, "streams", "list", CALL, "--json")
    assert result.exit_code == 2
    assert "VOBIZ_AUTH_ID" in result.stderr
    assert "VOBIZ_AUTH_TOKEN" in result.stderr
    assert result.stdout == ""
    assert state.requests == []


def test_bad_extra_header_is_a_usage_error(env: dict[str, str], state: FakeVobizState) -> None:
    result = run(env, "streams", "start", CALL, WS, "--extra-header", "novalue")
    assert result.exit_code == 2
    assert "header:value" in result.stderr
    assert state.requests == []


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("a=1", "'a=1' is not header:value"),  # the <Stream extraHeaders> form, not the REST one
        ("X Bad:1", "is not an HTTP header name"),
        ("X-Ok:a,b", "cannot hold ','"),
    ],
)
def test_extra_headers_must_be_header_value(
    env: dict[str, str], state: FakeVobizState, option: str, message: str
) -> None:
    result = run(env, "streams", "start", CALL, WS, "--extra-header", option)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert state.requests == []
