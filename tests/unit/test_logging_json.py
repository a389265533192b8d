"""JSON log lines, and the call id that every record logged inside a call carries."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator

import pytest

from app.logs import JsonFormatter, configure_logging
from app.observability.context import CallIdFilter, bind_call_id, current_call_id, unbind_call_id


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    """The "app" logger, restored after the test (configure_logging replaces its handlers)."""
    logger = logging.getLogger("app")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord({"msg": msg, "args": args, "levelname": "INFO", "name": "app.call"})
    rec.__dict__.update(extra)
    return rec


def test_a_json_line_has_the_message_and_every_extra_field() -> None:
    line = JsonFormatter().format(record("protocol error: %s", "bad frame", call_id="c-1", count=3))
    entry = json.loads(line)
    assert entry["message"] == "protocol error: bad frame"
    assert (entry["level"], entry["logger"], entry["call_id"], entry["count"]) == (
        "INFO",
        "app.call",
        "c-1",
        3,
    )
    assert entry["time"].endswith("+00:00")
    assert "\n" not in line


def test_values_json_cannot_hold_are_written_as_text() -> None:
    entry = json.loads(
        JsonFormatter().format(record("x", kinds=Counter({"bad-frame": 2}), obj=object(), big=2**70))
    )
    assert entry["kinds"] == {"bad-frame": 2}
    assert entry["obj"].startswith("<object object")
    assert entry["big"] == str(2**70)


def test_a_field_named_like_a_standard_key_is_kept_aside() -> None:
    entry = json.loads(JsonFormatter().format(record("x", level="mine")))
    assert (entry["level"], entry["extra.level"]) == ("INFO", "mine")


def test_an_exception_is_one_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = logging.LogRecord("app", logging.ERROR, __file__, 1, "failed", (), exc_info=sys.exc_info())
    entry = json.loads(JsonFormatter().format(rec))
    assert "ValueError: boom" in entry["exc_info"]


async def test_records_logged_in_a_calls_tasks_carry_its_id(app_logger: logging.Logger) -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "json", stream=out)
    log = logging.getLogger("app.test")

    async def call(call_id: str) -> None:
        token = bind_call_id(call_id)
        try:

            async def child() -> None:
                await asyncio.sleep(0)
                log.info("inside a task of the call")

            async with asyncio.TaskGroup() as tg:
                tg.create_task(child())
            log.info("explicit id wins", extra={"call_id": "given"})
        finally:
            unbind_call_id(token)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(call("c-1"))
        tg.create_task(call("c-2"))
    log.info("outside any call")
    entries = [json.loads(line) for line in out.getvalue().splitlines()]
    inside = sorted(e["call_id"] for e in entries if e["message"] == "inside a task of the call")
    assert inside == ["c-1", "c-2"]
    assert [e["call_id"] for e in entries if e["message"] == "explicit id wins"] == ["given", "given"]
    assert "call_id" not in next(e for e in entries if e["message"] == "outside any call")
    assert current_call_id.get() is None


def test_text_format_stays_readable(app_logger: logging.Logger) -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", stream=out)
    token = bind_call_id("c-7")
    try:
        logging.getLogger("app.test").info("call ended", extra={"reason": "hangup"})
    finally:
        unbind_call_id(token)
    assert out.getvalue().rstrip().endswith("INFO app.test: call ended call_id=c-7 reason=hangup")


def test_the_filter_never_drops_a_record() -> None:
    assert CallIdFilter().filter(record("x"))
