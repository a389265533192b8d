"""End of turn by meaning, preemptive replies, fast recovery after short sounds: exact times."""

from __future__ import annotations

import pytest

from app.pipeline.end_of_turn import EndOfTurnPolicy, Verdict, cue_languages, resolve, text_verdict
from app.pipeline.turns import (
    Assess,
    Assessed,
    AudioDone,
    AudioStarted,
    CallOver,
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
    UtteranceEnded,
    Voice,
    Words,
)

EN, HI = cue_languages("en-US"), cue_languages("hi-IN")


@pytest.mark.parametrize(
    ("text", "languages", "verdict"),
    [
        ("What time do you open tomorrow?", EN, Verdict.COMPLETE),
        ("I'd like to book a table for", EN, Verdict.INCOMPLETE),
        ("I'd like to book a table for.", EN, Verdict.INCOMPLETE),  # the recogniser's full stop
        ("I want a table and", EN, Verdict.INCOMPLETE),
        ("What is it for?", EN, Verdict.COMPLETE),  # a question may end on a preposition
        ("Um...", EN, Verdict.INCOMPLETE),
        ("um", EN, Verdict.INCOMPLETE),
        ("So, I was thinking…", EN, Verdict.INCOMPLETE),
        ("My number is 98765", EN, Verdict.INCOMPLETE),  # a number being dictated
        ("My number is 98765 432.", EN, Verdict.INCOMPLETE),
        ("98765 432 10.", EN, Verdict.COMPLETE),  # ten digits: whole
        ("nine eight seven", EN, Verdict.INCOMPLETE),
        ("A table for 4.", EN, Verdict.COMPLETE),  # one digit is not a dictation
        ("I think tomorrow.", EN, Verdict.COMPLETE),
        ("yes", EN, Verdict.COMPLETE),
        ("Thank you.", EN, Verdict.COMPLETE),
        ("hello there", EN, Verdict.UNSURE),
        ("", EN, Verdict.UNSURE),
        ("mujhe order ka status aur", HI, Verdict.INCOMPLETE),
        ("mujhe order ka status aur", EN, Verdict.UNSURE),  # the Hindi cues are for Hindi callers
        ("mera order kab aayega?", HI, Verdict.COMPLETE),
        ("haan", HI, Verdict.COMPLETE),
    ],
)
def test_text_verdicts(text: str, languages: frozenset[str], verdict: Verdict) -> None:
    assert text_verdict(text, languages) is verdict


def test_cue_languages_follow_the_recogniser_language() -> None:
    assert cue_languages("en-US") == {"en"}
    assert cue_languages("en-IN") == cue_languages("hi") == cue_languages("multi") == {"en", "hi"}


def test_the_model_settles_only_unsure_words() -> None:
    assert resolve(Verdict.UNSURE, 0.8, 0.5) is Verdict.COMPLETE
    assert resolve(Verdict.UNSURE, 0.2, 0.5) is Verdict.INCOMPLETE
    assert resolve(Verdict.UNSURE, None, 0.5) is Verdict.UNSURE
    assert resolve(Verdict.INCOMPLETE, 0.99, 0.5) is Verdict.INCOMPLETE
    assert resolve(Verdict.COMPLETE, 0.01, 0.5) is Verdict.COMPLETE


# ── the TurnTaker, frame by frame ──


def frames(tt: TurnTaker, start: float, seconds: float, voiced: bool) -> list[tuple[float, TurnAction]]:
    """Feed 20 ms VAD verdicts; each action with the time of the frame that produced it."""
    out: list[tuple[float, TurnAction]] = []
    for i in range(round(seconds / 0.02)):
        t = round(start + i * 0.02, 6)
        out += [(t, a) for a in tt.handle(Voice(t, voiced))]
    return out


def listening(policy: TurnPolicy | None = None) -> TurnTaker:
    tt = TurnTaker(policy or TurnPolicy())
    assert tt.start(0.0, "Hello!") == [Speak(1, "Hello!")]
    tt.handle(AudioStarted(0.1, 1))
    tt.handle(AudioDone(1.0, 1))
    assert tt.floor is Floor.LISTENING
    return tt


def test_a_complete_question_is_prepared_at_150_ms_and_answered_at_250_ms() -> None:
    tt = listening()
    frames(tt, 1.0, 1.0, voiced=True)  # the last voiced frame at 1.98
    assert tt.handle(Words(2.0, "What time do you open?", final=True)) == []  # 20 ms: too soon
    actions = frames(tt, 2.0, 0.4, voiced=False)
    assert actions == [
        (2.14, Respond(2, "What time do you open?", held=True)),  # 160 ms ≥ 150 ms of silence
        (2.24, Commit(2)),  # 260 ms ≥ 250 ms
    ]
    assert tt.floor is Floor.THINKING


def test_an_unfinished_phrase_waits_through_a_pause_and_joins_the_rest() -> None:
    tt = listening()
    frames(tt, 1.0, 1.0, voiced=True)
    tt.handle(Words(2.1, "I'd like to book a table for", final=True, speech_final=True))
    assert frames(tt, 2.0, 1.5, voiced=False) == []  # 1.5 s of thought: nothing prepared, no reply
    frames(tt, 3.5, 0.6, voiced=True)  # "four people", the last voiced frame at 4.08
    # complete words and the recogniser's end of speech: the answer at once
    assert tt.handle(Words(4.2, "four people.", final=True, speech_final=True)) == [
        Respond(2, "I'd like to book a table for four people.")
    ]
    assert tt.handle(CallOver(5.0)) == []


def test_an_unfinished_phrase_gets_an_answer_after_two_seconds_anyway() -> None:
    tt = listening()
    frames(tt, 1.0, 1.0, voiced=True)
    tt.handle(Words(2.1, "I'd like to book a table for", final=True))
    actions = frames(tt, 2.0, 2.2, voiced=False)
    assert actions == [(3.98, Respond(2, "I'd like to book a table for"))]  # 2.0 s after 1.98


def test_the_caller_going_on_discards_the_prepared_reply() -> None:
    tt = listening(TurnPolicy(eot=EndOfTurnPolicy(unsure_s=0.7)))
    frames(tt, 1.0, 1.0, voiced=True)
    tt.handle(Words(2.05, "I need a taxi", final=True))  # unsure: prepared, not yet the answer
    assert frames(tt, 2.0, 0.3, voiced=False) == [(2.14, Respond(2, "I need a taxi", held=True))]
    assert tt.held == 2
    frames(tt, 2.3, 0.5, voiced=True)  # voice alone does not discard it
    assert tt.handle(Words(2.6, "to the airport", final=False)) == [Cancel(2)]
    assert tt.held == 0
    tt.handle(Words(2.9, "to the airport.", final=True))
    actions = frames(tt, 2.8, 0.5, voiced=False)  # the last voiced frame at 2.78
    assert actions == [
        (2.94, Respond(3, "I need a taxi to the airport.", held=True)),
        (3.04, Commit(3)),
    ]


def test_different_final_words_replace_a_reply_prepared_on_interim_words() -> None:
    tt = listening()
    frames(tt, 1.0, 1.0, voiced=True)
    tt.handle(Words(1.9, "what time do you", final=False))
    assert frames(tt, 2.0, 0.16, voiced=False) == [(2.14, Respond(2, "what time do you", held=True))]
    assert tt.handle(Words(2.2, "What time do you close?", final=True)) == [
        Cancel(2),
        Respond(3, "What time do you close?", held=True),
    ]
    assert frames(tt, 2.2, 0.06, voiced=False) == [(2.24, Commit(3))]


def test_the_same_final_words_commit_a_reply_prepared_on_interim_words() -> None:
    tt = listening()
    frames(tt, 1.0, 1.0, voiced=True)
    tt.handle(Words(1.9, "what time do you open", final=False))
    assert frames(tt, 2.0, 0.16, voiced=False) == [(2.14, Respond(2, "what time do you open", held=True))]
    # no verdict from words alone, but the recogniser's end of speech ends it: the same words
    assert tt.handle(Words(2.3, "What time do you open", final=True, speech_final=True)) == [Commit(2)]


def test_an_unsure_turn_asks_the_audio_model_which_settles_it() -> None:
    tt = listening(TurnPolicy(audio_model=True))
    frames(tt, 1.0, 1.0, voiced=True)
    # the recogniser ended the speech, but the model is asked first; the reply is prepared
    assert tt.handle(Words(2.05, "hello there", final=True, speech_final=True)) == [
        Assess(1),
        Respond(2, "hello there", held=True),
    ]
    assert frames(tt, 2.06, 0.1, voiced=False) == []
    assert tt.handle(Assessed(2.2, 1, complete=0.9)) == [Commit(2)]


def test_the_model_saying_incomplete_makes_the_agent_wait_longer_and_asks_again() -> None:
    tt = listening(TurnPolicy(audio_model=True, eot=EndOfTurnPolicy(model_incomplete_s=2.0)))
    frames(tt, 1.0, 1.0, voiced=True)  # the last voiced frame at 1.98
    tt.handle(Words(2.05, "hello there", final=True, speech_final=True))  # asked at 70 ms
    frames(tt, 2.0, 0.1, voiced=False)
    assert tt.handle(Assessed(2.1, 1, complete=0.1)) == []  # prepared, kept in case
    # asked again 0.4 s later (silence 0.48), and every 0.4 s while it says "not finished"
    assert frames(tt, 2.1, 0.4, voiced=False) == [(2.46, Assess(2))]
    assert tt.handle(Assessed(2.5, 2, complete=0.2)) == []
    assert frames(tt, 2.5, 0.4, voiced=False) == [(2.86, Assess(3))]
    assert tt.handle(Assessed(2.9, 3, complete=0.3)) == []
    actions = frames(tt, 2.9, 1.1, voiced=False)
    # no answer to the 4th: no 5th; the turn ends 2 s after 1.98
    assert actions == [(3.26, Assess(4)), (3.98, Commit(2))]


def test_the_model_s_not_finished_alone_waits_one_second() -> None:
    tt = listening(TurnPolicy(audio_model=True))
    frames(tt, 1.0, 1.0, voiced=True)
    tt.handle(Words(2.05, "hello there", final=True, speech_final=True))
    frames(tt, 2.0, 0.1, voiced=False)
    assert tt.handle(Assessed(2.1, 1, complete=0.1)) == []
    actions = frames(tt, 2.1, 1.0, voiced=False)
    # words that trail off wait 2 s; the model's "not finished" alone, 1 s after 1.98
    assert actions == [(2.46, Assess(2)), (2.98, Commit(2))]


def test_the_model_changing_its_mind_ends_the_turn_at_once() -> None:
    tt = listening(TurnPolicy(audio_model=True))
    frames(tt, 1.0, 1.0, voiced=True)
    tt.handle(Words(2.05, "hello there", final=True, speech_final=True))
    tt.handle(Assessed(2.1, 1, complete=0.1))
    assert frames(tt, 2.1, 0.4, voiced=False) == [(2.46, Assess(2))]
    assert tt.handle(Assessed(2.5, 2, complete=0.8)) == [Commit(2)]


def test_no_answer_from_the_model_falls_back_to_the_recogniser() -> None:
    tt = listening(TurnPolicy(audio_model=True))
    frames(tt, 1.0, 1.0, voiced=True)
    tt.handle(Words(2.05, "hello there", final=True, speech_final=True))
    frames(tt, 2.0, 0.1, voiced=False)
    assert tt.handle(Assessed(2.1, 1, complete=None)) == [Commit(2)]


def test_a_stale_model_answer_is_ignored() -> None:
    tt = listening(TurnPolicy(audio_model=True))
    frames(tt, 1.0, 1.0, voiced=True)
    tt.handle(Words(2.05, "hello there", final=True))
    frames(tt, 2.0, 0.16, voiced=False)  # Assess(1)
    frames(tt, 2.16, 0.2, voiced=True)  # the caller goes on: that question is void
    assert tt.handle(Assessed(2.4, 1, complete=0.9)) == []


# ── short sounds over the agent ──


def speaking_turn(policy: TurnPolicy | None = None) -> TurnTaker:
    tt = listening(policy)
    frames(tt, 1.0, 0.5, voiced=True)
    frames(tt, 1.5, 0.1, voiced=False)
    tt.handle(Words(1.6, "Tell me about the menu?", final=True, speech_final=True))
    frames(tt, 1.6, 0.2, voiced=False)
    assert tt.floor is Floor.THINKING
    tt.handle(AudioStarted(2.0, 2))
    return tt


def test_a_backchannel_final_resumes_at_once() -> None:
    tt = speaking_turn()
    assert frames(tt, 3.0, 0.3, voiced=True)[0] == (3.06, Silence(2))
    assert tt.handle(Words(3.35, "uh-huh", final=False)) == []
    assert tt.handle(Words(3.45, "uh-huh", final=True)) == [Resume(2)]


def test_a_wordless_sound_resumes_300_ms_after_it_stopped_with_interim_words() -> None:
    tt = speaking_turn()
    frames(tt, 3.0, 0.2, voiced=True)  # a cough, the last voiced frame at 3.18
    assert frames(tt, 3.2, 0.4, voiced=False) == [(3.48, Resume(2))]


def test_real_words_soon_after_such_a_resume_still_interrupt() -> None:
    tt = speaking_turn()
    frames(tt, 3.0, 0.2, voiced=True)
    frames(tt, 3.2, 0.3, voiced=False)  # resumed at 3.48
    # the reply is abandoned; the words were followed by 0.7 s of silence: the caller's turn
    assert tt.handle(Words(3.9, "wait, stop", final=True)) == [Cancel(2), Respond(3, "wait, stop")]


def test_words_long_after_a_resume_are_only_heard_over_the_agent() -> None:
    tt = speaking_turn()
    frames(tt, 3.0, 0.2, voiced=True)
    frames(tt, 3.2, 0.3, voiced=False)  # resumed at 3.48
    assert tt.handle(Words(4.6, "wait, stop", final=True)) == []  # 1.12 s later
    assert tt.agent_speaking


def test_without_interim_words_the_recogniser_s_empty_utterance_end_resumes() -> None:
    tt = speaking_turn(TurnPolicy(interim_words=False))
    frames(tt, 3.0, 0.2, voiced=True)
    assert frames(tt, 3.2, 0.4, voiced=False) == []  # no words can have come yet
    assert tt.handle(UtteranceEnded(3.65)) == [Resume(2)]  # Whisper found nothing in it


def test_without_interim_words_a_backchannel_resumes_and_real_words_cancel() -> None:
    tt = speaking_turn(TurnPolicy(interim_words=False))
    frames(tt, 3.0, 0.3, voiced=True)
    frames(tt, 3.3, 0.3, voiced=False)
    assert tt.handle(Words(3.65, "Okay.", final=True, speech_final=True)) == [Resume(2)]
    tt2 = speaking_turn(TurnPolicy(interim_words=False))
    frames(tt2, 3.0, 0.3, voiced=True)
    frames(tt2, 3.3, 0.3, voiced=False)
    # Whisper ends every stretch with a full stop: unsure words, prepared, answered after 0.7 s
    assert tt2.handle(Words(3.65, "Stop right there.", final=True, speech_final=True)) == [
        Cancel(2),
        Respond(3, "Stop right there.", held=True),
    ]
    assert tt2.handle(UtteranceEnded(3.66)) == []  # the words were real: no resume
    assert frames(tt2, 3.66, 0.4, voiced=False) == [(3.98, Commit(3))]
