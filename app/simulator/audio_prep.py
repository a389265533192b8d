"""Turn a caller script's ``say`` steps into audio before the call starts.

Rendering up front keeps the call's timing independent of TTS speed (and exact on the
virtual clock). Text is spoken by the offline TTS (Piper where installed: eSpeak NG's formant
voice is hard for a speech recogniser once it has been through an 8 kHz phone line); ``say-wav``
files are read and converted.
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
                tts = caller_voice()
            speech = tts.synthesize(say.text)
            pcm = speech.pcm
            if speech.sample_rate != rate:
                pcm = resample_clip(pcm, speech.sample_rate, rate)
            audio[index] = pcm
    return audio


def caller_voice() -> TextToSpeech:
    """The caller's voice: Piper, a little faster than the agent's and the same on every run,
    else eSpeak NG. Raises
    ``MissingEngineError`` naming the extra when neither is installed."""
    from app.providers.errors import MissingEngineError

    try:
        from app.providers.piper_tts import PiperTTS

        return PiperTTS(speed=1.1, variation=False)  # the same script, the same audio
    except MissingEngineError:
        from app.providers.espeak import EspeakTTS

        return EspeakTTS()
