"""Phone keys: the pure ``Keypad``, the turn-taker's key events, the persona's ``keypad`` map,
the caller script's ``press`` step and the liberal ``dtmf`` frame parse."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.personas import PersonaError, load_persona
from app.pipeline import turns as tt
from app.pipeline.factory import keypad_menu
from app.pipeline.keypad import (
    EMPTY,
    TIMEOUT,
    Collected,
    DigitRequest,
    KeyDown,
    KeyEntry,
    Keypad,
    KeysEntered,
    MenuChoice,
)
from app.simulator.caller import CallerRunner, HangUp, Press, Say, ScriptError, parse_script, parse_step
from app.telephony import events as ev

MENU = {
    "1": MenuChoice(reply="Appointments."),
    "0": MenuChoice(reply="Connecting you.", tool="transfer_call"),
}


# ── Keypad ──


def test_a_mapped_key_acts_at_once() -> None:
    pad = Keypad(MENU)
    assert pad.press(1.0, "1") == [KeyDown(1.0), KeysEntered(1.0, "The caller pressed 1.", MENU["1"])]
    assert pad.entries == [KeyEntry(1.0, "1", "menu")]


def test_unmapped_keys_make_one_turn_once_they_pause() -> None:
    pad = Keypad(MENU, gap_s=1.0)
    assert pad.press(1.0, "4") == [KeyDown(1.0)]  # the first key takes the floor
    assert pad.press(1.3, "2") == []
    assert pad.press(1.6, "1") == []  # mapped, but part of a number already being keyed
    assert pad.tick(2.5) == []
    assert pad.tick(2.6) == [KeysEntered(2.6, "The caller pressed 4, 2, 1.")]
    assert pad.entries == [KeyEntry(1.0, "421", "llm")]
    assert pad.tick(9.0) == []


def test_hash_ends_unmapped_keys_at_once_and_bad_keys_are_ignored() -> None:
    pad = Keypad()
    assert pad.press(1.0, "x") == []
    assert pad.press(1.0, "7") == [KeyDown(1.0)]
    assert pad.press(1.2, "#") == [KeysEntered(1.2, "The caller pressed 7.")]
    assert pad.entries == [KeyEntry(1.0, "7", "llm")]


@pytest.mark.parametrize(
    ("request_", "presses", "ticks", "result"),
    [
        (DigitRequest(), [(1.0, "1"), (1.5, "2"), (2.0, "#")], [], "12"),  # the terminator
        (DigitRequest(max_digits=3), [(1.0, "9"), (1.1, "8"), (1.2, "7")], [], "987"),  # max digits
        (DigitRequest(inter_digit_s=2.0), [(1.0, "5"), (1.5, "6")], [3.4, 3.5], "56"),  # inter-digit
        (DigitRequest(first_digit_s=4.0), [], [3.9, 4.0], TIMEOUT),  # no key at all
        (DigitRequest(), [(1.0, "#")], [], EMPTY),  # the terminator alone
        (DigitRequest(terminator=""), [(1.0, "1"), (1.1, "#")], [6.0, 6.1], "1#"),  # no terminator
    ],
)
def test_a_collection_ends_as_asked(
    request_: DigitRequest, presses: list[tuple[float, str]], ticks: list[float], result: str
) -> None:
    pad = Keypad(MENU)
    assert pad.collect(0.0, request_) == []
    assert pad.arm(0.0) == []
    out = []
    for t, key in presses:
        out += pad.press(t, key)  # never KeyDown: nothing barges in while collecting
    for t in ticks:
        out += pad.tick(t)
    assert out == [Collected(result)]
    assert not pad.collecting
    digits = [e for e in pad.entries if e.purpose == "collect"]
    assert [e.digits for e in digits] == ([result] if result not in (TIMEOUT, EMPTY) else [])


def test_the_first_digit_timer_waits_for_the_prompt_and_typed_ahead_keys_count() -> None:
    pad = Keypad(gap_s=1.0)
    pad.press(0.5, "3")  # keyed before the collection started
    pad.collect(1.0, DigitRequest(max_digits=4, first_digit_s=2.0, inter_digit_s=2.0))
    assert pad.tick(30.0) == []  # not armed: the prompt still plays
    pad.arm(30.0)
    assert pad.press(30.5, "4") == []
    assert pad.tick(32.4) == []
    assert pad.tick(32.5) == [Collected("34")]
    assert pad.entries == [KeyEntry(0.5, "34", "collect")]


# ── the turn-taker ──


def speaking(policy: tt.TurnPolicy | None = None) -> tt.TurnTaker:
    turns = tt.TurnTaker(policy or tt.TurnPolicy())
    turns.start(0.0, "Hello there.")
    turns.handle(tt.AudioStarted(0.1, 1))
    return turns


def test_a_key_cuts_the_agent_and_the_keys_are_the_turn() -> None:
    turns = speaking()
    assert turns.handle(tt.KeyPressed(1.0)) == [tt.Silence(1), tt.Cancel(1)]
    assert turns.floor is tt.Floor.LISTENING
    [respond] = turns.handle(tt.Keyed(1.0, "The caller pressed 1.", MENU["1"]))
    assert respond == tt.Respond(2, "The caller pressed 1.", menu=MENU["1"])
    assert isinstance(respond, tt.Respond)
    assert respond.keyed
    assert respond.final_at == 1.0


def test_keys_over_a_greeting_that_may_not_be_cut_are_answered_after_it() -> None:
    turns = speaking(tt.TurnPolicy(greeting_interruptible=False))
    assert turns.handle(tt.KeyPressed(1.0)) == []
    assert turns.handle(tt.Keyed(1.0, "The caller pressed 2.")) == []
    assert turns.handle(tt.AudioDone(2.0, 1)) == [tt.Respond(2, "The caller pressed 2.")]


def test_while_collecting_speech_neither_barges_in_nor_makes_a_turn() -> None:
    turns = speaking()
    assert turns.handle(tt.Collecting(0.5, True)) == []
    actions = []
    for i in range(30):
        actions += turns.handle(tt.Voice(1.0 + i * 0.02, True))
    actions += turns.handle(tt.Words(1.7, "four zero seven", final=True, speech_final=True))
    actions += turns.handle(tt.Voice(1.8, False))
    actions += turns.handle(tt.Tick(5.0))
    assert actions == []
    assert turns.floor is tt.Floor.SPEAKING
    turns.handle(tt.Collecting(6.0, False))
    assert turns.handle(tt.AudioDone(7.0, 1)) == []  # the mumbled digits are no turn afterwards
    assert turns.floor.value == "listening"  # (mypy keeps the earlier narrowing)


# ── the persona's keypad map ──

PERSONA = """---
display_name: Clinic
tools: [end_call, transfer_call, collect_digits]
transfer_number: "+14155550123"
intents:
  - name: hours
    examples: [when are you open, opening hours]
    reply: Nine to five.
keypad:
  1: {{reply: "Appointments."}}
  "*": {{intent: hours}}
  "0": {{reply: Connecting you., tool: transfer_call}}
  "2": {{tool: collect_digits, arguments: {{max_digits: 8, prompt: Key in your account number.}}}}
{extra}---
You help callers.
"""


def write(tmp_path: Path, extra: str = "", keypad: str | None = None) -> Path:
    text = PERSONA.format(extra=extra)
    if keypad is not None:
        text = text.replace('  1: {reply: "Appointments."}', keypad)
    path = tmp_path / "clinic.md"
    path.write_text(text)
    return path


def test_a_persona_maps_keys_to_replies_intents_and_tools(tmp_path: Path) -> None:
    persona = load_persona(write(tmp_path), frozenset({"end_call", "transfer_call", "collect_digits"}))
    menu = keypad_menu(persona)
    assert menu["1"] == MenuChoice(reply="Appointments.")
    assert menu["*"] == MenuChoice(text="when are you open")
    assert menu["0"] == MenuChoice(reply="Connecting you.", tool="transfer_call")
    assert menu["2"].tool == "collect_digits"
    assert dict(menu["2"].arguments) == {"max_digits": 8, "prompt": "Key in your account number."}


@pytest.mark.parametrize(
    ("keypad", "message"),
    [
        ('  "12": {reply: x}', "keypad: .*got '12'"),
        ("  5: {reply: x, intent: hours}", "drop reply and tool"),
        ("  5: {}", "a reply, an intent or a tool"),
        ("  5: {tool: book_appointment}", "keypad.5.tool: 'book_appointment' is not in this persona's tools"),
        ("  5: {intent: billing}", "keypad.5.intent: no intent named 'billing'"),
        ("  5: {reply: x, arguments: {a: 1}}", "arguments need a tool"),
    ],
)
def test_a_broken_keypad_map_names_the_key(tmp_path: Path, keypad: str, message: str) -> None:
    with pytest.raises(PersonaError, match=message):
        load_persona(write(tmp_path, keypad=keypad))


# ── the caller script and the frames ──


def test_press_sends_one_key_per_interval() -> None:
    assert parse_step("press 123#") == Press("123#")
    for bad in ("press 12x", "press 12 3", "press"):
        with pytest.raises(ScriptError, match="phone keys"):
            parse_step(bad)
    script = "press 1234#   # the account\npress #\n# press 9\nsay hi # press 5"
    assert parse_script(script) == [Press("1234#"), Press("#"), Say("hi")]
    runner = CallerRunner([Press("12#", interval=0.1), HangUp()], {}, 320)
    keys = [(i, tick.key) for i in range(12) if (tick := runner.tick(False, 0.02)).key]
    assert keys == [(0, "1"), (5, "2"), (10, "#")]
    assert np.all(runner.tick(False, 0.02).pcm == 0)


@pytest.mark.parametrize(
    ("frame", "keys"),
    [
        ('{"event":"dtmf","dtmf":{"digit":"5","track":"inbound"}}', "5"),
        ('{"event":"dtmf","dtmf":{"digits":"12#"}}', "12#"),
        ('{"event":"dtmf","digit":"*"}', "*"),
        ('{"event":"dtmf","digits":42}', "42"),
        ('{"event":"dtmf","dtmf":"a"}', "A"),
    ],
)
def test_dtmf_frames_are_read_liberally(frame: str, keys: str) -> None:
    assert ev.parse_inbound(frame) == ev.DtmfEvent(keys)


def test_a_bad_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ev.ProtocolError) as caught:
        ev.parse_inbound('{"event":"dtmf","dtmf":{"digit":"9x"}}')
    assert "9" not in str(caught.value).replace("0-9", "")
