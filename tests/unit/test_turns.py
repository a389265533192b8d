"""TurnTaker scenarios: events in, actions out, with exact times."""

from __future__ import annotations

from app.pipeline.end_of_turn import EndOfTurnPolicy
from app.pipeline.turns import (
    AudioDone,
    AudioStarted,
    Cancel,
    EndRequested,
    Floor,
    HangUp,
    ReplyEmpty,
    Respond,
    Resume,
    Silence,
    Speak,
    Tick,
    TurnAction,
    TurnPolicy,
    TurnTaker,
    UtteranceEnded,
    Voice,
    Words,
)

NOT_PREEMPTIVE = TurnPolicy(eot=EndOfTurnPolicy(preemptive=False))


def voice(tt: TurnTaker, start: float, seconds: float, voiced: bool = True) -> list[TurnAction]:
    out: list[TurnAction] = []
    for i in range(round(seconds / 0.02)):
        out += tt.handle(Voice(round(start + i * 0.02, 6), voiced))
    return out


def greeted(policy: TurnPolicy | None = None) -> TurnTaker:
    tt = TurnTaker(policy or TurnPolicy())
    assert tt.start(0.0, "Hello!") == [Speak(1, "Hello!")]
    tt.handle(AudioStarted(0.1, 1))
    assert tt.agent_speaking
    tt.handle(AudioDone(1.0, 1))
    assert tt.floor is Floor.LISTENING
    return tt


def test_a_question_gets_a_reply_on_speech_final() -> None:
    tt = greeted()
    assert voice(tt, 1.0, 1.0) == []
    assert tt.handle(Words(1.8, "what time", final=False)) == []
    assert tt.handle(Words(2.0, "What time do you open?", final=True, speech_final=True)) == [
        Respond(2, "What time do you open?")
    ]
    assert tt.floor is Floor.THINKING


def test_turn_ends_on_vad_silence_when_no_endpoint_signal_comes() -> None:
    tt = greeted(NOT_PREEMPTIVE)
    voice(tt, 1.0, 0.5)  # last voiced frame at 1.48
    tt.handle(Words(1.5, "hello there", final=True))  # neither complete nor trailing off: unsure
    assert voice(tt, 1.5, 0.68, voiced=False) == []  # up to 2.16: < 0.7 s of silence
    assert voice(tt, 2.18, 0.02, voiced=False) == [Respond(2, "hello there")]


def test_utterance_end_closes_the_turn_and_joins_finals() -> None:
    tt = greeted()
    voice(tt, 1.0, 1.0)
    tt.handle(Words(1.5, "I want", final=True))
    tt.handle(Words(1.9, "a table for two", final=True))
    assert tt.handle(UtteranceEnded(2.0)) == [Respond(2, "I want a table for two")]


def speaking(tt: TurnTaker, turn: int, t: float) -> None:
    tt.handle(AudioStarted(t, turn))
    assert tt.agent_speaking


def test_barge_in_silences_at_min_speech_then_cancels_on_words() -> None:
    tt = greeted()
    tt.handle(Words(1.5, "question", final=True, speech_final=True))
    speaking(tt, 2, 2.0)
    actions = voice(tt, 3.0, 0.1)
    assert actions == [Silence(2)]  # at the 4th voiced frame (80 ms)
    assert (tt.floor, tt.agent_speaking) == (Floor.PAUSED, False)
    assert tt.handle(Words(3.3, "wait, no", final=False)) == [Cancel(2)]
    assert tt.floor is Floor.LISTENING
    assert tt.handle(Words(3.6, "Wait, no, for three people.", final=True, speech_final=True)) == [
        Respond(3, "Wait, no, for three people.")
    ]


def test_backchannel_resumes_the_agent() -> None:
    tt = greeted()
    tt.handle(Words(1.5, "question", final=True, speech_final=True))
    speaking(tt, 2, 2.0)
    assert voice(tt, 3.0, 0.3) == [Silence(2)]
    assert tt.handle(Words(3.4, "uh-huh", final=False)) == []
    assert tt.handle(Words(3.5, "Uh-huh.", final=True)) == [Resume(2)]
    assert tt.agent_speaking


def test_backchannel_without_barge_in_changes_nothing() -> None:
    tt = greeted()
    tt.handle(Words(1.5, "question", final=True, speech_final=True))
    speaking(tt, 2, 2.0)
    assert voice(tt, 3.0, 0.06) == []  # 60 ms: under the minimum
    assert tt.handle(Words(3.2, "haan", final=True)) == []
    assert tt.agent_speaking


def test_noise_with_no_words_is_a_false_interruption() -> None:
    tt = greeted()
    tt.handle(Words(1.5, "question", final=True, speech_final=True))
    speaking(tt, 2, 2.0)
    assert voice(tt, 3.0, 0.2) == [Silence(2)]  # last voiced frame at 3.18
    assert voice(tt, 3.2, 0.28, voiced=False) == []
    assert voice(tt, 3.48, 0.02, voiced=False) == [Resume(2)]  # 0.3 s after the voice stopped
    assert tt.agent_speaking


def test_noise_with_no_words_resumes_after_1_2_s_with_a_recogniser_without_interim_words() -> None:
    tt = greeted(TurnPolicy(interim_words=False))
    tt.handle(Words(1.5, "question", final=True, speech_final=True))
    speaking(tt, 2, 2.0)
    assert voice(tt, 3.0, 0.2) == [Silence(2)]
    assert voice(tt, 3.2, 1.0, voiced=False) == []
    assert voice(tt, 4.2, 0.4, voiced=False) == [Resume(2)]  # 1.2 s after the voice stopped


def test_greeting_can_be_made_uninterruptible() -> None:
    tt = TurnTaker(TurnPolicy(greeting_interruptible=False))
    tt.start(0.0, "Welcome to the clinic.")
    speaking(tt, 1, 0.1)
    assert voice(tt, 0.5, 0.5) == []
    assert tt.agent_speaking


def test_caller_keeps_talking_before_the_reply_is_audible() -> None:
    tt = greeted()
    assert tt.handle(Words(1.5, "I need a table", final=True, speech_final=True)) == [
        Respond(2, "I need a table")
    ]
    assert tt.handle(Words(1.8, "for four tonight", final=True, speech_final=True)) == [
        Cancel(2),
        Respond(3, "I need a table for four tonight"),
    ]


def test_idle_reprompts_then_hangs_up() -> None:
    policy = TurnPolicy(idle_reprompt_s=5.0, max_reprompts=2)
    tt = greeted(policy)
    assert tt.handle(Tick(5.9)) == []
    assert tt.handle(Tick(6.0)) == [Speak(2, policy.reprompt)]
    tt.handle(AudioStarted(6.1, 2))
    tt.handle(AudioDone(7.0, 2))
    assert tt.handle(Tick(12.0)) == [Speak(3, policy.reprompt)]
    tt.handle(AudioDone(13.0, 3))
    assert tt.handle(Tick(18.0)) == [Speak(4, policy.idle_goodbye)]
    tt.handle(AudioStarted(18.1, 4))
    assert voice(tt, 18.5, 0.2) == []  # the goodbye is not interrupted
    assert tt.handle(AudioDone(20.0, 4)) == [HangUp("caller silent")]
    assert tt.floor is Floor.ENDED
    assert tt.handle(Tick(30.0)) == []


def test_speech_resets_the_idle_count() -> None:
    policy = TurnPolicy(idle_reprompt_s=5.0, max_reprompts=1)
    tt = greeted(policy)
    assert tt.handle(Tick(6.0)) == [Speak(2, policy.reprompt)]
    tt.handle(AudioDone(7.0, 2))
    tt.handle(Words(8.0, "yes I'm here", final=True, speech_final=True))
    tt.handle(AudioDone(9.0, 3))
    assert tt.handle(Tick(14.0)) == [Speak(4, policy.reprompt)]  # a reprompt again, not goodbye


def test_max_duration_cancels_and_closes() -> None:
    policy = TurnPolicy(max_duration_s=60.0)
    tt = greeted(policy)
    tt.handle(Words(50.0, "tell me everything", final=True, speech_final=True))
    speaking(tt, 2, 51.0)
    assert tt.handle(Tick(60.0)) == [Cancel(2), Speak(3, policy.closing_line)]
    tt.handle(AudioStarted(60.2, 3))
    assert tt.handle(AudioDone(64.0, 3)) == [HangUp("maximum call duration")]


def test_end_call_hangs_up_after_the_goodbye_played() -> None:
    tt = greeted()
    tt.handle(Words(1.5, "that's all, bye", final=True, speech_final=True))
    speaking(tt, 2, 2.0)
    assert tt.handle(EndRequested(2.1, "caller said goodbye")) == []
    assert voice(tt, 2.5, 0.3) == []  # the goodbye is not cut
    assert tt.handle(AudioDone(3.0, 2)) == [HangUp("caller said goodbye")]


def test_closing_says_the_agent_hangs_up_after_this_reply() -> None:
    tt = greeted()
    tt.handle(Words(1.5, "bye", final=True, speech_final=True))
    assert not tt.closing
    tt.handle(EndRequested(1.6, "done"))
    assert tt.closing
    assert tt.floor is Floor.THINKING  # the closing reply still has to be heard


def test_end_call_with_no_audio_hangs_up_at_once() -> None:
    tt = greeted()
    tt.handle(Words(1.5, "bye", final=True, speech_final=True))
    tt.handle(EndRequested(1.6, "done"))
    assert tt.handle(ReplyEmpty(1.7, 2)) == [HangUp("done")]


def test_stale_audio_events_of_an_old_turn_are_ignored() -> None:
    tt = greeted()
    tt.handle(Words(1.5, "one", final=True, speech_final=True))
    tt.handle(Words(1.7, "and two more", final=True, speech_final=True))  # cancels turn 2
    assert tt.turn == 3
    assert tt.handle(AudioStarted(1.8, 2)) == []
    assert tt.floor is Floor.THINKING


def test_wordless_voiced_noise_resumes_after_the_maximum_pause() -> None:
    tt = greeted(TurnPolicy(max_pause_s=1.8))
    tt.handle(Words(1.5, "question", final=True, speech_final=True))
    speaking(tt, 2, 2.0)
    assert voice(tt, 3.0, 0.08) == [Silence(2)]  # paused at the 4th voiced frame, t = 3.06
    assert voice(tt, 3.08, 1.78) == []  # still voiced, no words: deciding (to t = 4.84)
    assert voice(tt, 4.86, 0.02) == [Resume(2)]  # 1.8 s after the pause: the agent talks on
    assert tt.agent_speaking
    assert voice(tt, 4.88, 1.0) == []  # the same noise does not cut it again
    assert voice(tt, 5.88, 1.2, voiced=False) == []
    assert voice(tt, 7.08, 0.1) == [Silence(2)]  # once the noise stopped, voice barges in again


def test_words_still_interrupt_through_the_noise() -> None:
    tt = greeted(TurnPolicy(max_pause_s=1.8))
    tt.handle(Words(1.5, "question", final=True, speech_final=True))
    speaking(tt, 2, 2.0)
    voice(tt, 3.0, 2.0)  # paused at 3.06, resumed at 4.86 over the noise
    assert tt.agent_speaking
    assert tt.handle(Words(5.1, "uh-huh", final=True)) == []  # a backchannel does not
    assert tt.handle(Words(5.2, "hold on please", final=False)) == [Cancel(2)]
    assert tt.floor is Floor.LISTENING


def test_words_during_the_pause_restart_the_maximum_pause() -> None:
    tt = greeted(TurnPolicy(max_pause_s=1.8, min_words=3))
    tt.handle(Words(1.5, "question", final=True, speech_final=True))
    speaking(tt, 2, 2.0)
    assert voice(tt, 3.0, 0.08) == [Silence(2)]
    assert tt.handle(Words(4.0, "wait", final=False)) == []  # words, not yet enough to decide
    assert voice(tt, 3.08, 2.7) == []  # 1.8 s after the pause has passed, but not after the words
    assert voice(tt, 5.78, 0.04) == [Resume(2)]  # 1.8 s after them


def test_a_tick_ends_a_pause_when_no_audio_arrives() -> None:
    tt = greeted()
    tt.handle(Words(1.5, "question", final=True, speech_final=True))
    speaking(tt, 2, 2.0)
    assert voice(tt, 3.0, 0.08) == [Silence(2)]
    pause = tt.policy.max_pause_s
    assert pause is not None
    assert tt.handle(Tick(3.06 + pause - 0.1)) == []
    assert tt.handle(Tick(3.06 + pause)) == [Resume(2)]


def test_without_interim_words_a_pause_waits_for_the_words() -> None:
    tt = greeted(TurnPolicy(max_pause_s=None))
    tt.handle(Words(1.5, "question", final=True, speech_final=True))
    speaking(tt, 2, 2.0)
    assert voice(tt, 3.0, 0.08) == [Silence(2)]
    assert voice(tt, 3.1, 5.0) == []  # five seconds of voice, no words yet: still quiet
    assert tt.handle(Tick(9.0)) == []


def test_respond_carries_when_the_final_transcript_arrived() -> None:
    tt = greeted(NOT_PREEMPTIVE)
    voice(tt, 1.0, 0.5)
    tt.handle(Words(1.6, "hello there", final=True))  # no endpoint signal: the VAD ends the turn
    actions = voice(tt, 1.5, 0.8, voiced=False)
    assert actions == [Respond(2, "hello there")]
    respond = actions[0]
    assert isinstance(respond, Respond)
    assert respond.final_at == 1.6
