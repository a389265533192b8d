from __future__ import annotations

import logging
import logging.config

from uvicorn.config import LOGGING_CONFIG

from app.logs import ContextLogger, KeyValueFormatter, RedactStreamPaths, redact_stream_paths


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


def test_stream_paths_are_redacted_in_message_and_arguments() -> None:
    token = "AlP-5ztZNkxqFGSvN8AzdIQuJE4xhoMifJLmA_Q7Xc5M"
    cases = [
        ('%s - "WebSocket %s" [accepted]', ("127.0.0.1:5000", f"/vobiz/media/{token}")),
        ('%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5000", "GET", f"/vobiz/media/{token}?x=1", "1.1", 404)),
        (f"< GET /vobiz/media/{token} HTTP/1.1", ()),
        ("%(path)s", {"path": f"/vobiz/media/{token}"}),
    ]
    for msg, args in cases:
        record = logging.makeLogRecord({"msg": msg, "args": args, "name": "uvicorn.access"})
        assert RedactStreamPaths().filter(record)
        text = record.getMessage()
        assert token not in text
        assert "/vobiz/media/<redacted>" in text
    untouched = logging.makeLogRecord({"msg": "%s", "args": ("/vobiz/answer",)})
    RedactStreamPaths().filter(untouched)
    assert untouched.getMessage() == "/vobiz/answer"


def test_redaction_survives_uvicorns_own_log_config() -> None:
    """``uvicorn --factory`` configures logging before it calls ``create_app``; ``uvicorn.run(app)``
    after: either way the filter stays on the loggers, once."""
    loggers = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    try:
        redact_stream_paths()
        logging.config.dictConfig(LOGGING_CONFIG)
        redact_stream_paths()
        for logger in loggers[1:]:
            assert [type(f) for f in logger.filters].count(RedactStreamPaths) == 1
    finally:  # uvicorn's config would keep its records from the other tests' log capture
        for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
