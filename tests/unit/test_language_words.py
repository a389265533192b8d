"""Backchannels, trailing words and one-word answers per caller language: the word lists, Indic
tokenising, and the turn-taker of a persona speaking each language."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.personas import Persona, PersonaSettings
from app.pipeline.end_of_turn import Verdict, cue_languages, same_words, text_verdict
from app.pipeline.factory import conversation_config
from app.pipeline.language_words import LANGUAGES, WORD_LISTS, cues, cues_for, language_codes, words
from app.pipeline.turns import (
    AudioDone,
    AudioStarted,
    Cancel,
    Commit,
    Floor,
    Respond,
    Resume,
    Silence,
    Speak,
    TurnAction,
    TurnPolicy,
    TurnTaker,
    Voice,
    Words,
)

INDIAN = ("hi", "ta", "te", "kn", "bn", "mr", "gu", "ml", "pa", "od")
# the Unicode block of each language's native script
SCRIPTS = {
    "hi": (0x0900, 0x097F),
    "mr": (0x0900, 0x097F),
    "bn": (0x0980, 0x09FF),
    "pa": (0x0A00, 0x0A7F),
    "gu": (0x0A80, 0x0AFF),
    "od": (0x0B00, 0x0B7F),
    "ta": (0x0B80, 0x0BFF),
    "te": (0x0C00, 0x0C7F),
    "kn": (0x0C80, 0x0CFF),
    "ml": (0x0D00, 0x0D7F),
}


# ── tokenising ──


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Uh-huh.", ["uh-huh"]),
        ("I’m fine, thanks!", ["i'm", "fine", "thanks"]),
        ("नहीं", ["नहीं"]),  # a vowel sign and a nasal mark inside the word
        ("हाँ। ठीक है॥", ["हाँ", "ठीक", "है"]),  # dandas end sentences, not words
        ("ஆமாம் சரி", ["ஆமாம்", "சரி"]),  # Tamil: the virama (pulli) closes the word
        ("అవును, సరే", ["అవును", "సరే"]),
        ("ಹೌದು ಆಯ್ತು", ["ಹೌದು", "ಆಯ್ತು"]),  # a conjunct through the virama
        ("হ্যাঁ আচ্ছা", ["হ্যাঁ", "আচ্ছা"]),  # ya-phala and candrabindu
        ("ਹਾਂਜੀ ਬਿਲਕੁਲ", ["ਹਾਂਜੀ", "ਬਿਲਕੁਲ"]),
        ("હા, બરાબર", ["હા", "બરાબર"]),
        ("ହଁ ଆଚ୍ଛା", ["ହଁ", "ଆଚ୍ଛା"]),
        ("അതെ, ശരി", ["അതെ", "ശരി"]),
        ("एक दो तीन १२३", ["एक", "दो", "तीन", "१२३"]),
        ("haan ok हाँ", ["haan", "ok", "हाँ"]),  # code-mixed
        (" - ", []),
    ],
)
def test_words_keep_indic_marks_inside_the_word(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_either_spelling_of_a_malayalam_chillu_is_one_word() -> None:
    # "ennaal" (but) with the atomic chillu, and with virama + zero-width joiner (older input)
    assert words("എന്നാല്\u200d") == words("എന്നാൽ") == ["എന്നാൽ"]
    assert "എന്നാൽ" in cues_for("ml-IN").trailing


def test_decomposed_and_composed_text_are_the_same_words() -> None:
    composed = "ज़रूर"  # za with its nukta
    decomposed = "ज\u093c" + "रूर"
    assert words(composed) == words(decomposed)
    assert same_words("ஆமாம்.", "ஆமாம்")


# ── the lists ──


def test_every_language_has_all_three_lists() -> None:
    assert set(INDIAN) | {"en"} == LANGUAGES
    for code in LANGUAGES:
        own = cues(frozenset({code}))
        assert own.trailing, code
        # backchannels and answers include English and Hindi, and more of the language's own
        assert own.backchannels > cues(frozenset({"en"})).backchannels or code in ("en", "hi"), code
        assert own.answers > cues(frozenset({"en"})).answers or code in ("en", "hi"), code


@pytest.mark.parametrize("code", sorted(WORD_LISTS))
def test_each_listed_word_is_one_normalised_word_in_its_script(code: str) -> None:
    native = 0
    for kind in WORD_LISTS[code]:
        for entry in kind.split():
            assert words(entry) == [entry], f"{code}: {entry!r} is not a normalised single word"
            if not entry.isascii():
                low, high = SCRIPTS[code]
                assert all(low <= ord(ch) <= high for ch in entry), f"{code}: {entry!r} mixes scripts"
                native += 1
    if code != "en":
        assert native > 0, f"{code}: no word in its native script"


@pytest.mark.parametrize(
    ("tag", "codes"),
    [
        ("en-US", {"en"}),
        ("en-GB", {"en"}),
        ("en-IN", {"en", "hi"}),
        ("multi", {"en", "hi"}),
        ("hi-IN", {"en", "hi"}),
        ("ta-IN", {"en", "hi", "ta"}),
        ("te", {"en", "hi", "te"}),
        ("KN_in", {"en", "hi", "kn"}),
        ("od-IN", {"en", "hi", "od"}),
        ("or-IN", {"en", "hi", "od"}),  # Odia's ISO 639-1 code
        ("fr-FR", {"en"}),
        ("", {"en"}),
    ],
)
def test_the_persona_language_selects_the_lists(tag: str, codes: set[str]) -> None:
    assert language_codes(tag) == codes
    assert cue_languages(tag) == codes


def test_the_lists_are_merged_once_per_language() -> None:
    assert cues_for("ta-IN") is cues_for("ta-IN")
    tamil, telugu = cues_for("ta-IN"), cues_for("te-IN")
    assert {"aamaa", "ஆமா", "haan", "uh-huh"} <= tamil.backchannels
    assert "aamaa" not in telugu.backchannels  # another language's words stay out
    assert {"kaani", "కానీ", "aur", "and"} <= telugu.trailing
    # Hindi trailing words ("to", "me", "main") would end English sentences: not for en-US
    assert "main" not in cues_for("en-US").trailing
    assert "haan" in cues_for("en-US").backchannels  # but "haan" is heard from any caller


@pytest.mark.parametrize(
    ("text", "language", "verdict"),
    [
        ("nenu repu vastanu kaani", "te-IN", Verdict.INCOMPLETE),
        ("నేను రేపు వస్తాను కానీ", "te-IN", Verdict.INCOMPLETE),
        ("నేను రేపు వస్తాను కానీ", "hi-IN", Verdict.UNSURE),  # Telugu cues for Telugu callers
        ("enakku oru table venum aana", "ta-IN", Verdict.INCOMPLETE),
        ("எனக்கு ஒரு டேபிள் வேணும் ஆனா", "ta-IN", Verdict.INCOMPLETE),
        ("naanu naale barteeni aadre", "kn-IN", Verdict.INCOMPLETE),
        ("আমি কাল আসব কিন্তু", "bn-IN", Verdict.INCOMPLETE),
        ("मी उद्या येईन पण", "mr-IN", Verdict.INCOMPLETE),
        ("હું કાલે આવીશ પણ", "gu-IN", Verdict.INCOMPLETE),
        ("ഞാൻ നാളെ വരാം പക്ഷേ", "ml-IN", Verdict.INCOMPLETE),
        ("ਮੈਂ ਕੱਲ੍ਹ ਆਵਾਂਗਾ ਪਰ", "pa-IN", Verdict.INCOMPLETE),
        ("ମୁଁ କାଲି ଆସିବି କିନ୍ତୁ", "od-IN", Verdict.INCOMPLETE),
        ("mujhe order ka status और", "ta-IN", Verdict.INCOMPLETE),  # Hindi, mixed in, for any Indian language
        ("I want to book and", "ml-IN", Verdict.INCOMPLETE),  # and English
        ("नहीं", "hi-IN", Verdict.COMPLETE),  # one word: a whole answer
        ("இல்லை", "ta-IN", Verdict.COMPLETE),
        ("avunu", "te-IN", Verdict.COMPLETE),
        ("ಹೌದು", "kn-IN", Verdict.COMPLETE),
        ("হ্যাঁ", "bn-IN", Verdict.COMPLETE),
        ("नाही", "mr-IN", Verdict.COMPLETE),
        ("ના", "gu-IN", Verdict.COMPLETE),
        ("അല്ല", "ml-IN", Verdict.COMPLETE),
        ("ਨਹੀਂ", "pa-IN", Verdict.COMPLETE),
        ("ନାହିଁ", "od-IN", Verdict.COMPLETE),
        ("ya", "en-IN", Verdict.COMPLETE),  # Indian English "yes" (and Hindi "or" before more words)
        ("illai", "en-US", Verdict.UNSURE),
    ],
)
def test_trailing_words_and_one_word_answers_per_language(text: str, language: str, verdict: Verdict) -> None:
    assert text_verdict(text, cue_languages(language)) is verdict


# ── through the turn-taker of a persona ──


def policy_for(language: str) -> TurnPolicy:
    settings = PersonaSettings.model_validate({"display_name": "Test", "language": language})
    return conversation_config(Persona("test", settings, "You are a test.", Path("test.md"))).policy


def voice(tt: TurnTaker, start: float, seconds: float, voiced: bool = True) -> list[TurnAction]:
    out: list[TurnAction] = []
    for i in range(round(seconds / 0.02)):
        out += tt.handle(Voice(round(start + i * 0.02, 6), voiced))
    return out


def agent_talking(language: str) -> TurnTaker:
    """The agent is saying its second reply; the caller has just made a sound over it."""
    tt = TurnTaker(policy_for(language))
    assert tt.start(0.0, "Hello!") == [Speak(1, "Hello!")]
    tt.handle(AudioStarted(0.1, 1))
    tt.handle(AudioDone(1.0, 1))
    voice(tt, 1.0, 0.5)
    tt.handle(Words(1.5, "question?", final=True, speech_final=True))
    tt.handle(AudioStarted(2.0, 2))
    assert voice(tt, 3.0, 0.2) == [Silence(2)]  # stop fast
    return tt


@pytest.mark.parametrize("said", ["aamaa", "ஆமா", "Aamaam.", "சரி சரி", "haan"])
def test_a_tamil_backchannel_does_not_take_the_floor_from_a_tamil_agent(said: str) -> None:
    tt = agent_talking("ta-IN")
    assert tt.handle(Words(3.3, said, final=False)) == []
    assert tt.handle(Words(3.4, said, final=True)) == [Resume(2)]  # talks on from the cut
    assert tt.agent_speaking
    # the reply plays out and nothing answers the "aamaa": the caller has no turn to reply to
    assert tt.handle(AudioDone(6.0, 2)) == []
    assert voice(tt, 6.0, 3.0, voiced=False) == []
    assert tt.floor is Floor.LISTENING


def test_the_same_word_interrupts_an_agent_that_does_not_speak_tamil() -> None:
    tt = agent_talking("en-US")
    assert tt.handle(Words(3.4, "aamaa", final=True)) == [Cancel(2)]
    assert tt.floor is Floor.LISTENING


@pytest.mark.parametrize(("language", "said"), [("te-IN", "avunu"), ("kn-IN", "ಹೌದು"), ("ml-IN", "ശരി")])
def test_other_languages_backchannels_resume_the_agent(language: str, said: str) -> None:
    tt = agent_talking(language)
    assert tt.handle(Words(3.4, said, final=True)) == [Resume(2)]


def test_a_refusal_is_not_a_backchannel() -> None:
    tt = agent_talking("ta-IN")
    assert tt.handle(Words(3.4, "இல்லை", final=True)) == [Cancel(2)]  # "no": the caller takes the floor


def listening(language: str) -> TurnTaker:
    tt = TurnTaker(policy_for(language))
    tt.start(0.0, "Hello!")
    tt.handle(AudioStarted(0.1, 1))
    tt.handle(AudioDone(1.0, 1))
    return tt


def test_a_telugu_trailing_word_holds_the_turn() -> None:
    tt = listening("te-IN")
    voice(tt, 1.0, 1.0)  # the last voiced frame at 1.98
    tt.handle(Words(2.0, "నేను రేపు వస్తాను కానీ", final=True))  # "I'll come tomorrow but"
    assert voice(tt, 2.0, 1.9, voiced=False) == []  # no reply prepared, none given
    assert voice(tt, 3.9, 0.2, voiced=False) == [Respond(2, "నేను రేపు వస్తాను కానీ")]  # 2 s: anyway


def test_without_telugu_cues_the_same_words_are_answered_sooner() -> None:
    tt = listening("hi-IN")
    voice(tt, 1.0, 1.0)
    tt.handle(Words(2.0, "నేను రేపు వస్తాను కానీ", final=True))
    actions = voice(tt, 2.0, 1.0, voiced=False)
    assert actions[0] == Respond(2, "నేను రేపు వస్తాను కానీ", held=True)
    assert actions[-1] == Commit(2)  # unsure words: 0.7 s


def test_a_one_word_hindi_answer_in_devanagari_ends_the_turn_at_once() -> None:
    tt = listening("hi-IN")
    voice(tt, 1.0, 0.4)  # the last voiced frame at 1.38
    tt.handle(Words(1.4, "नहीं", final=True))
    actions = voice(tt, 1.4, 0.3, voiced=False)
    assert actions == [Respond(2, "नहीं", held=True), Commit(2)]  # complete: 250 ms


def test_a_persona_list_replaces_the_built_in_one_word_by_word() -> None:
    settings = PersonaSettings.model_validate(
        {"display_name": "Test", "language": "ta-IN", "backchannels": ["Theek hai", "ஆமா."]}
    )
    policy = conversation_config(Persona("test", settings, "You are a test.", Path("test.md"))).policy
    assert policy.backchannels == {"theek", "hai", "ஆமா"}
    assert policy_for("ta-IN").backchannels == cues_for("ta-IN").backchannels
