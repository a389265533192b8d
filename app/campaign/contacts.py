"""A campaign's inputs, read and checked before anything is dialled (pure, no network).

- contacts: a CSV with a ``number`` column (E.164, or digits with the country code), an optional
  ``timezone`` column (an IANA name such as ``Asia/Kolkata``), and any other columns, which are
  the persona's ``{placeholders}``;
- a do-not-call list: one number a line (``#`` comments), compared in E.164;
- calling hours ``HH:MM-HH:MM`` in the callee's time zone (the ``timezone`` column, else the one
  of the number's country code, :data:`ZONE_BY_PREFIX`).

A user's mistake raises :class:`CampaignError` with a one-line message.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_VALUE_CHARS = 200  # a contact's value in the prompt: a name, a date, an amount; not a document
MAX_CONTACTS = 100_000

#: the time zone of a number by its country code when the CSV gives none (longest prefix wins);
#: a country spanning several zones gets its most populous one: give a ``timezone`` column there
ZONE_BY_PREFIX: dict[str, str] = {
    "91": "Asia/Kolkata",
    "1": "America/New_York",
    "44": "Europe/London",
    "61": "Australia/Sydney",
    "65": "Asia/Singapore",
    "971": "Asia/Dubai",
    "966": "Asia/Riyadh",
    "49": "Europe/Berlin",
    "33": "Europe/Paris",
    "81": "Asia/Tokyo",
    "86": "Asia/Shanghai",
    "880": "Asia/Dhaka",
    "92": "Asia/Karachi",
    "94": "Asia/Colombo",
    "977": "Asia/Kathmandu",
    "27": "Africa/Johannesburg",
    "234": "Africa/Lagos",
    "254": "Africa/Nairobi",
    "55": "America/Sao_Paulo",
    "52": "America/Mexico_City",
}
DEFAULT_ZONE = "Asia/Kolkata"

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_HOURS = re.compile(r"([0-2]?[0-9]):([0-5][0-9])-([0-2]?[0-9]):([0-5][0-9])")
RESERVED = frozenset({"number", "timezone"})


class CampaignError(ValueError):
    """A mistake in the campaign's inputs (one line, for the user)."""


def e164(raw: str) -> str | None:
    """``raw`` as ``+<digits>`` (spaces, dashes, dots and brackets dropped; a leading ``00`` is
    the international prefix), or None if it is not a phone number."""
    text = re.sub(r"[\s().-]", "", raw.strip())
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith("+"):
        text = "+" + text
    return text if _E164.fullmatch(text) else None


def zone_for(number: str) -> str:
    """The time zone of an E.164 number's country code (:data:`ZONE_BY_PREFIX`), else the default."""
    digits = number.lstrip("+")
    for size in (3, 2, 1):
        found = ZONE_BY_PREFIX.get(digits[:size])
        if found:
            return found
    return DEFAULT_ZONE


def clean_value(value: str) -> str:
    """A contact's value as safe prompt text: control characters and line breaks become spaces
    (a value cannot start a new line, a new message or a new section of the prompt), runs of
    spaces shrink to one, and it is cut at :data:`MAX_VALUE_CHARS`."""
    text = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in value)
    return " ".join(text.split())[:MAX_VALUE_CHARS]


@dataclass(frozen=True, slots=True)
class Contact:
    key: str  # the number in E.164: one contact a number (a repeat is skipped)
    row: int  # its line in the CSV (1 = the header)
    timezone: str
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ContactList:
    contacts: tuple[Contact, ...]
    # (line, number as written, why): not a number, a repeat, an unknown time zone, an empty value
    skipped: tuple[tuple[int, str, str], ...]


def read_contacts(path: Path, needed: set[str]) -> ContactList:
    """The contacts of ``path``. ``needed``: the placeholders the persona uses, each of which must
    be a column (else ``CampaignError`` naming the missing ones, before anything is dialled)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            rows = list(reader)
    except FileNotFoundError:
        raise CampaignError(f"contacts file not found: {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CampaignError(f"cannot read the contacts file {path}: {exc}") from None
    if "number" not in columns:
        raise CampaignError(f"{path}: no 'number' column (columns: {', '.join(columns) or 'none'})")
    missing = sorted(needed - set(columns))
    if missing:
        raise CampaignError(
            f"{path}: the persona uses {', '.join('{' + m + '}' for m in missing)} but the CSV has no "
            f"such column (columns: {', '.join(columns)})"
        )
    if len(rows) > MAX_CONTACTS:
        raise CampaignError(f"{path}: more than {MAX_CONTACTS} contacts; split the file")
    contacts: list[Contact] = []
    skipped: list[tuple[int, str, str]] = []
    seen: set[str] = set()
    for line, raw in enumerate(rows, 2):
        row = {(k or "").strip(): (v or "") for k, v in raw.items() if isinstance(v, str)}
        raw_number = row.get("number", "").strip()[:32]
        number = e164(raw_number)
        if number is None:
            skipped.append((line, raw_number, "not a phone number"))
            continue
        if number in seen:
            skipped.append((line, raw_number, "a repeat of an earlier number"))
            continue
        zone = row.get("timezone", "").strip() or zone_for(number)
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            skipped.append((line, raw_number, f"unknown time zone {zone[:40]!r}"))
            continue
        values = {k: clean_value(v) for k, v in row.items() if k and k not in RESERVED}
        empty = sorted(n for n in needed if not values.get(n))
        if empty:
            skipped.append((line, raw_number, f"empty {', '.join(empty)}"))
            continue
        seen.add(number)
        contacts.append(Contact(number, line, zone, values))
    return ContactList(tuple(contacts), tuple(skipped))


def read_dnc(path: Path | None) -> frozenset[str]:
    """The do-not-call numbers in E.164 (lines that are not numbers are an error: a typo there
    would call someone who asked not to be called)."""
    if path is None:
        return frozenset()
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise CampaignError(f"do-not-call file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignError(f"cannot read the do-not-call file {path}: {exc}") from None
    numbers = set()
    for index, raw in enumerate(lines, 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        number = e164(text)
        if number is None:
            raise CampaignError(f"{path}: line {index} is not a phone number")
        numbers.add(number)
    return frozenset(numbers)


@dataclass(frozen=True, slots=True)
class CallingHours:
    """Local times a callee may be called, ``start`` included, ``end`` excluded (``end`` before
    ``start`` runs past midnight)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> CallingHours:
        found = _HOURS.fullmatch(text.strip())
        if found is None:
            raise CampaignError(f"--hours {text!r}: use HH:MM-HH:MM, e.g. 09:00-20:00")
        h1, m1, h2, m2 = (int(g) for g in found.groups())
        if h1 > 23 or h2 > 24 or (h2 == 24 and m2) or (h1, m1) == (h2, m2):
            raise CampaignError(f"--hours {text!r}: not a span of the day (00:00-24:00 is all day)")
        return cls(time(h1, m1), time(0, 0) if h2 == 24 else time(h2, m2))

    def is_open(self, moment: datetime) -> bool:
        """``moment`` (aware, in the callee's zone) is within the hours."""
        now = moment.time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end  # past midnight (or 00:00 end = to midnight)

    def opens_after(self, moment: datetime) -> datetime:
        """The next opening at or after ``moment`` (aware, in the callee's zone)."""
        if self.is_open(moment):
            return moment
        day = moment.date()
        for offset in (0, 1):
            candidate = datetime.combine(day + timedelta(days=offset), self.start, tzinfo=moment.tzinfo)
            if candidate >= moment:
                return candidate
        return moment  # not reached: today's or tomorrow's opening is always later


def local_now(unix: float, zone: str) -> datetime:
    return datetime.fromtimestamp(unix, ZoneInfo(zone))
