"""Offline text-to-speech with eSpeak NG, called through ``ctypes``.

The shared library and its voice data come from the PyPI wheel
``espeakng-loader`` (the optional ``embedded`` extra: libespeak-ng is GPL-3.0
licensed, so the agent does not depend on it by default). Nothing is downloaded
at run time.

libespeak-ng keeps its state in process globals, some of them function statics that no call
resets (the pitch "flutter" phase, the wave generator's cycle), so one utterance changes how the
next one sounds. Each synthesis therefore runs in a fresh instance of the library: a private copy
is loaded (an anonymous in-memory file on Linux, a temporary file elsewhere: the dynamic loader
shares one instance per file), initialised, used and unloaded again. That costs about 3 ms per
utterance and makes the result depend only on the text, voice and rate: the same text gives the
same samples whatever was spoken before in the process, by eSpeak or by Piper's own copy.
Calls are serialised with one module-level lock. :class:`EspeakTTS` instances are immutable and
cheap: any number of them, with different voices and speeds, may be used from any threads.
``ctypes`` releases the GIL during the C call, so other Python threads keep running.

Output is the library's native 22050 Hz, or ``sample_rate`` Hz through
:func:`app.audio.wavio.resample_clip`.
"""

from __future__ import annotations

import _ctypes
import ctypes
import importlib
import os
import tempfile
import threading
from types import ModuleType

import numpy as np
import numpy.typing as npt

from app.audio.wavio import resample_clip
from app.providers.errors import MissingEngineError, TTSError
from app.providers.tts import SpeechAudio

__all__ = ["MAX_WORDS_PER_MINUTE", "MIN_WORDS_PER_MINUTE", "NATIVE_RATE", "EspeakTTS"]

#: Sample rate (Hz) libespeak-ng synthesises at.
NATIVE_RATE = 22050
#: Speaking-rate limits (words per minute) of espeak_SetParameter(espeakRATE).
MIN_WORDS_PER_MINUTE = 80
MAX_WORDS_PER_MINUTE = 450
_MIN_RATE, _MAX_RATE = 8000, 48000  # output sample rates (Hz) offered

_EXTRA = "embedded"
_ENGINE = "eSpeak NG"

# Constants from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_Synth blocks and calls the callback in the calling thread
_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of calling exit() when data is missing
_BUFFER_MS = 1000  # audio handed to the callback per call
_PARAM_RATE = 1  # espeakRATE
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_OK = 0

# int callback(short *wav, int numsamples, espeak_EVENT *events); pointers arrive as addresses.
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)

_LOCK = threading.Lock()  # guards _engine and every call into libespeak-ng
_engine: _Engine | None = None


def _require_loader() -> ModuleType:
    """Import ``espeakng_loader`` or raise :class:`MissingEngineError` naming the extra."""
    try:
        return importlib.import_module("espeakng_loader")
    except ImportError:
        raise MissingEngineError(_ENGINE, _EXTRA) from None


class _Engine:
    """Where the library and its voice data are: the library's bytes, read once, and the data path."""

    def __init__(self, library_path: str, data_path: str) -> None:
        try:
            with open(library_path, "rb") as file:
                self.image = file.read()
        except OSError as exc:
            raise TTSError(f"cannot load libespeak-ng from {library_path!r}: {exc}") from exc
        self.library_path = library_path
        self.data_path = data_path

    def fresh(self) -> _Library:
        """A new, initialised instance of the library (none of its globals shared with any other)."""
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("libespeak-ng", 0)
            try:
                os.write(fd, self.image)
                return _Library(f"/proc/self/fd/{fd}", self.data_path, self.library_path)
            finally:
                os.close(fd)  # the loaded library keeps its own mapping
        with tempfile.TemporaryDirectory(prefix="espeak-ng-") as folder:
            copy = os.path.join(folder, os.path.basename(self.library_path))
            with open(copy, "wb") as file:
                file.write(self.image)
            return _Library(copy, self.data_path, self.library_path)


class _Library:
    """One loaded, initialised instance of libespeak-ng; use it with ``_LOCK`` held, then :meth:`close`."""

    def __init__(self, load_from: str, data_path: str, library_path: str) -> None:
        try:
            lib = ctypes.CDLL(load_from)
        except OSError as exc:
            raise TTSError(f"cannot load libespeak-ng from {library_path!r}: {exc}") from exc
        self._lib = lib
        self._chunks: list[bytes] = []
        try:
            self._bind(data_path)
        except BaseException:
            self._unload()
            raise

    def _bind(self, data_path: str) -> None:
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,  # text
            ctypes.c_size_t,  # size in bytes (incl. NUL)
            ctypes.c_uint,  # position
            ctypes.c_int,  # position type
            ctypes.c_uint,  # end position (0 = none)
            ctypes.c_uint,  # flags
            ctypes.c_void_p,  # unique identifier out-pointer
            ctypes.c_void_p,  # user data
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_Terminate.argtypes = []
        lib.espeak_Terminate.restype = ctypes.c_int
        # The C side keeps only a raw pointer: this reference keeps the thunk alive.
        self._callback = _SynthCallback(self._on_audio)
        rate = int(
            lib.espeak_Initialize(
                _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data_path.encode(), _INITIALIZE_DONT_EXIT
            )
        )
        if rate <= 0:
            raise TTSError(f"espeak_Initialize failed (returned {rate}) with data at {data_path!r}")
        lib.espeak_SetSynthCallback(self._callback)
        #: Rate (Hz) of the samples the library produces.
        self.sample_rate = rate

    def close(self) -> None:
        """Terminate and unload this instance; it must not be used again."""
        try:
            self._lib.espeak_Terminate()
        finally:
            self._unload()

    def _unload(self) -> None:
        dlclose = getattr(_ctypes, "dlclose", None)  # POSIX; elsewhere the instance stays loaded
        if dlclose is not None:
            dlclose(self._lib._handle)

    def _on_audio(self, wav: int | None, count: int, events: int | None) -> int:
        # Runs inside espeak_Synth in the synthesising thread; must never raise.
        if wav and count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0  # 0 = continue synthesis

    def select(self, voice: str, words_per_minute: int) -> None:
        """Make ``voice`` at ``words_per_minute`` current; ``TTSError`` if the voice is unknown."""
        status = int(self._lib.espeak_SetVoiceByName(voice.encode()))
        if status != _EE_OK:
            raise TTSError(f"eSpeak NG has no voice {voice!r} (espeak_SetVoiceByName returned {status})")
        status = int(self._lib.espeak_SetParameter(_PARAM_RATE, words_per_minute, 0))
        if status != _EE_OK:
            raise TTSError(f"eSpeak NG rejected rate {words_per_minute} wpm (status {status})")

    def synthesize(self, text: bytes) -> npt.NDArray[np.int16]:
        """Synthesise NUL-free UTF-8 ``text`` with the current voice; samples at ``sample_rate`` Hz."""
        self._chunks = []
        try:
            status = int(
                self._lib.espeak_Synth(text, len(text) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            )
            if status == _EE_OK:
                status = int(self._lib.espeak_Synchronize())
            if status != _EE_OK:
                raise TTSError(f"espeak_Synth failed with status {status}")
            return np.frombuffer(b"".join(self._chunks), dtype=np.int16).copy()
        finally:
            self._chunks = []


def _get_engine() -> _Engine:
    """Where the library is, found on first use; call with ``_LOCK`` held."""
    global _engine
    if _engine is None:
        loader = _require_loader()
        try:
            library_path = str(loader.get_library_path())
            data_path = str(loader.get_data_path())
        except (RuntimeError, OSError) as exc:
            raise TTSError(f"the espeakng-loader package is incomplete: {exc}") from exc
        _engine = _Engine(library_path, data_path)
    return _engine


class EspeakTTS:
    """eSpeak NG voice ``voice`` speaking at ``words_per_minute``.

    ``voice`` is a voice name or file name as espeak_SetVoiceByName takes it:
    ``"en-us"``, ``"en"`` (British), ``"en-gb-x-rp"``, ``"fr"``, optionally with a
    variant (``"en-us+Storm"``, ``"en+f3"``). It is checked on first use, not here.

    ``sample_rate`` (Hz, 8000..48000) is the rate of the returned audio; the
    default is the native 22050 Hz, anything else is resampled. Construction only
    validates arguments and checks that the package is installed (raising
    :class:`MissingEngineError` otherwise); the library is loaded on first use or
    by :meth:`load`. Immutable and thread-safe: see the module docstring.
    """

    __slots__ = ("_sample_rate", "_voice", "_words_per_minute")

    def __init__(
        self, voice: str = "en-us", words_per_minute: int = 170, sample_rate: int = NATIVE_RATE
    ) -> None:
        if not isinstance(voice, str) or not voice.strip() or "\x00" in voice:
            raise ValueError(f"voice must be a non-empty voice name, got {voice!r}")
        wpm = words_per_minute
        if (
            isinstance(wpm, bool)
            or not isinstance(wpm, int)
            or not MIN_WORDS_PER_MINUTE <= wpm <= MAX_WORDS_PER_MINUTE
        ):
            raise ValueError(
                f"words_per_minute must be an int in "
                f"{MIN_WORDS_PER_MINUTE}..{MAX_WORDS_PER_MINUTE}, got {wpm!r}"
            )
        rate = sample_rate
        if isinstance(rate, bool) or not isinstance(rate, int) or not _MIN_RATE <= rate <= _MAX_RATE:
            raise ValueError(f"sample_rate must be an int in {_MIN_RATE}..{_MAX_RATE} Hz, got {rate!r}")
        _require_loader()
        self._voice = voice
        self._words_per_minute = wpm
        self._sample_rate = rate

    @property
    def name(self) -> str:
        """Engine name for logs: ``"espeak-ng"``."""
        return "espeak-ng"

    @property
    def voice(self) -> str:
        """eSpeak NG voice name, as passed to ``espeak_SetVoiceByName``."""
        return self._voice

    @property
    def words_per_minute(self) -> int:
        """Speaking rate in words per minute."""
        return self._words_per_minute

    @property
    def sample_rate(self) -> int:
        """Rate (Hz) of the audio :meth:`synthesize` returns."""
        return self._sample_rate

    def __repr__(self) -> str:
        return (
            f"EspeakTTS(voice={self._voice!r}, words_per_minute={self._words_per_minute}, "
            f"sample_rate={self._sample_rate})"
        )

    def load(self) -> None:
        """Initialise libespeak-ng now (once per process) and check this voice exists.

        Raises :class:`MissingEngineError` without the package and :class:`TTSError`
        for an unknown voice or a broken installation. Blocking: about 35 ms the first
        time in a process, a few ms after that.
        """
        _require_loader()
        with _LOCK:
            library = _get_engine().fresh()
            try:
                library.select(self._voice, self._words_per_minute)
            finally:
                library.close()

    def synthesize(self, text: str) -> SpeechAudio:
        """Speak ``text`` (plain text, any length) and return mono int16 at :attr:`sample_rate` Hz.

        Blocking CPU work (a 3 s sentence takes about 7 ms at 22050 Hz, 3 of them to load a fresh
        instance of the library; resampling adds roughly 5-30 ms): run it in a thread from async
        code. Empty or whitespace-only text returns empty audio without touching the library.
        NUL characters are read as spaces and unencodable lone surrogates are dropped.
        Thread-safe; concurrent calls are serialised process-wide.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        text = text.replace("\x00", " ")
        if not text.strip():
            return SpeechAudio(np.zeros(0, dtype=np.int16), self._sample_rate)
        encoded = text.encode("utf-8", "ignore")
        _require_loader()
        with _LOCK:
            library = _get_engine().fresh()  # nothing carries over from an earlier utterance
            try:
                library.select(self._voice, self._words_per_minute)
                pcm = library.synthesize(encoded)
                native = library.sample_rate
            finally:
                library.close()
        if native != self._sample_rate:
            pcm = resample_clip(pcm, native, self._sample_rate)
        return SpeechAudio(pcm, self._sample_rate)
