"""The example personas' tools against a real SQLite file, and their schemas from type hints."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agents.examples import book_appointment, order_status, parse_day, parse_time, reserve_table, spoken_time
from agents.store import db_path
from agents.tools import ToolContext


def ctx(tmp_path: Path, call_id: str = "call-1") -> ToolContext:
    return ToolContext(
        call_id=call_id, persona="clinic", end_call=lambda _: None, transfer=_no, data_dir=tmp_path
    )


async def _no() -> str:
    return "no"


@pytest.mark.parametrize(
    ("said", "hhmm"),
    [
        ("10 am", "10:00"),
        ("ten a.m.", "10:00"),
        ("2:30 pm", "14:30"),
        ("3", "15:00"),  # a bare afternoon hour
        ("three thirty", "15:30"),
        ("noon", "12:00"),
        ("12 am", "00:00"),
        ("eleven o'clock", "11:00"),
        ("25:00", None),
        ("whenever", None),
    ],
)
def test_times_as_callers_say_them(said: str, hhmm: str | None) -> None:
    assert parse_time(said) == hhmm


def test_days_and_spoken_times() -> None:
    assert parse_day("On Monday, please.") == "monday"
    assert parse_day("tomorrow morning") == "tomorrow"
    assert parse_day("soon") is None
    assert (spoken_time("14:30"), spoken_time("09:00"), spoken_time("00:15")) == (
        "2:30 pm",
        "9 am",
        "12:15 am",
    )


def test_schemas_come_from_the_type_hints() -> None:
    schema = reserve_table.spec.parameters
    assert schema["required"] == ["day", "time", "party", "name"]
    party = schema["properties"]["party"]  # what a model needs from it, not pydantic's exact output
    assert (party["type"], party["minimum"], party["maximum"]) == ("integer", 1, 20)
    assert "Monday" in schema["properties"]["day"]["description"]
    assert book_appointment.spec.description.startswith("Book a clinic appointment")
    assert book_appointment.filler == "Let me check the diary, one moment."


async def test_booking_writes_a_row_and_refuses_a_taken_slot(tmp_path: Path) -> None:
    args = '{"day": "Monday", "time": "ten a.m.", "patient": "Asha Patel"}'
    first = await book_appointment.run(ctx(tmp_path), args)
    assert first == "booked Asha Patel on Monday at 10 am, reference A1"
    again = await book_appointment.run(ctx(tmp_path, "call-2"), args.replace("Asha Patel", "Ben Ode"))
    assert again.startswith("error: 10 am on Monday is taken; free that day: 9 am, 11 am, 12 pm, 2 pm")
    assert "10 am," not in again.split("free that day:", 1)[1]
    with sqlite3.connect(db_path(tmp_path)) as db:
        rows = db.execute("SELECT day, time, patient, call_id FROM appointments").fetchall()
    assert rows == [("monday", "10:00", "Asha Patel", "call-1")]
    closed = await book_appointment.run(ctx(tmp_path), '{"day": "Monday", "time": "1 pm", "patient": "X"}')
    assert closed.startswith("error: we book on the hour")
    bad = await book_appointment.run(ctx(tmp_path), '{"day": "Monday"}')
    assert bad.startswith("error: bad arguments for book_appointment")


async def test_reservations_fill_up_and_numbers_may_be_words(tmp_path: Path) -> None:
    args = '{"day": "friday", "time": "8 pm", "party": "four", "name": "Kim"}'
    results = [await reserve_table.run(ctx(tmp_path, f"c{i}"), args) for i in range(4)]
    assert results[0] == "a table for 4 under Kim on Friday at 8 pm, reference R1"
    assert results[3] == "error: we are fully booked on Friday at 8 pm"
    early = await reserve_table.run(ctx(tmp_path), args.replace("8 pm", "3 pm"))
    assert early == "error: we seat guests from 5 pm to 10 pm"
    huge = await reserve_table.run(ctx(tmp_path), args.replace('"four"', "40"))
    assert huge.startswith("error: bad arguments")


async def test_order_status(tmp_path: Path) -> None:
    assert (await order_status.run(ctx(tmp_path), '{"order_id": "one zero zero one"}')).startswith("error")
    assert await order_status.run(ctx(tmp_path), '{"order_id": "1001"}') == (
        "order 1001 is shipped: it left our warehouse yesterday and arrives tomorrow"
    )
    assert await order_status.run(ctx(tmp_path), '{"order_id": "#99"}') == ("error: I can't find an order 99")
