"""OpenAILLM through the real ``openai`` SDK against the fake OpenAI server (127.0.0.1 only)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import aclosing

import httpx
import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from app.providers.base import (
    Finished,
    LanguageModel,
    LLMEvent,
    LLMOptions,
    LLMUsage,
    Message,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
)
from app.providers.errors import ProviderError
from app.providers.openai_llm import OpenAILLM
from tests.contract.fake_openai import (
    API_KEY,
    BrokenReply,
    ErrorReply,
    FakeOpenAI,
    FakeToolCall,
    InStreamError,
    TextReply,
    ToolCallsReply,
)
from tests.servers import serve_in_thread

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
NO_PARAMETERS = {"type": "object", "properties": {}}  # ToolSpec's default schema
WEATHER = ToolSpec("get_weather", "Current weather for a city.", CITY)
HANG_UP = ToolSpec("hang_up", "End the call.")
LOOKUP = FakeToolCall("call_1", "get_weather", ('{"ci', 'ty": "Pa', 'ris"}'))
HANGUP_CALL = FakeToolCall("call_2", "hang_up", ("{", "}"))
HELLO = [Message("user", "Hello?")]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve_in_thread(fake.app) as url:
        yield fake, url


@pytest.fixture
def fake(served: tuple[FakeOpenAI, str]) -> FakeOpenAI:
    served[0].reset()
    return served[0]


@pytest.fixture
def server(served: tuple[FakeOpenAI, str], fake: FakeOpenAI) -> str:
    return served[1]


@pytest.fixture
async def llm(server: str) -> AsyncIterator[OpenAILLM]:
    model = OpenAILLM(API_KEY, base_url=f"{server}/v1")
    yield model
    await model.aclose()


async def collect(
    llm: OpenAILLM, messages: Sequence[Message] = HELLO, tools: Sequence[ToolSpec] = (), **options: object
) -> list[LLMEvent]:
    """The stream's events but its ``LLMUsage`` (tested on its own)."""
    return [e for e in await collect_all(llm, messages, tools, **options) if not isinstance(e, LLMUsage)]


async def collect_all(
    llm: OpenAILLM, messages: Sequence[Message] = HELLO, tools: Sequence[ToolSpec] = (), **options: object
) -> list[LLMEvent]:
    return [event async for event in llm.stream(messages, tools, LLMOptions(**options))]  # type: ignore[arg-type]


async def drain(llm: OpenAILLM, seen: list[LLMEvent]) -> None:
    async for event in llm.stream(HELLO, (), LLMOptions()):
        seen.append(event)


async def failure(llm: OpenAILLM, seen: list[LLMEvent] | None = None) -> ProviderError:
    """The ``ProviderError`` a one-message request ends with; events before it go to ``seen``."""
    with pytest.raises(ProviderError) as caught:
        await drain(llm, seen if seen is not None else [])
    return caught.value


def wire(call_id: str, name: str, arguments: str) -> dict[str, object]:
    """A tool call as the chat-completions API spells it."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_satisfies_the_language_model_protocol(llm: OpenAILLM) -> None:
    model: LanguageModel = llm
    assert model.name == "openai"


async def test_text_deltas_arrive_in_order_then_finished(llm: OpenAILLM, fake: FakeOpenAI) -> None:
    fake.script_chat(TextReply(["Hel", "lo, ", "how can I ", "help?"]))
    events = await collect(llm)
    assert events == [
        TextDelta("Hel"),
        TextDelta("lo, "),
        TextDelta("how can I "),
        TextDelta("help?"),
        Finished("stop"),
    ]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello, how can I help?"


async def test_the_usage_chunk_becomes_one_usage_event_before_finished(
    llm: OpenAILLM, fake: FakeOpenAI
) -> None:
    fake.script_chat(TextReply(["Hello there, ", "how can I help?"]), ToolCallsReply([LOOKUP]))
    text = await collect_all(llm)
    asked = [Message("user", "What is the weather in Paris today?")]
    tools = await collect_all(llm, asked, [WEATHER], model="gpt-4.1")
    sent = fake.usage_sent
    assert [s["model"] for s in sent] == ["gpt-6-luna", "gpt-4.1"]
    assert sent[0]["prompt_tokens"] < sent[1]["prompt_tokens"]  # the fake counts the messages
    assert text[-2:] == [
        LLMUsage("gpt-6-luna", sent[0]["prompt_tokens"], sent[0]["completion_tokens"]),
        Finished("stop"),
    ]
    assert tools[-2] == LLMUsage("gpt-4.1", sent[1]["prompt_tokens"], sent[1]["completion_tokens"])
    assert isinstance(tools[-3], ToolCallRequest)


async def test_messages_tools_and_options_are_serialised_exactly(llm: OpenAILLM, fake: FakeOpenAI) -> None:
    fake.script_chat(TextReply(["Sunny."]))
    history = [
        Message("system", "You are a receptionist."),
        Message("user", "Weather in Paris?"),
        Message("assistant", "", tool_calls=(ToolCall("call_9", "get_weather", '{"city":"Paris"}'),)),
        Message("tool", '{"sky":"clear"}', tool_call_id="call_9"),
        Message("assistant", "Checking.", tool_calls=(ToolCall("call_10", "hang_up", "{}"),)),
        Message("tool", "ok", tool_call_id="call_10"),
        Message("assistant", "It is clear."),
    ]
    await collect(llm, history, [WEATHER, HANG_UP], model="gpt-4.1", temperature=0.2, max_tokens=50)

    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body == {
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "You are a receptionist."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [wire("call_9", "get_weather", '{"city":"Paris"}')],
            },
            {"role": "tool", "tool_call_id": "call_9", "content": '{"sky":"clear"}'},
            {"role": "assistant", "content": "Checking.", "tool_calls": [wire("call_10", "hang_up", "{}")]},
            {"role": "tool", "tool_call_id": "call_10", "content": "ok"},
            {"role": "assistant", "content": "It is clear."},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city.",
                    "parameters": CITY,
                },
            },
            {
                "type": "function",
                "function": {"name": "hang_up", "description": "End the call.", "parameters": NO_PARAMETERS},
            },
        ],
        "temperature": 0.2,
        "max_completion_tokens": 50,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_defaults_apply_and_empty_tools_are_omitted(llm: OpenAILLM, fake: FakeOpenAI) -> None:
    fake.script_chat(TextReply(["Hi"]))
    await collect(llm)
    body = fake.last_body
    # the default is a reasoning model: no temperature, its own effort, the new length field
    assert (body["model"], body["reasoning_effort"], body["max_completion_tokens"]) == (
        "gpt-6-luna",
        "none",
        300,
    )
    assert "temperature" not in body
    assert "max_tokens" not in body
    assert "tools" not in body
    # the final usage chunk is asked for (its tokens become an LLMUsage event)
    assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("with_index", [True, False], ids=["indexed", "no-index"])
async def test_parallel_tool_call_fragments_are_reassembled(
    llm: OpenAILLM, fake: FakeOpenAI, with_index: bool
) -> None:
    fake.script_chat(ToolCallsReply([LOOKUP, HANGUP_CALL], with_index=with_index))
    events = await collect(llm, tools=[WEATHER, HANG_UP])
    assert events == [
        ToolCallRequest(ToolCall("call_1", "get_weather", '{"city": "Paris"}')),
        ToolCallRequest(ToolCall("call_2", "hang_up", "{}")),
        Finished("tool_calls"),
    ]
    assert json.loads(events[0].call.arguments) == {"city": "Paris"}  # type: ignore[union-attr]


async def test_a_tool_call_is_released_when_the_next_index_starts(llm: OpenAILLM, fake: FakeOpenAI) -> None:
    # events: role chunk, call 1 head + 3 fragments, call 2 head | pause | its fragments, finish
    fake.script_chat(ToolCallsReply([LOOKUP, HANGUP_CALL], pause_after=6))
    seen: list[LLMEvent] = []
    async for event in llm.stream(HELLO, [WEATHER, HANG_UP], LLMOptions()):
        seen.append(event)
        if len(seen) == 1:
            assert event == ToolCallRequest(ToolCall("call_1", "get_weather", '{"city": "Paris"}'))
            assert fake.completed_streams == 0  # the server is still holding the rest back
            fake.release()
    rest = [e for e in seen[1:] if not isinstance(e, LLMUsage)]
    assert rest == [ToolCallRequest(ToolCall("call_2", "hang_up", "{}")), Finished("tool_calls")]
    assert fake.gate_timeouts == 0


@pytest.mark.parametrize("reason", ["length", "content_filter"])
async def test_finish_reason_is_passed_through(llm: OpenAILLM, fake: FakeOpenAI, reason: str) -> None:
    fake.script_chat(TextReply(["Once upon"], finish_reason=reason))
    assert (await collect(llm))[-1] == Finished(reason)


async def test_first_delta_is_yielded_before_the_server_sends_the_rest(
    llm: OpenAILLM, fake: FakeOpenAI
) -> None:
    fake.script_chat(TextReply(["Sure", ", one", " moment."], pause_after=2))  # role chunk + "Sure"
    seen: list[LLMEvent] = []
    async for event in llm.stream(HELLO, (), LLMOptions()):
        if not seen:
            assert event == TextDelta("Sure")
            assert fake.completed_streams == 0
            fake.release()
        seen.append(event)
    rest = [e for e in seen[1:] if not isinstance(e, LLMUsage)]
    assert rest == [TextDelta(", one"), TextDelta(" moment."), Finished("stop")]
    assert fake.gate_timeouts == 0


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [
        (ErrorReply(400, "invalid_request_error", "context_length_exceeded", "messages"), False),
        (ErrorReply(401, "invalid_request_error", "invalid_api_key"), False),
        (ErrorReply(403, "invalid_request_error", "unsupported_country_region_territory"), False),
        (ErrorReply(404, "invalid_request_error", "model_not_found", "model"), False),
        (ErrorReply(422, "invalid_request_error"), False),
        (ErrorReply(429, "requests", "rate_limit_exceeded"), True),
        (ErrorReply(429, "insufficient_quota", "insufficient_quota"), False),
        (ErrorReply(500, "server_error"), True),
        (ErrorReply(503, "server_error"), True),
    ],
)
async def test_http_errors_map_to_provider_error(
    llm: OpenAILLM, fake: FakeOpenAI, reply: ErrorReply, retryable: bool
) -> None:
    fake.script_chat(reply)
    error = await failure(llm)
    assert (error.provider, error.retryable) == ("openai", retryable)
    assert f"HTTP {reply.status}" in str(error)
    assert len(fake.requests) == 1  # the SDK itself never retried


async def test_wrong_key_is_not_retryable_and_the_key_is_not_echoed(server: str, fake: FakeOpenAI) -> None:
    wrong = "sk-wrong-secret-value-42"
    llm = OpenAILLM(wrong, base_url=f"{server}/v1")
    try:
        error = await failure(llm)
    finally:
        await llm.aclose()
    assert not error.retryable
    assert "AuthenticationError" in str(error)
    assert "invalid_api_key" in str(error)
    assert "secret" not in str(error)
    assert fake.requests[0].headers["authorization"] == f"Bearer {wrong}"


async def test_stream_broken_midway_is_retryable(llm: OpenAILLM, fake: FakeOpenAI) -> None:
    fake.script_chat(BrokenReply(("Let me ", "check")))
    seen: list[LLMEvent] = []
    error = await failure(llm, seen)
    assert error.retryable
    assert seen == [TextDelta("Let me "), TextDelta("check")]


async def test_error_event_inside_the_stream_is_retryable(llm: OpenAILLM, fake: FakeOpenAI) -> None:
    fake.script_chat(InStreamError(("One",)))
    seen: list[LLMEvent] = []
    error = await failure(llm, seen)
    assert error.retryable
    assert "server_error" in str(error)
    assert seen == [TextDelta("One")]


async def test_connection_refused_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free again once closed: nothing listens there
    llm = OpenAILLM(API_KEY, base_url=f"http://127.0.0.1:{port}/v1")
    try:
        error = await failure(llm)
    finally:
        await llm.aclose()
    assert error.retryable
    assert "connection failed" in str(error)


async def test_read_timeout_midstream_is_retryable(server: str, fake: FakeOpenAI) -> None:
    fake.script_chat(TextReply(["Hmm", "..."], pause_after=2))  # then never released in time
    llm = OpenAILLM(API_KEY, base_url=f"{server}/v1", read_timeout=0.3)
    seen: list[LLMEvent] = []
    try:
        error = await failure(llm, seen)
    finally:
        fake.release()
        await llm.aclose()
    assert error.retryable
    assert "timed out" in str(error)
    assert seen in ([TextDelta("Hmm")], [])  # [] only if a loaded machine stalled the first chunk


async def test_tool_message_without_call_id_is_rejected_before_any_request(
    llm: OpenAILLM, fake: FakeOpenAI
) -> None:
    with pytest.raises(ProviderError) as caught:
        await collect(llm, [Message("tool", "42")])
    assert not caught.value.retryable
    assert fake.requests == []


async def test_base_url_reaches_an_openai_compatible_path(server: str, fake: FakeOpenAI) -> None:
    fake.script_chat(TextReply(["Ok"]))
    llm = OpenAILLM("local-key", base_url=f"{server}/llama/v1", default_model="qwen2.5:7b")
    fake.api_key = "local-key"
    try:
        assert llm.base_url == f"{server}/llama/v1/"
        assert await collect(llm) == [TextDelta("Ok"), Finished("stop")]
    finally:
        await llm.aclose()
    assert fake.requests[0].path == "/llama/v1/chat/completions"
    assert fake.last_body["model"] == "qwen2.5:7b"


async def test_closing_early_closes_the_response_and_spares_a_supplied_client(
    server: str, fake: FakeOpenAI
) -> None:
    responses: list[httpx2.Response] = []

    async def remember(response: httpx2.Response) -> None:
        responses.append(response)

    client = httpx2.AsyncClient(event_hooks={"response": [remember]})
    llm = OpenAILLM(API_KEY, base_url=f"{server}/v1", http_client=client)
    fake.script_chat(TextReply(["I can", " book that", " for you."], pause_after=2))
    try:
        async with aclosing(llm.stream(HELLO, (), LLMOptions())) as events:
            async for event in events:
                assert event == TextDelta("I can")
                break  # the caller barged in
        assert responses[0].is_closed
        await llm.aclose()
        assert not client.is_closed  # the caller's client stays open
    finally:
        fake.release()
        await client.aclose()


async def test_a_legacy_httpx_client_is_accepted(server: str, fake: FakeOpenAI) -> None:
    fake.script_chat(TextReply(["Yes"]))
    async with httpx.AsyncClient() as client:
        llm = OpenAILLM(API_KEY, base_url=f"{server}/v1", http_client=client)
        assert await collect(llm) == [TextDelta("Yes"), Finished("stop")]
        await llm.aclose()
        assert not client.is_closed


USER_X: list[ChatCompletionMessageParam] = [{"role": "user", "content": "x"}]


async def test_fake_also_answers_non_streamed_and_usage_requests(server: str, fake: FakeOpenAI) -> None:
    fake.script_chat(TextReply(["Plain ", "reply"]), ToolCallsReply([LOOKUP]), TextReply(["Counted"]))
    async with openai.AsyncOpenAI(api_key=API_KEY, base_url=f"{server}/v1", max_retries=0) as client:
        text = await client.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "x"}]
        )
        assert text.choices[0].message.content == "Plain reply"
        tool = await client.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "x"}]
        )
        assert tool.choices[0].message.tool_calls is not None
        assert tool.choices[0].finish_reason == "tool_calls"
        stream = await client.chat.completions.create(
            model="gpt-4.1",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Counted"


async def test_a_429_carries_its_retry_after(llm: OpenAILLM, fake: FakeOpenAI) -> None:
    fake.script_chat(ErrorReply(429, type="requests", code="rate_limit_exceeded", retry_after="0.5"))
    error = await failure(llm)
    assert error.retryable
    assert error.retry_after == 0.5


@pytest.mark.parametrize(
    ("options", "param"),
    [({"model": "gpt-6-luna", "temperature": 0.6}, "temperature"), ({"model": "no-such-model"}, "model")],
)
async def test_the_fake_refuses_what_openai_refuses(
    server: str, fake: FakeOpenAI, options: dict[str, object], param: str
) -> None:
    """The stricter fake: a reasoning model with a temperature, an unknown model."""
    async with openai.AsyncOpenAI(api_key=API_KEY, base_url=f"{server}/v1", max_retries=0) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(messages=USER_X, **options)  # type: ignore[call-overload]
    assert caught.value.status_code in (400, 404)
    assert caught.value.param == param


async def test_tools_with_the_default_reasoning_model_are_accepted(llm: OpenAILLM, fake: FakeOpenAI) -> None:
    """Chat Completions takes function tools with a reasoning model only at effort "none"."""
    fake.script_chat(TextReply(["Ok"]))
    assert await collect(llm, HELLO, [WEATHER]) == [TextDelta("Ok"), Finished("stop")]
    assert fake.last_body["reasoning_effort"] == "none"
