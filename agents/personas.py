"""Persona names: which ``prompts/<name>.md`` files exist. A name is never a path."""

from __future__ import annotations

import re
from pathlib import Path

PERSONA_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def is_valid_name(name: str) -> bool:
    """Lower-case letters, digits, ``-`` and ``_`` only (no dots, no slashes)."""
    return PERSONA_NAME.fullmatch(name) is not None


def persona_names(prompts_dir: Path) -> frozenset[str]:
    """The persona names defined in ``prompts_dir`` (``<name>.md`` files with valid names)."""
    if not prompts_dir.is_dir():
        return frozenset()
    return frozenset(p.stem for p in prompts_dir.glob("*.md") if is_valid_name(p.stem))
