"""The fields of a Vobiz HTTP callback (answer, hang-up, stream status, transfer), checked.

The body of a callback is not signed (PROTOCOL.md §9): a captured or forged request can carry
anything. Every field is bounded in number, name and length, and the fields the service uses
(ids, event words, numbers, parties) must look like what Vobiz sends. Liberal where the sources
are vague (unknown fields pass if they are short and printable), exact about size. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from app.telephony.errors import CallbackFieldError

MAX_FIELDS = 100  # a callback carries about 15; X-VH-* extras add a few
MAX_NAME_CHARS = 64
MAX_VALUE_CHARS = 2048  # URLs (ServiceURL, status_callback_url) are the longest known values

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_ID = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9._:-]*)?")
_WORD = re.compile(r"[A-Za-z0-9_ .-]*")
_DIGITS = re.compile(r"[0-9]*")


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str] | None  # None: any printable text
    max_chars: int
    form: str = ""  # what the pattern asks for, in words


_ID_RULE = _Rule(_ID, 128, "an id: letters, digits, '.', '_', ':' or '-'")
_WORD_RULE = _Rule(_WORD, 64, "a word: letters, digits, spaces, '.', '_' or '-'")
_NUMBER_RULE = _Rule(_DIGITS, 12, "a whole number")
_PARTY_RULE = _Rule(None, 256)  # a number or a SIP URI: any printable text
_ANY_RULE = _Rule(None, MAX_VALUE_CHARS)
_RULES: dict[str, _Rule] = {
    **dict.fromkeys(
        ("CallUUID", "StreamID", "ALegUUID", "ALegRequestUUID", "RequestUUID", "ParentAuthID"), _ID_RULE
    ),
    **dict.fromkeys(
        ("Event", "CallStatus", "Direction", "HangupCause", "HangupSource", "Machine"), _WORD_RULE
    ),
    **dict.fromkeys(("Duration", "BillDuration", "HangupCauseCode"), _NUMBER_RULE),
    **dict.fromkeys(("From", "To", "ForwardedFrom", "CallerName"), _PARTY_RULE),
}


def check_callback(params: Mapping[str, str]) -> dict[str, str]:
    """``params`` as a dict if every field is within bounds, else ``CallbackFieldError``."""
    if len(params) > MAX_FIELDS:
        raise CallbackFieldError(f"too many fields ({len(params)}; at most {MAX_FIELDS})")
    for name, value in params.items():
        if len(name) > MAX_NAME_CHARS or not _NAME.fullmatch(name):
            raise CallbackFieldError(
                f"a field name is longer than {MAX_NAME_CHARS} characters or has characters other than "
                "letters, digits, '.', '_' or '-'"
            )
        rule = _RULES.get(name, _ANY_RULE)
        if len(value) > rule.max_chars:
            raise CallbackFieldError(
                f"{name} is too long ({len(value)} characters; at most {rule.max_chars})"
            )
        if rule.pattern is not None:
            if not rule.pattern.fullmatch(value):
                raise CallbackFieldError(f"{name} must be {rule.form}")
        elif not value.isprintable():
            raise CallbackFieldError(f"{name} has control characters")
    return dict(params)
