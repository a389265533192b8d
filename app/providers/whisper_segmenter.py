"""Whisper's endpointing, pure: 20 ms frames and their voice verdicts in, utterances out.

Whisper does not stream, so the caller's audio is cut into utterances by voice activity:
``SpeechStarted`` at an onset (3 voiced frames among 5), then a :class:`Job` (the utterance's
frames) once ``end_silence_s`` of unvoiced audio follows, or every ``max_s`` of speech. An
utterance with too little voice ends with an empty final ``Job``, so the recogniser can say at
once that the sound held no words. Times
are seconds of stream audio (frames pushed × 20 ms). No I/O, no clock, one thread.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from app.providers.base import PCM, SpeechStarted

RATE, FRAME = 16000, 320  # Hz; samples in one 20 ms frame
FRAME_S = FRAME / RATE
_PREROLL, _TAIL = 10, 10  # frames (200 ms) kept before the onset / after the last voiced frame
_ONSET_VOICED = 3  # voiced frames among the last 5 that make an onset


@dataclass(frozen=True, slots=True)
class Job:
    frames: tuple[PCM, ...]  # empty: only the end of an utterance whose parts were sent before
    start: float
    end: float
    final: bool  # the caller stopped speaking (not a cut at ``max_utterance_s``)


class Segmenter:
    """Endpointing of 20 ms frames by their voice verdicts; ``push`` gives at most one item per
    frame. An utterance with less than ``min_speech_s`` of voiced frames is not transcribed."""

    def __init__(self, end_silence_s: float, max_s: float, min_speech_s: float):
        self._end = max(1, round(end_silence_s / FRAME_S))
        self._max, self._min = round(max_s / FRAME_S), max(1, round(min_speech_s / FRAME_S))
        self._ring: deque[PCM] = deque(maxlen=_PREROLL)
        self._recent = 0  # bit j set: frame (now - j) was voiced; last 5 frames
        self._utt: list[PCM] | None = None  # frames of the utterance in progress
        self._index = self._onset = self._last = self._voiced = self._silence = self._parts = 0

    def push(self, frame: PCM, voiced: bool) -> SpeechStarted | Job | None:
        i = self._index
        self._index += 1
        if self._utt is None:
            self._ring.append(frame)
            self._recent = ((self._recent << 1) | voiced) & 0b11111
            if not voiced or self._recent.bit_count() < _ONSET_VOICED:
                return None
            self._utt, self._ring = list(self._ring), deque(maxlen=_PREROLL)
            self._onset = i - (self._recent.bit_length() - 1)  # the first voiced frame of the 5
            self._voiced, self._silence, self._last, self._parts = self._recent.bit_count(), 0, i, 0
            return SpeechStarted(self._onset * FRAME_S)
        self._utt.append(frame)
        if voiced:
            self._voiced, self._silence, self._last = self._voiced + 1, 0, i
        else:
            self._silence += 1
        if self._silence >= self._end:
            return self._cut(final=True)
        return self._cut(final=False) if len(self._utt) >= self._max else None

    def flush(self) -> Job | None:
        """End the utterance in progress (the stream is closing)."""
        return None if self._utt is None else self._cut(final=True)

    def _cut(self, *, final: bool) -> Job | None:
        assert self._utt is not None
        frames, job = self._utt[: len(self._utt) - max(0, self._silence - _TAIL)], None
        if self._voiced >= self._min:
            job = Job(tuple(frames), self._onset * FRAME_S, (self._last + 1) * FRAME_S, final)
        elif final:  # too little voice for words (a click, a cough): the utterance ends empty
            job = Job((), self._onset * FRAME_S, (self._last + 1) * FRAME_S, True)
        self._parts += job is not None
        if final:
            self._ring.extend(self._utt[-_PREROLL:])
            self._utt, self._recent = None, 0
        else:
            self._utt, self._onset, self._voiced, self._silence = [], self._index, 0, 0
        return job
