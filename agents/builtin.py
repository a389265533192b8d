"""Tools every persona may allow: ending and transferring the call."""

from __future__ import annotations

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


BUILTIN_TOOLS: dict[str, Tool] = {t.name: t for t in (end_call, transfer_call)}
