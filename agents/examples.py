"""Tools of the example personas: a clinic's appointments, a restaurant's tables, a shop's orders.

Each is backed by a real SQLite table (``agents/store.py``). What callers say is loose ("ten
a.m.", "Monday", "a table for four"), so the tools normalise days, times and numbers themselves
and answer in a sentence the model (or the offline responder's ``{result}``) can speak; one
that could not be done starts with ``error:``.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Annotated

import pydantic

from agents import store
from agents.tools import Tool, ToolContext, tool

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
NUMBERS = {
    **{
        w: i
        for i, w in enumerate(
            [
                "zero",
                "one",
                "two",
                "three",
                "four",
                "five",
                "six",
                "seven",
                "eight",
                "nine",
                "ten",
                "eleven",
                "twelve",
            ]
        )
    },
    "a": 1,
    "an": 1,
}
CLINIC_TIMES = ("09:00", "10:00", "11:00", "12:00", "14:00", "15:00", "16:00")
TABLES_PER_TIME = 3
_TIME = re.compile(
    r"^(?P<hour>\d{1,2}|" + "|".join(sorted(NUMBERS, key=len, reverse=True)) + r")"
    r"(?:[:.](?P<minute>\d{2})|\s+(?P<thirty>thirty))?\s*(?P<half>a\.?m\.?|p\.?m\.?|o'?clock)?$",
    re.IGNORECASE,
)


def parse_day(text: str) -> str | None:
    """'Monday', 'on monday.' → 'monday'; 'tomorrow' and 'today' stay as said; else None."""
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in DAYS or word in ("today", "tomorrow"):
            return str(word)
    return None


def parse_time(text: str) -> str | None:
    """ "10 am", "ten a.m.", "2:30 pm", "noon", "three thirty" → 24-hour "HH:MM"; else None.
    A bare hour from 1 to 7 is taken as the afternoon (no one books 3 a.m.)."""
    said = text.strip().lower().rstrip(".!?")
    if said in ("noon", "midday"):
        return "12:00"
    found = _TIME.match(said)
    if found is None:
        return None
    hour_text = found.group("hour")
    hour = int(hour_text) if hour_text.isdigit() else NUMBERS[hour_text]
    minute = int(found.group("minute") or (30 if found.group("thirty") else 0))
    half = (found.group("half") or "").replace(".", "")
    if half.startswith("p") and hour < 12:
        hour += 12
    elif half.startswith("a") and hour == 12:
        hour = 0
    elif not half.startswith(("a", "p")) and 1 <= hour <= 7:
        hour += 12
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return f"{hour:02d}:{minute:02d}"


def spoken_time(hhmm: str) -> str:
    """ "14:30" → "2:30 pm"; "09:00" → "9 am"."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    half = "am" if hour < 12 else "pm"
    hour12 = hour % 12 or 12
    return f"{hour12}:{minute:02d} {half}" if minute else f"{hour12} {half}"


def _party(value: object) -> object:
    if isinstance(value, str):
        said = value.strip().lower()
        for word in re.findall(r"[a-z]+|\d+", said):
            if word.isdigit():
                return int(word)
            if word in NUMBERS and word not in ("a", "an"):
                return NUMBERS[word]
    return value


# constraints before the validator, or pydantic leaves them out of the JSON schema
Party = Annotated[int, pydantic.Field(ge=1, le=20), pydantic.BeforeValidator(_party)]
Day = Annotated[str, pydantic.Field(description="the day, e.g. 'Monday' or 'tomorrow'")]
Time = Annotated[str, pydantic.Field(description="the time, e.g. '10 am' or '14:30'")]


@tool(filler="Let me check the diary, one moment.")
async def book_appointment(ctx: ToolContext, day: Day, time: Time, patient: str) -> str:
    """Book a clinic appointment for the patient (their full name) on a day at a time."""
    when_day, when_time = parse_day(day), parse_time(time)
    if when_day is None:
        return "error: I didn't catch which day"
    if when_time is None or when_time not in CLINIC_TIMES:
        free = ", ".join(spoken_time(t) for t in CLINIC_TIMES)
        return f"error: we book on the hour from 9 am to 4 pm, not at 1 pm: {free}"

    def book(db: sqlite3.Connection) -> str:
        try:
            cursor = db.execute(
                "INSERT INTO appointments (day, time, patient, call_id) VALUES (?, ?, ?, ?)",
                (when_day, when_time, patient.strip(), ctx.call_id),
            )
        except sqlite3.IntegrityError:
            rows = db.execute("SELECT time FROM appointments WHERE day = ?", (when_day,))
            taken = {row["time"] for row in rows}
            free = ", ".join(spoken_time(t) for t in CLINIC_TIMES if t not in taken) or "none"
            return (
                f"error: {spoken_time(when_time)} on {when_day.capitalize()} is taken; free that day: {free}"
            )
        when = f"{when_day.capitalize()} at {spoken_time(when_time)}"
        return f"booked {patient.strip()} on {when}, reference A{cursor.lastrowid}"

    return await store.run(ctx, book)


@tool(filler="One moment while I check the book.")
async def reserve_table(ctx: ToolContext, day: Day, time: Time, party: Party, name: str) -> str:
    """Reserve a table for a party of people under a name, on a day at a time."""
    when_day, when_time = parse_day(day), parse_time(time)
    if when_day is None:
        return "error: I didn't catch which day"
    if when_time is None or not "17:00" <= when_time <= "22:00":
        return "error: we seat guests from 5 pm to 10 pm"

    def reserve(db: sqlite3.Connection) -> str:
        (booked,) = db.execute(
            "SELECT COUNT(*) FROM reservations WHERE day = ? AND time = ?", (when_day, when_time)
        ).fetchone()
        if booked >= TABLES_PER_TIME:
            return f"error: we are fully booked on {when_day.capitalize()} at {spoken_time(when_time)}"
        cursor = db.execute(
            "INSERT INTO reservations (day, time, party, name, call_id) VALUES (?, ?, ?, ?, ?)",
            (when_day, when_time, party, name.strip(), ctx.call_id),
        )
        return (
            f"a table for {party} under {name.strip()} on {when_day.capitalize()} at "
            f"{spoken_time(when_time)}, reference R{cursor.lastrowid}"
        )

    return await store.run(ctx, reserve)


@tool
async def order_status(ctx: ToolContext, order_id: str) -> str:
    """Look up an order by its number and say where it is."""
    digits = "".join(ch for ch in order_id if ch.isdigit())
    if not digits:
        return "error: I didn't catch the order number"

    def look(db: sqlite3.Connection) -> str:
        row = db.execute("SELECT status, detail FROM orders WHERE id = ?", (digits,)).fetchone()
        if row is None:
            return f"error: I can't find an order {digits}"
        return f"order {digits} is {row['status']}: {row['detail']}"

    return await store.run(ctx, look)


EXAMPLE_TOOLS: dict[str, Tool] = {t.name: t for t in (book_appointment, reserve_table, order_status)}
