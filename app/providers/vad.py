"""Voice activity detection on 20 ms frames (WebRTC VAD, via ``webrtcvad-wheels``).

A call runs one detector on every inbound frame; its verdicts go to the turn-taker and to the
recogniser (``STTStream.send(pcm, voiced)``), so no frame is judged twice.
"""

from __future__ import annotations

from typing import Protocol

import webrtcvad

from app.providers.base import PCM


class VoiceActivityDetector(Protocol):
    sample_rate: int  # Hz of the frames ``is_voiced`` takes

    def is_voiced(self, pcm: PCM) -> bool:
        """Whether one frame (10/20/30 ms) holds speech. Stateful: frames in order, one stream."""
        ...


class WebRtcVad:
    """``is_voiced`` for one 10/20/30 ms frame of int16 audio at 8/16/32/48 kHz.

    ``aggressiveness`` 0 (lenient) … 3 (strict about what counts as speech). Cheap enough for
    the per-frame path (tens of µs).
    """

    def __init__(self, aggressiveness: int = 2, sample_rate: int = 16000) -> None:
        if aggressiveness not in (0, 1, 2, 3):
            raise ValueError("VAD aggressiveness must be 0, 1, 2 or 3")
        self._vad = webrtcvad.Vad(aggressiveness)
        self.sample_rate = sample_rate

    def is_voiced(self, pcm: PCM) -> bool:
        return bool(self._vad.is_speech(pcm.tobytes(), self.sample_rate))
