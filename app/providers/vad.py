"""Voice activity detection on 20 ms frames (WebRTC VAD, via ``webrtcvad-wheels``)."""

from __future__ import annotations

import webrtcvad

from app.providers.base import PCM


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
