from __future__ import annotations

import pytest

from app.pipeline.sentences import SentenceSplitter


def split_stream(deltas: list[str]) -> list[str]:
    splitter = SentenceSplitter()
    out: list[str] = []
    for delta in deltas:
        out += splitter.push(delta)
    tail = splitter.flush()
    return out + ([tail] if tail else [])


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        ("We open at 9.30 tomorrow. See you!", ["We open at 9.30 tomorrow.", "See you!"]),
        ("Dr. Rao is in today. Book now?", ["Dr. Rao is in today.", "Book now?"]),
        ("Call J. Doe please.", ["Call J. Doe please."]),
        ("Line one\nLine two", ["Line one", "Line two"]),
        ('He said "yes." Then left.', ['He said "yes."', "Then left."]),
        ("Wait... what?", ["Wait...", "what?"]),
        ("आपका स्वागत है। कैसे मदद करूँ?", ["आपका स्वागत है।", "कैसे मदद करूँ?"]),
        ("no ending", ["no ending"]),
    ],
)
def test_whole_text(text: str, sentences: list[str]) -> None:
    assert split_stream([text]) == sentences


def test_character_by_character_gives_the_same_sentences() -> None:
    text = "Sure. Your table for two is booked at 7.45 pm. Anything else?"
    assert split_stream(list(text)) == split_stream([text])


def test_a_sentence_is_released_as_soon_as_it_is_complete() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("Yes, we") == []
    assert splitter.push(" are open. We") == ["Yes, we are open."]
    assert splitter.push(" close at six.") == []  # no space after the stop yet: may continue
    assert splitter.push(" ") == ["We close at six."]


def test_a_long_first_sentence_is_cut_at_a_comma() -> None:
    splitter = SentenceSplitter(first_clause_chars=30)
    out = splitter.push("Thank you so much for calling the clinic today, I can help with that")
    assert out == ["Thank you so much for calling the clinic today,"]
    # only the first sentence is cut early
    assert splitter.push(" and with anything else, really, just ask") == []


def test_a_long_first_sentence_without_commas_is_cut_after_max_words() -> None:
    splitter = SentenceSplitter(first_max_words=5)
    assert splitter.push("one two three four") == []
    assert splitter.push(" five") == []  # "five" may still be growing
    assert splitter.push(" six") == ["one two three four five"]
    assert splitter.push(" seven eight nine ten eleven twelve") == []  # later sentences wait
