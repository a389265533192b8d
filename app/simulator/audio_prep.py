"""Turn a caller script's ``say`` steps into audio before the call starts.

Rendering up front keeps the call's timing independent of TTS speed (and exact on the
virtual clock). Text is spoken by the offline TTS; ``say-wav`` files are read and converted.
"""

from __future__ import annotations

from app.audio.wavio import read_wav, resample_clip
from app.providers.tts import TextToSpeech
from app.simulator.caller import PCM, Step, utterances


def render_caller_audio(steps: list[Step], rate: int, tts: TextToSpeech | None) -> dict[int, PCM]:
    """Audio (int16 at ``rate`` Hz) for every step that speaks, keyed by step index.

    Raises ``MissingEngineError`` (naming the extra to install) when text must be spoken and
    no TTS engine is available, and ``ValueError`` for an unreadable WAV file.
    """
    audio: dict[int, PCM] = {}
    for index, say in utterances(steps).items():
        if say.audio is not None:
            audio[index] = say.audio
        elif say.wav is not None:
            audio[index] = read_wav(say.wav, rate)
        else:
            if tts is None:
                from app.providers.espeak import EspeakTTS

                tts = EspeakTTS(sample_rate=rate)
            speech = tts.synthesize(say.text)
            pcm = speech.pcm
            if speech.sample_rate != rate:
                pcm = resample_clip(pcm, speech.sample_rate, rate)
            audio[index] = pcm
    return audio
