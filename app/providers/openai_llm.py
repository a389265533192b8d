"""Streaming chat completions through the official ``openai`` SDK (``AsyncOpenAI``).

Works with OpenAI itself and with OpenAI-compatible servers (vLLM, Ollama, llama.cpp,
...) through ``base_url``. Fields sent: ``model``, ``messages``, ``stream``, ``tools`` (omitted
when empty) and, per model (:func:`model_rules`): a reasoning model (``gpt-5*``, ``gpt-6*``,
``o*``) gets ``reasoning_effort`` and no ``temperature`` (OpenAI refuses one); Chat Completions
takes function tools with a reasoning model only at ``reasoning_effort="none"``, so that is
sent whenever tools are. The length cap goes as ``max_completion_tokens`` (``max_tokens`` is
deprecated, and refused by reasoning models); a compatible server that does not know it just
ignores the cap. ``stream_options={"include_usage": true}`` asks for the final usage chunk
(empty ``choices``), whose token counts become one ``LLMUsage`` event before ``Finished``.

Timeouts are sized for a phone call (``connect_timeout`` 3 s, ``read_timeout`` 8 s between
chunks); the first token of a reply is bounded by the responder.

The SDK's own retries are off (``max_retries=0``): a caller on the phone cannot wait for
its back-off, so the pipeline decides, using ``ProviderError.retryable``. Neither the key
nor message contents are logged or put into error messages.

``map_openai_error`` and ``make_client`` are shared with :mod:`app.providers.openai_tts`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import cast

import httpx
import httpx2
import openai
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
)
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from app.providers.base import (
    Finished,
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

__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEFAULT_LLM_MODEL",
    "PROVIDER",
    "READ_TIMEOUT_S",
    "ModelRules",
    "OpenAILLM",
    "make_client",
    "map_openai_error",
    "model_rules",
    "to_chat_messages",
    "to_chat_tools",
]

PROVIDER = "openai"
#: OpenAI's named replacement for gpt-4o-mini (which shuts down on 2027-01-14); no shutdown announced.
DEFAULT_LLM_MODEL = "gpt-6-luna"
CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 8.0
_REASONING_PREFIXES = ("gpt-5", "gpt-6", "o1", "o3", "o4")
_RETRYABLE_STATUS = frozenset({408, 409, 429})  # plus every 5xx
_TRANSPORT_ERRORS = (httpx.TransportError, httpx2.TransportError)


@dataclass(frozen=True, slots=True)
class ModelRules:
    """What a model accepts on Chat Completions."""

    reasoning: bool  # takes reasoning_effort; refuses temperature other than the default


def model_rules(model: str) -> ModelRules:
    """The request rules for ``model`` (by its name; other servers' models are plain chat models)."""
    return ModelRules(reasoning=model.strip().lower().startswith(_REASONING_PREFIXES))


def make_client(
    api_key: str,
    base_url: str | None,
    http_client: httpx.AsyncClient | httpx2.AsyncClient | None,
    *,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    read_timeout: float = READ_TIMEOUT_S,
) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` with SDK retries off (the responder retries, once, when it can).

    ``connect_timeout`` bounds the TCP+TLS connect (and waiting for a pooled connection);
    ``read_timeout`` each read (the gap between streamed chunks) and each write. openai>=3 is
    built on ``httpx2`` but still accepts an ``httpx.AsyncClient`` at run time (it checks for
    either); its annotation names only ``httpx2``, hence the cast.
    """
    timeout = httpx2.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout)
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        max_retries=0,
        http_client=cast("httpx2.AsyncClient | None", http_client),
    )


def map_openai_error(exc: Exception) -> ProviderError:
    """Translate an SDK / transport failure into ``ProviderError`` (no key, no user text).

    Not retryable: 400, 401, 403, 404, 422 and the other 4xx, 429 ``insufficient_quota``, a
    malformed stream. Retryable: 408, 409, 429, 5xx, connection failures and timeouts
    (also in the middle of a stream), and error events sent inside a stream.
    """
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = (status in _RETRYABLE_STATUS or status >= 500) and exc.code != "insufficient_quota"
        return ProviderError(
            PROVIDER,
            f"HTTP {status} {type(exc).__name__}{_details(exc)}",
            retryable=retryable,
            retry_after=_retry_after(exc.response.headers) if retryable else None,
        )
    if isinstance(exc, openai.APITimeoutError):  # before APIConnectionError: it is a subclass
        return ProviderError(PROVIDER, "request timed out", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        cause = type(exc.__cause__).__name__ if exc.__cause__ else "unknown"
        return ProviderError(PROVIDER, f"connection failed ({cause})", retryable=True)
    if isinstance(exc, openai.APIResponseValidationError):
        return ProviderError(PROVIDER, "response did not match the API schema", retryable=False)
    if isinstance(exc, openai.APIError):  # an error event inside an otherwise 200 stream
        return ProviderError(PROVIDER, f"error in stream{_details(exc)}", retryable=True)
    if isinstance(exc, httpx.TimeoutException | httpx2.TimeoutException):
        return ProviderError(PROVIDER, "stream timed out", retryable=True)
    if isinstance(exc, _TRANSPORT_ERRORS):
        return ProviderError(PROVIDER, f"stream broken ({type(exc).__name__})", retryable=True)
    if isinstance(exc, ValueError):  # json.JSONDecodeError from a garbled SSE event
        return ProviderError(PROVIDER, f"malformed stream ({type(exc).__name__})", retryable=False)
    return ProviderError(PROVIDER, f"unexpected {type(exc).__name__}", retryable=False)


def _retry_after(headers: httpx2.Headers | httpx.Headers) -> float | None:
    """Seconds the server asks to wait (``retry-after-ms``, or ``retry-after`` in seconds)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue  # an HTTP date: far enough off not to wait for on a call
        if seconds >= 0:
            return seconds
    return None


def _details(exc: openai.APIError) -> str:
    """`` (type=..., code=..., param=..., request_id=...)``: the machine-readable error fields.
    The free-text message is left out: OpenAI's 401 text quotes part of the key."""
    fields = {"type": exc.type, "code": exc.code, "param": exc.param}
    if isinstance(exc, openai.APIStatusError):
        fields["request_id"] = exc.request_id
    shown = ", ".join(f"{name}={value}" for name, value in fields.items() if value)
    return f" ({shown})" if shown else ""


def to_chat_messages(messages: Sequence[Message]) -> list[ChatCompletionMessageParam]:
    """Our ``Message``s as chat-completions messages, same order.

    An assistant turn that only calls tools gets ``content: null`` (as OpenAI returns it);
    a ``tool`` message must carry ``tool_call_id`` (``ProviderError``, not retryable, if not).
    """
    out: list[ChatCompletionMessageParam] = []
    for message in messages:
        if message.role == "system":
            out.append({"role": "system", "content": message.content})
        elif message.role == "user":
            out.append({"role": "user", "content": message.content})
        elif message.role == "assistant":
            if not message.tool_calls:
                out.append({"role": "assistant", "content": message.content})
                continue
            calls: list[ChatCompletionMessageFunctionToolCallParam] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in message.tool_calls
            ]
            out.append({"role": "assistant", "content": message.content or None, "tool_calls": calls})
        else:
            if message.tool_call_id is None:
                raise ProviderError(PROVIDER, "tool message without tool_call_id", retryable=False)
            out.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content})
    return out


def to_chat_tools(tools: Sequence[ToolSpec]) -> list[ChatCompletionFunctionToolParam]:
    """``ToolSpec``s as ``{"type": "function", "function": {name, description, parameters}}``."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
        }
        for t in tools
    ]


@dataclass(slots=True)
class _PartialCall:
    id: str
    name: str
    arguments: str

    def complete(self) -> ToolCallRequest:
        # A call without arguments may stream none at all; "{}" keeps json.loads working.
        return ToolCallRequest(ToolCall(self.id, self.name, self.arguments or "{}"))


class _ToolCallAssembler:
    """Rebuilds tool calls from streamed fragments, keyed by ``index``.

    The first fragment of a call brings ``id`` and ``function.name``; ``arguments`` arrive
    in pieces. Calls are released in index order, as soon as a higher index starts or the
    stream finishes. A fragment for an already released call is a protocol error.
    """

    def __init__(self) -> None:
        self._pending: dict[int, _PartialCall] = {}
        self._released: set[int] = set()
        self._last_index = -1

    def add(self, fragment: ChoiceDeltaToolCall) -> list[ToolCallRequest]:
        index = getattr(fragment, "index", None)  # some compatible servers omit it
        if index is None:
            index = self._last_index + 1 if fragment.id else max(self._last_index, 0)
        if index in self._released:
            raise ProviderError(PROVIDER, f"tool call {index} continued after it ended", retryable=False)
        done = self.flush(below=index) if index > self._last_index else []
        self._last_index = max(self._last_index, index)
        call = self._pending.setdefault(index, _PartialCall(fragment.id or f"call_{index}", "", ""))
        if fragment.id:
            call.id = fragment.id
        if fragment.function is not None:
            call.name = call.name or fragment.function.name or ""  # sent once, with the id
            call.arguments += fragment.function.arguments or ""
        return done

    def flush(self, below: int | None = None) -> list[ToolCallRequest]:
        """Release the pending calls with an index under ``below`` (all when None), in order."""
        ready = sorted(i for i in self._pending if below is None or i < below)
        self._released.update(ready)
        return [self._pending.pop(i).complete() for i in ready]

    @property
    def any(self) -> bool:
        return bool(self._released or self._pending)


class OpenAILLM:
    """``LanguageModel`` over ``POST {base_url}/chat/completions`` with ``stream=true``.

    ``default_model`` is used when ``LLMOptions.model`` is empty. Timeouts are in seconds (see
    :func:`make_client`). A supplied ``http_client``
    (``httpx`` or ``httpx2``) stays the caller's to close; otherwise call :meth:`aclose`.
    """

    name = "openai"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        default_model: str = DEFAULT_LLM_MODEL,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        read_timeout: float = READ_TIMEOUT_S,
        http_client: httpx.AsyncClient | httpx2.AsyncClient | None = None,
    ) -> None:
        self.default_model = default_model
        self._owns_client = http_client is None
        self._client = make_client(
            api_key, base_url, http_client, connect_timeout=connect_timeout, read_timeout=read_timeout
        )

    @property
    def base_url(self) -> str:
        """The API root requests go to, e.g. ``https://api.openai.com/v1/``."""
        return str(self._client.base_url)

    async def aclose(self) -> None:
        """Close the connection pool (unless it belongs to a supplied ``http_client``)."""
        if self._owns_client:
            await self._client.close()

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], options: LLMOptions
    ) -> AsyncGenerator[LLMEvent, None]:
        """Stream one reply: ``TextDelta``s as content arrives, then each complete
        ``ToolCallRequest`` (index order), then the ``LLMUsage`` if the server reported
        it, then exactly one ``Finished``.

        Raises ``ProviderError`` before or during the stream. Close the iterator early
        (``contextlib.aclosing``) on barge-in: that closes the HTTP response at once.
        """
        chat_messages = to_chat_messages(messages)
        chat_tools = to_chat_tools(tools)
        model = options.model or self.default_model
        reasoning = model_rules(model).reasoning
        try:
            stream = await self._client.chat.completions.create(
                model=model,
                messages=chat_messages,
                temperature=openai.omit if reasoning else options.temperature,
                # a phone reply wants its first word fast; function tools need "none" here anyway
                reasoning_effort="none" if reasoning else openai.omit,
                max_completion_tokens=options.max_tokens,
                tools=chat_tools if chat_tools else openai.omit,
                stream=True,
                stream_options={"include_usage": True},
            )
        except (openai.OpenAIError, *_TRANSPORT_ERRORS) as exc:
            raise map_openai_error(exc) from exc

        calls = _ToolCallAssembler()
        reason: str | None = None
        usage: LLMUsage | None = None
        async with stream:
            chunks = aiter(stream)
            while True:
                try:
                    chunk: ChatCompletionChunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                except (openai.OpenAIError, *_TRANSPORT_ERRORS, json.JSONDecodeError) as exc:
                    raise map_openai_error(exc) from exc
                if chunk.usage is not None:  # the last chunk, when usage was asked for
                    tokens = chunk.usage
                    usage = LLMUsage(model, tokens.prompt_tokens or 0, tokens.completion_tokens or 0)
                for choice in chunk.choices:  # empty on a usage-only chunk
                    if choice.index != 0:
                        continue
                    if choice.delta.content:
                        yield TextDelta(choice.delta.content)
                    for fragment in choice.delta.tool_calls or ():
                        for request in calls.add(fragment):
                            yield request
                    if choice.finish_reason is not None:
                        reason = choice.finish_reason
        for request in calls.flush():
            yield request
        if usage is not None:
            yield usage
        yield Finished(reason or ("tool_calls" if calls.any else "stop"))
