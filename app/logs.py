"""Log set-up for the service: one line per record, with the record's structured fields.

Messages never carry transcripts, phone numbers or secrets; context travels as ``extra``
fields (``call_id``, counters). Two line formats: :class:`JsonFormatter` (one JSON object a
line, for log collectors; the default of ``serve``) and :class:`KeyValueFormatter` (for
people: the message, then ``key=value``). Either way a record logged inside a call carries
its ``call_id`` (see ``app.observability.context``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson

from app.observability.context import CallIdFilter

LogFormat = Literal["json", "text"]

# uvicorn adds "color_message" (the message with ANSI colours): not a field worth a column
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "color_message"}
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record was given beyond the standard ones (``extra=…``, filters)."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = extra_fields(record)
        if extras:
            line += " " + " ".join(f"{k}={_text(v)}" for k, v in sorted(extras.items()))
        return line


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", …extra fields, "exc_info"?}`` on one line.

    ``time`` is UTC ISO 8601 with milliseconds. A value JSON cannot hold is written as its
    ``str``; a field named like a standard key is kept as ``extra.<name>``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            entry[key if key not in entry else f"extra.{key}"] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        try:
            return _dumps(entry)
        except TypeError:  # orjson.JSONEncodeError, e.g. an int past 64 bits: that value as text
            return _dumps({k: v if _encodable(v) else _text(v) for k, v in entry.items()})


def _text(value: object) -> str:
    """``str(value)``, or its type's name when even that fails (a dead weakref proxy raises)."""
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _dumps(value: object) -> str:
    return orjson.dumps(value, default=_text, option=_JSON_OPTIONS).decode()


def _encodable(value: object) -> bool:
    try:
        _dumps(value)
    except TypeError:
        return False
    return True


def make_formatter(fmt: LogFormat) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    return KeyValueFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configure_logging(
    level: str,
    fmt: LogFormat = "text",
    *,
    stream: TextIO | None = None,
    loggers: tuple[str, ...] = ("app",),
) -> logging.Handler:
    """One handler (``fmt`` lines to ``stream``, default stderr, tagging records with their
    call id) on each of ``loggers``, which stop propagating. Returns the handler."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(make_formatter(fmt))
    handler.addFilter(CallIdFilter())
    for name in loggers:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    return handler


# the stream URL's path: /vobiz/media/<token> (see app.api.webhooks.MEDIA_PATH)
_MEDIA_PATH = re.compile(r"(/vobiz/media/)[^\s\"']+")
REDACTED = r"\1<redacted>"
#: the loggers that print request paths: uvicorn's access lines, its WebSocket handshake lines
#: (``"WebSocket /vobiz/media/…" [accepted]`` on ``uvicorn.error``) and the websockets library's
PATH_LOGGERS = ("uvicorn.access", "uvicorn.error", "websockets.server", "websockets.protocol")


class RedactStreamPaths(logging.Filter):
    """Rewrites ``/vobiz/media/<token>`` as ``/vobiz/media/<redacted>`` in a record's message
    and arguments: the token opens the call's stream while it is valid."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "/media/" in record.msg:
            record.msg = _MEDIA_PATH.sub(REDACTED, record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_redacted(a) for a in args)
        elif isinstance(args, Mapping):
            record.args = {k: _redacted(v) for k, v in args.items()}
        return True


def _redacted(value: object) -> object:
    if isinstance(value, str) and "/media/" in value:
        return _MEDIA_PATH.sub(REDACTED, value)
    return value


def redact_stream_paths(loggers: tuple[str, ...] = PATH_LOGGERS) -> None:
    """Put :class:`RedactStreamPaths` on ``loggers`` (once: calling again adds nothing).

    A filter on the logger itself, not on a handler, so it holds whatever handlers a deployment
    configures (``uvicorn --factory`` with its own log config included)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactStreamPaths) for f in logger.filters):
            logger.addFilter(RedactStreamPaths())


class ContextLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger that adds fixed context (e.g. ``call_id``) and keeps each call's own ``extra``."""

    def process(self, msg: object, kwargs: Any) -> tuple[object, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


#: drivers whose DEBUG lines quote each query with its parameters: a call record's row (its
#: transcript, the caller's number, the keys they pressed)
QUERY_LOGGERS = ("aiosqlite",)


class DropDebug(logging.Filter):
    """Drops a logger's DEBUG records, whatever level a deployment sets."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


def quiet_query_logs(loggers: tuple[str, ...] = QUERY_LOGGERS) -> None:
    """Put :class:`DropDebug` on ``loggers`` (once: calling again adds nothing)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropDebug) for f in logger.filters):
            logger.addFilter(DropDebug())
