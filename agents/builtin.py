"""Tools every persona may allow: ending and transferring the call, pressing phone keys,
having the caller key in a number."""

from __future__ import annotations

from typing import Annotated

import pydantic

from agents.tools import Tool, ToolContext, tool
from app.pipeline.keypad import DigitRequest


@tool
async def end_call(ctx: ToolContext, reason: str = "") -> str:
    """End the phone call. Use it after saying goodbye, when the caller is done."""
    ctx.end_call(reason or "the agent ended the call")
    return "The call will end after your goodbye has played."


async def _transfer_call(ctx: ToolContext) -> str:
    """Transfer the caller to a human colleague. Say that you are transferring first."""
    return await ctx.transfer()


transfer_call = tool(name="transfer_call", filler="Let me transfer you, one moment.")(_transfer_call)


Digits = Annotated[
    str,
    pydantic.Field(
        pattern=r"^[0-9*#wW]{1,64}$", description="keys to press: 0-9, * and #; w waits 0.5 s, W 1 s"
    ),
]


@tool
async def send_dtmf(ctx: ToolContext, digits: Digits) -> str:
    """Press keys on the phone line, e.g. to answer another company's phone menu."""
    if ctx.send_dtmf is None:
        return "error: pressing keys is not available on this line"
    return await ctx.send_dtmf(digits)


MaxDigits = Annotated[int, pydantic.Field(ge=1, le=32, description="stop after this many keys")]
Terminator = Annotated[
    str, pydantic.Field(pattern=r"^[#*]?$", description='the key that ends the entry: "#", "*", or ""')
]
InterDigit = Annotated[float, pydantic.Field(gt=0, le=60, description="seconds without a key that end it")]
FirstDigit = Annotated[
    float, pydantic.Field(gt=0, le=120, description="seconds to the first key, after the prompt")
]
Prompt = Annotated[str, pydantic.Field(max_length=500, description="said first: what to key in, then hash")]


@tool
async def collect_digits(
    ctx: ToolContext,
    max_digits: MaxDigits = 16,
    terminator: Terminator = "#",
    inter_digit_timeout: InterDigit = 5.0,
    first_digit_timeout: FirstDigit = 10.0,
    prompt: Prompt = "",
) -> str:
    """Have the caller key in a number on the phone keypad (an account, order or PIN number),
    never misheard. Returns exactly the digits keyed, "timeout" if no key came, or "empty" if
    only the terminator was pressed."""
    if ctx.collect_digits is None:
        return "error: keypad input is not available on this line"
    request = DigitRequest(max_digits, terminator, inter_digit_timeout, first_digit_timeout, prompt.strip())
    return await ctx.collect_digits(request)


BUILTIN_TOOLS: dict[str, Tool] = {t.name: t for t in (end_call, transfer_call, send_dtmf, collect_digits)}
