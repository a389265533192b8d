"""Offline speech-to-text on the bundled Whisper model (:mod:`app.providers.whisper_model`).

Whisper does not stream, so :class:`WhisperSTT` cuts the caller's audio into utterances by voice
activity (:mod:`app.providers.whisper_segmenter`) and transcribes each when it ends:
``SpeechStarted`` at onset, then one final ``Transcript`` (``speech_final=True``) and
``UtteranceEnd`` (an ``UtteranceEnd`` alone when the sound held no words: a cough, a click).
An utterance ends after 0.2 s of silence, so a short sound over the agent is judged at once;
the turn-taker joins the pieces of a sentence the caller paused in. The voice verdicts are the
call's own when ``send`` is given them (the call already runs a VAD on every frame); otherwise
the stream runs a WebRTC VAD of its own. The CPU work runs in a thread pool, never on the event
loop. Times in events are seconds of stream audio since the stream opened (samples passed to
``send`` / 16000).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from contextlib import AbstractAsyncContextManager

import numpy as np

from app.clock import Clock, SystemClock, run_blocking
from app.providers.base import (
    PCM,
    SpeechStarted,
    STTCapabilities,
    STTOptions,
    Transcript,
    UtteranceEnd,
)
from app.providers.errors import MissingSTTEngineError, ProviderError
from app.providers.streaming import QueuedEvents, owned
from app.providers.vad import VoiceActivityDetector, WebRtcVad
from app.providers.whisper_model import (
    MODEL_SHA256,
    PROVIDER,
    Heard,
    LoadedWhisper,
    accept,
    default_executor,
    load_whisper,
)
from app.providers.whisper_segmenter import FRAME, RATE, Job, Segmenter

__all__ = ["MODEL_SHA256", "LoadedWhisper", "MissingSTTEngineError", "WhisperSTT", "accept", "load_whisper"]

log = logging.getLogger("app.providers.whisper")

_CLOSE_TIMEOUT = 10.0  # seconds ``end_input`` waits for pending transcriptions


class WhisperSTT:
    """``SpeechToText`` on the bundled Whisper model; ``sample_rate`` 16000 Hz.

    ``model`` defaults to :func:`load_whisper` (loaded by the first ``stream`` if not before:
    call it at start-up), ``executor`` to :func:`default_executor`. Each transcription runs
    inside ``clock.hold()`` (virtual time stands still meanwhile). VAD (for audio sent without
    the call's verdict): ``vad_aggressiveness`` 0-3. An utterance ends after ``end_silence_s``
    seconds of unvoiced audio, is cut every ``max_utterance_s`` (≤ 30 s; parts before the last
    have ``speech_final=False``), and is dropped with less than ``min_speech_s`` of voiced
    audio. Immutable; any number of streams.
    """

    name = PROVIDER
    sample_rate = RATE
    # words come when the utterance ends, never while the caller talks
    capabilities = STTCapabilities(interim_words=False, languages=("en",), sample_rates=(RATE,))

    def __init__(
        self,
        *,
        model: LoadedWhisper | None = None,
        executor: Executor | None = None,
        clock: Clock | None = None,
        vad_aggressiveness: int = 2,
        end_silence_s: float = 0.2,
        max_utterance_s: float = 15.0,
        min_speech_s: float = 0.2,
    ) -> None:
        if not (end_silence_s > 0 and 0 < max_utterance_s <= 30.0 and 0 <= min_speech_s < max_utterance_s):
            raise ValueError("need end_silence_s > 0, 0 < max_utterance_s <= 30, 0 <= min_speech_s < max")
        WebRtcVad(vad_aggressiveness)  # validates
        self._model, self._executor = model, executor
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._aggressiveness = vad_aggressiveness
        self._segmenting = (end_silence_s, max_utterance_s, min_speech_s)

    @property
    def model(self) -> LoadedWhisper | None:
        """The loaded model this instance uses (None: loaded by the first ``stream``)."""
        return self._model

    def stream(self, options: STTOptions) -> AbstractAsyncContextManager[_WhisperStream]:
        """A stream for an ``async with`` block. Entering loads the model in a thread if needed
        (``ProviderError`` if it is not installed); leaving transcribes the utterance in
        progress (≤ 10 s) and stops the worker. English only: another ``options.language`` is
        logged and heard as English; ``options.keywords`` become Whisper's initial prompt."""
        if not options.language.lower().startswith("en"):
            log.warning("whisper: the offline model is English-only; hearing %s as English", options.language)
        stream = _WhisperStream(
            self._model,
            self._executor,
            self._clock,
            ", ".join(options.keywords) or None,
            Segmenter(*self._segmenting),
            WebRtcVad(self._aggressiveness, RATE),
        )
        return owned(stream, "whisper-stt")


class _WhisperStream(QueuedEvents):
    """One stream, used from one event loop. Its worker task (``work``) lives in the TaskGroup
    of :func:`~app.providers.streaming.owned` and never raises. Events come in audio order: an
    onset that follows an utterance still being transcribed waits for it."""

    close_timeout = _CLOSE_TIMEOUT

    def __init__(
        self,
        model: LoadedWhisper | None,
        executor: Executor | None,
        clock: Clock,
        prompt: str | None,
        segmenter: Segmenter,
        vad: VoiceActivityDetector,
    ):
        super().__init__()
        self._model, self._executor, self._prompt = model, executor, prompt
        self._clock, self._segmenter, self._vad = clock, segmenter, vad
        # jobs and onsets go through the worker, so events stay in audio order
        self._jobs: asyncio.Queue[Job | SpeechStarted | None] = asyncio.Queue()
        self._pending = np.zeros(0, dtype=np.int16)  # samples short of a whole frame

    async def wait_ready(self) -> None:
        """Load the process's model off the loop if none was given."""
        if self._model is None:
            try:
                self._model = await run_blocking(self._clock, load_whisper)
            except MissingSTTEngineError as exc:
                self._ended = True
                raise ProviderError(PROVIDER, str(exc), retryable=False) from None
        if self._executor is None:
            self._executor = default_executor()

    async def send(self, pcm: PCM, voiced: bool | None = None) -> None:
        """Segment int16 16 kHz audio of any length. ``voiced``: the call's VAD verdict for one
        whole 20 ms frame, used instead of the stream's own VAD (~30 µs a frame saved); other
        audio is judged by the stream's VAD. No I/O and no model work here; audio after
        ``end_input`` or a failure is ignored."""
        if self._closing or self._ended:
            return
        if not self._pending.size and pcm.shape[0] == FRAME:
            self._push(pcm, self._vad.is_voiced(pcm) if voiced is None else voiced)
            return
        audio = np.concatenate((self._pending, np.asarray(pcm, dtype=np.int16)))
        whole = audio.shape[0] - audio.shape[0] % FRAME
        self._pending = audio[whole:]
        for at in range(0, whole, FRAME):
            frame = audio[at : at + FRAME]
            self._push(frame, self._vad.is_voiced(frame))

    def _push(self, frame: PCM, voiced: bool) -> None:
        if (out := self._segmenter.push(frame, voiced)) is not None:
            self._jobs.put_nowait(out)

    async def _finish_input(self) -> None:
        """Transcribe the utterance in progress (``end_input`` then waits ≤ 10 s for pending
        transcriptions; one still running in its thread then is abandoned)."""
        if (job := self._segmenter.flush()) is not None:
            self._jobs.put_nowait(job)
        self._jobs.put_nowait(None)

    async def work(self) -> None:
        words_end: float | None = None  # end of the words of an utterance not yet ended
        while (job := await self._jobs.get()) is not None:
            if isinstance(job, SpeechStarted):
                self._events.put_nowait(job)
                continue
            heard = None
            try:
                if job.frames:
                    heard = await self._transcribe(job)
            except Exception as exc:
                log.warning("whisper: transcription failed", exc_info=exc)
                failure = f"transcription failed ({type(exc).__name__})"
                return self._end(ProviderError(PROVIDER, failure, retryable=False))
            if heard is not None:
                said = Transcript(heard.text, True, job.final, heard.confidence, job.start, job.end)
                self._events.put_nowait(said)
                words_end = job.end
            if job.final:  # words or none: the caller's sound is over and all of it was heard
                self._events.put_nowait(UtteranceEnd(job.end if words_end is None else words_end))
                words_end = None

    async def _transcribe(self, job: Job) -> Heard | None:
        model, prompt = self._model, self._prompt
        assert model is not None  # loaded by ``wait_ready``
        return await run_blocking(self._clock, lambda: model.transcribe(job.frames, prompt), self._executor)
