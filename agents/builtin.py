"""Tools every persona may allow: ending and transferring the call, pressing phone keys."""

from __future__ import annotations

from typing import Annotated

import pydantic

from agents.tools import Tool, ToolContext, tool


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


BUILTIN_TOOLS: dict[str, Tool] = {t.name: t for t in (end_call, transfer_call, send_dtmf)}
