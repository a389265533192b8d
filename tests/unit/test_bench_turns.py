"""``bench.turns``'s arithmetic on hand-made timelines: reply latency, replies inside pauses,
cuts, dead air, yielding, and the targets' verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from app.simulator.recording import CallRecording, TimelineEvent
from bench.turns_measure import (
    CallFigures,
    Reply,
    burst_starts,
    clears,
    over_figures,
    reply_figures,
    speech_segments,
)
from bench.turns_report import summarise, targets
from bench.turns_scripts import noise_burst, trim


def frames(start: float, end: float) -> list[float]:
    """playAudio arrivals every 20 ms from ``start`` to before ``end``."""
    return [round(start + 0.02 * i, 6) for i in range(round((end - start) / 0.02))]


def test_segments_and_clears_come_from_the_fake_vobiz_timeline() -> None:
    rec = CallRecording("c")
    rec.events = [
        TimelineEvent(1.0, "caller_speech_start", {"text": "one"}),
        TimelineEvent(2.0, "caller_speech_end"),
        TimelineEvent(2.5, "clear_audio"),
        TimelineEvent(3.0, "caller_speech_start", {"text": "two"}),
        TimelineEvent(3.4, "caller_speech_end"),
    ]
    assert speech_segments(rec) == [(1.0, 2.0), (3.0, 3.4)]
    assert clears(rec) == [2.5]


def test_reply_latency_runs_from_the_last_part_to_the_next_burst() -> None:
    plays = frames(0.2, 1.0) + frames(5.3, 6.0)  # the greeting, then the reply
    found = reply_figures([(2.0, 4.0), (4.5, 5.0)], plays)
    assert found.latency_s == pytest.approx(0.3)
    assert (found.pauses, found.replies_in_pauses) == (1, 0)


def test_a_reply_starting_inside_a_pause_is_counted() -> None:
    # answered 0.2 s into a 1 s pause; the caller goes on, then the real answer after 0.25 s
    plays = frames(4.2, 4.6) + frames(6.25, 7.0)
    found = reply_figures([(2.0, 4.0), (5.0, 6.0)], plays)
    assert found.replies_in_pauses == 1
    assert found.latency_s == pytest.approx(0.25)


def test_a_burst_starts_after_a_gap_of_300_ms() -> None:
    assert burst_starts([1.0, 1.02, 1.3, 1.62, 1.64]) == [1.0, 1.62]


def test_no_cut_means_no_dead_air_and_no_false_cut() -> None:
    found = over_figures((3.0, 3.4), frames(1.0, 8.0), [], [Reply("long", False)], interruption=False)
    assert (found.cuts, found.dead_air_s, found.false_cut, found.reaction_s) == (0, 0.0, False, None)


def test_dead_air_runs_from_the_end_of_the_sound_to_the_audio_resuming() -> None:
    plays = frames(1.0, 3.06) + frames(4.6, 8.0)  # cut at 3.07, back 1.2 s after the sound ended
    found = over_figures((3.0, 3.4), plays, [3.07], [Reply("long", False)], interruption=False)
    assert found.cuts == 1
    assert found.reaction_s == pytest.approx(0.07)
    assert found.dead_air_s == pytest.approx(1.2)
    assert found.false_cut is False


def test_audio_back_before_the_sound_ends_is_no_dead_air() -> None:
    plays = frames(1.0, 3.06) + frames(3.3, 8.0)
    found = over_figures((3.0, 3.4), plays, [3.07], [Reply("long", False)], interruption=False)
    assert found.dead_air_s == 0.0


def test_an_abandoned_answer_is_a_false_cut() -> None:
    plays = frames(1.0, 3.06) + frames(4.0, 5.0)  # a new reply, the answer marked interrupted
    replies = [Reply("We bake", True), Reply("You said okay.", False)]
    found = over_figures((3.0, 3.4), plays, [3.07], replies, interruption=False)
    assert found.false_cut is True
    assert found.dead_air_s == pytest.approx(0.6)


def test_the_agent_yields_to_a_real_interruption() -> None:
    plays = frames(1.0, 3.06) + frames(5.3, 6.0)  # silent until the caller finished at 5.0
    replies = [Reply("We bake", True), Reply("You said wait.", False)]
    found = over_figures((3.0, 5.0), plays, [3.06], replies, interruption=True)
    assert found.yielded is True
    assert found.reaction_s == pytest.approx(0.06)
    assert found.latency_s == pytest.approx(0.3)
    assert found.dead_air_s is None


def test_resuming_over_an_interruption_or_talking_during_it_is_not_yielding() -> None:
    resumed = over_figures((3.0, 5.0), frames(1.0, 3.06) + frames(4.3, 9.0), [3.06],
                           [Reply("We bake …", False)], interruption=True)  # fmt: skip
    talked = over_figures((3.0, 5.0), frames(1.0, 3.06) + frames(4.3, 4.6) + frames(5.5, 6.0), [3.06],
                          [Reply("We bake", True), Reply("Sorry?", False)], interruption=True)  # fmt: skip
    uncut = over_figures((3.0, 5.0), frames(1.0, 9.0), [], [Reply("We bake …", False)], interruption=True)
    assert (resumed.yielded, talked.yielded, uncut.yielded) == (False, False, False)


def test_targets_are_judged_from_the_summaries() -> None:
    reply = [CallFigures(latency_s=s, pauses=1, replies_played=1, llm_requests=2) for s in (0.2, 0.25, 0.5)]
    cut = CallFigures(cuts=1, dead_air_s=0.3, false_cut=False, reaction_s=0.06)
    uncut = CallFigures(cuts=0, dead_air_s=0.0, false_cut=False)
    never_back = CallFigures(cuts=1, dead_air_s=None, false_cut=True, reaction_s=0.06)
    rows = {
        "a": summarise(reply),
        "b0.5": summarise([CallFigures(pauses=1, replies_in_pauses=1)]),
        "e": summarise([cut, uncut]),
        "f": summarise([cut, never_back]),
        "g": summarise([CallFigures(cuts=1, reaction_s=0.1, yielded=True, latency_s=0.2)]),
    }
    assert rows["a"]["latency_ms"]["p50"] == pytest.approx(250.0)
    assert rows["a"]["wasted_llm"] == 3
    verdicts = {t["target"].split(",")[0]: t["met"] for t in targets({"zero": rows})}
    assert verdicts == {
        "complete question": False,  # p95 475 ms > 450 ms
        "unfinished phrase + pause ≤ 1.2 s (0.5": False,
        "backchannel over the agent": True,
        "noise over the agent": False,  # one call never got its answer back
        "real interruption": True,
    }


def test_caller_audio_is_trimmed_to_its_sound_and_noise_is_noise_like() -> None:
    pcm = np.concatenate([np.zeros(100, np.int16), np.full(50, 5000, np.int16), np.zeros(70, np.int16)])
    assert len(trim(pcm)) == 50
    burst = noise_burst(0.2, seed=1)
    assert len(burst) == 3200
    assert int(np.abs(burst).max()) == 14000
    assert np.array_equal(burst, noise_burst(0.2, seed=1))
