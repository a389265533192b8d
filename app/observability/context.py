"""The call id of the code that is running, for log records.

``bind_call_id`` is set where a call's session begins (the media socket); every task the call
creates afterwards copies the context, so anything logged from them is tagged by
:class:`CallIdFilter` without passing the id around.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token

current_call_id: ContextVar[str | None] = ContextVar("current_call_id", default=None)


def bind_call_id(call_id: str) -> Token[str | None]:
    """Tag what this task (and the tasks it creates from now on) logs with ``call_id``; pass
    the token to :func:`unbind_call_id` when the call is over."""
    return current_call_id.set(call_id)


def unbind_call_id(token: Token[str | None]) -> None:
    current_call_id.reset(token)


class CallIdFilter(logging.Filter):
    """Adds ``call_id`` to a record logged inside a call, unless the record already has one.

    Put it on handlers, not loggers: a logger's filters do not see records from its children."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "call_id", None) is None:
            call_id = current_call_id.get()
            if call_id is not None:
                record.call_id = call_id
        return True
