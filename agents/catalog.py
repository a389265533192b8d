"""Every tool a persona may name in its ``tools:`` list, by name."""

from __future__ import annotations

from agents.builtin import BUILTIN_TOOLS
from agents.examples import EXAMPLE_TOOLS
from agents.tools import Tool

ALL_TOOLS: dict[str, Tool] = {**BUILTIN_TOOLS, **EXAMPLE_TOOLS}
