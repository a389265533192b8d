"""The figures of ``bench.turns``, from one call's timeline as the fake Vobiz saw it (pure).

Times are seconds since the dial (``CallRecording`` event times). A caller's line is
``(start, end)``: ``start`` is when the frame holding its first sample left the fake Vobiz,
``end`` when the frame holding its last sample did (the lines are trimmed to their sound, so
that is the last sample of the caller's speech, as a phone sends a frame once it is captured).
``plays`` are the arrival times of the app's ``playAudio`` frames at the fake Vobiz.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from app.simulator.recording import CallRecording

BURST_GAP_S = 0.3  # a playAudio this long after the previous one starts a new burst of audio


@dataclass(frozen=True, slots=True)
class Reply:
    """What the agent said after the greeting, as its transcript has it."""

    text: str
    interrupted: bool


@dataclass(frozen=True, slots=True)
class CallFigures:
    latency_s: float | None = None  # end of the caller's speech → first playAudio of the reply
    pauses: int = 0  # scripted pauses
    replies_in_pauses: int = 0  # pauses in which a playAudio arrived
    cuts: int = 0  # clearAudio from the start of the sound over the agent on
    reaction_s: float | None = None  # first frame of the sound over the agent → clearAudio back
    dead_air_s: float | None = None  # end of the sound → agent audio again (0: never cut)
    false_cut: bool | None = None  # backchannel/noise: cut and the answer not resumed
    yielded: bool | None = None  # interruption: cut, not resumed, silent until the caller finished
    llm_requests: int = 0
    replies_played: int = 0
    preemptive_wasted: int | None = None  # the Conversation's own count, where it keeps one
    off_script: bool = False  # the sound fell on something other than the long answer


def speech_segments(rec: CallRecording) -> list[tuple[float, float]]:
    """The caller's lines as (start, end), in order."""
    starts = [e.t for e in rec.events if e.kind == "caller_speech_start"]
    ends = [e.t for e in rec.events if e.kind == "caller_speech_end"]
    return list(zip(starts, ends, strict=False))


def clears(rec: CallRecording) -> list[float]:
    return [e.t for e in rec.events if e.kind == "clear_audio"]


def burst_starts(plays: Sequence[float], gap: float = BURST_GAP_S) -> list[float]:
    """The playAudio arrivals that follow ``gap`` or more without one (the first included)."""
    return [t for i, t in enumerate(plays) if i == 0 or t - plays[i - 1] >= gap]


def first_after(times: Sequence[float], t: float) -> float | None:
    """The first of the sorted ``times`` at or after ``t``."""
    i = bisect.bisect_left(times, t)
    return times[i] if i < len(times) else None


def reply_figures(segments: Sequence[tuple[float, float]], plays: Sequence[float]) -> CallFigures:
    """A caller who speaks (in parts, with pauses) and waits for the answer: the reply latency
    from the end of the last part to the first burst of playAudio starting at or after it, and
    the pauses between parts in which any playAudio arrived (a reply started inside the pause)."""
    if not segments:
        return CallFigures()
    end = segments[-1][1]
    start = first_after(burst_starts(plays), end)
    windows = [(segments[i][1], segments[i + 1][0]) for i in range(len(segments) - 1)]
    inside = sum(1 for lo, hi in windows if (t := first_after(plays, lo)) is not None and t < hi)
    return CallFigures(
        latency_s=None if start is None else start - end, pauses=len(windows), replies_in_pauses=inside
    )


def over_figures(
    sound: tuple[float, float],
    plays: Sequence[float],
    cleared: Sequence[float],
    replies: Sequence[Reply],
    *,
    interruption: bool,
) -> CallFigures:
    """A sound over the agent's answer, ``sound`` = (start, end) (the caller's last line).
    (For an interruption, ``latency_s`` is the sound's end → the first playAudio after the cut.)

    Cut: a clearAudio at or after the sound's start. Reaction: the sound's start → the first
    such clearAudio. Dead air: the sound's end → the first playAudio after that clearAudio (0
    when it came before the sound ended; 0 and no cut when nothing was cleared). Resumed: the
    answer the sound fell on (the first reply) ended uninterrupted and no other reply followed.
    A backchannel or noise (``interruption`` False) is a false cut when it cut the answer and the
    answer was not resumed; an interruption is yielded to when it cut the answer, no playAudio
    came between the cut and the sound's end, and the answer was not resumed."""
    on, off = sound
    cuts = [t for t in cleared if t >= on]
    resumed = len(replies) == 1 and not replies[0].interrupted
    if not cuts:
        return CallFigures(
            cuts=0,
            dead_air_s=0.0,
            false_cut=None if interruption else False,
            yielded=False if interruption else None,
        )
    cut = cuts[0]
    back = first_after(plays, cut + 1e-9)
    gap = None if back is None else max(0.0, back - off)
    silent_until_done = back is None or back >= off
    return CallFigures(
        latency_s=gap if interruption else None,  # the reply to the interruption
        cuts=len(cuts),
        reaction_s=cut - on,
        dead_air_s=None if interruption else gap,
        false_cut=None if interruption else not resumed,
        yielded=(silent_until_done and not resumed) if interruption else None,
    )
