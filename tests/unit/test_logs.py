from __future__ import annotations

import logging

from app.logs import ContextLogger, KeyValueFormatter


def test_extra_fields_are_appended_as_key_values() -> None:
    record = logging.makeLogRecord({"msg": "call ended", "levelname": "INFO", "name": "app.call"})
    record.call_id = "c-1"
    record.frames_in = 12
    line = KeyValueFormatter("%(message)s").format(record)
    assert line == "call ended call_id=c-1 frames_in=12"


def test_context_logger_keeps_per_call_extras() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("test.context")
    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    ContextLogger(logger, {"call_id": "c-9"}).info("hello", extra={"reason": "hangup"})
    assert (records[0].call_id, records[0].reason) == ("c-9", "hangup")  # type: ignore[attr-defined]
