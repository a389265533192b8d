"""Agent tools: typed async Python functions; the LLM's JSON schema comes from the type hints.

    @tool
    async def book_table(ctx: ToolContext, people: int, time: str) -> str:
        \"\"\"Book a table. `time` is HH:MM, 24-hour.\"\"\"

The first parameter is the ``ToolContext``; the others become the tool's arguments (pydantic
builds and validates them). The docstring's first paragraph is the description. A tool's
error is returned to the model as text (it can apologise); it never ends the call.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints, overload

import pydantic

from app.clock import Clock, SystemClock, run_blocking
from app.pipeline.keypad import DigitRequest
from app.providers.base import ToolCall, ToolSpec

log = logging.getLogger("agents.tools")
T = TypeVar("T")


@dataclass
class ToolContext:
    """What a tool may do to the call. Set up by the conversation for each call."""

    call_id: str
    persona: str
    end_call: Callable[[str], None]
    transfer: Callable[[], Awaitable[str]]
    state: dict[str, Any] = field(default_factory=dict)  # per-call scratch space for tools
    send_dtmf: Callable[[str], Awaitable[str]] | None = None  # press phone keys (Vobiz REST)
    data_dir: Path = Path("data")  # where tools keep their files (DATA_DIR)
    caller_number: str = ""
    clock: Clock = field(default_factory=SystemClock)  # the call's; see ``run_blocking``
    calls: list[ToolCall] = field(default_factory=list)  # every tool call of the call, in order
    # the caller keys in a number, the reply running the tool says the prompt (per reply)
    collect_digits: Callable[[DigitRequest], Awaitable[str]] | None = None

    async def run_blocking(self, work: Callable[[], T]) -> T:
        """``work()`` in a worker thread (a database, a file): never block the call's audio."""
        return await run_blocking(self.clock, work)


ToolFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    fn: ToolFunction
    args: type[pydantic.BaseModel]
    filler: str | None = None  # said while a slow tool runs

    @property
    def spec(self) -> ToolSpec:
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        return ToolSpec(self.name, self.description, schema)

    async def run(self, ctx: ToolContext, arguments: str) -> str:
        """Run with the model's JSON arguments; failures come back as text, never raise."""
        try:
            parsed = self.args.model_validate_json(arguments or "{}")
        except pydantic.ValidationError as exc:
            return f"error: bad arguments for {self.name}: {exc.errors(include_url=False)}"
        try:
            result = await self.fn(ctx, **dict(parsed))
        except Exception as exc:  # a tool's bug must not end the call; the model hears about it
            log.exception("tool failed", extra={"tool": self.name})
            return f"error: {self.name} failed ({type(exc).__name__})"
        return result if isinstance(result, str) else json.dumps(result, default=str)


@overload
def tool(fn: ToolFunction, *, name: str | None = None, filler: str | None = None) -> Tool: ...


@overload
def tool(
    fn: None = None, *, name: str | None = None, filler: str | None = None
) -> Callable[[ToolFunction], Tool]: ...


def tool(
    fn: ToolFunction | None = None, *, name: str | None = None, filler: str | None = None
) -> Tool | Callable[[ToolFunction], Tool]:
    """Make a ``Tool`` from an async function (usable bare or with arguments)."""

    def build(func: ToolFunction) -> Tool:
        signature = inspect.signature(func)
        hints = get_type_hints(func, include_extras=True)  # keeps Annotated[..., Field(description=...)]
        params = list(signature.parameters.values())[1:]  # skip the ToolContext
        fields: dict[str, Any] = {}
        for param in params:
            annotation = hints.get(param.name, str)
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (annotation, default)
        model = pydantic.create_model(f"{func.__name__}_args", **fields)
        doc = inspect.getdoc(func) or ""
        return Tool(name or func.__name__, doc.split("\n\n")[0].replace("\n", " "), func, model, filler)

    return build(fn) if fn is not None else build


class ToolRegistry:
    def __init__(self, tools: Mapping[str, Tool]) -> None:
        self.tools = dict(tools)
        # built once: pydantic's schema generation costs milliseconds, too much for every turn
        self._specs = [t.spec for t in self.tools.values()]

    def specs(self) -> list[ToolSpec]:
        return list(self._specs)

    async def run(self, ctx: ToolContext, call: ToolCall) -> str:
        ctx.calls.append(call)
        found = self.tools.get(call.name)
        if found is None:
            return f"error: there is no tool named {call.name}"
        return await found.run(ctx, call.arguments)
