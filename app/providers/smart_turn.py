"""The end-of-turn audio model: Smart Turn v3.2 on onnxruntime, loaded once per process.

Given the caller's audio up to a pause, the model says how likely it is that the caller has
finished their turn (intonation, a trailing word cut short), in about 35 ms of one CPU core.
The model file (8.7 MB, BSD-2, Daily) ships inside this package (``app/providers/models``), byte
for byte as published in the ``pipecat-ai`` 1.14.0 wheel on PyPI, and is checked against
:data:`MODEL_SHA256` when loaded. Inference runs in one process-wide worker thread, never on the
event loop; a verdict that would come late is not computed at all (see :class:`SmartTurn`).
"""

from __future__ import annotations

import importlib
import importlib.resources
import logging
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.clock import Clock, SystemClock, run_blocking
from app.providers.base import PCM
from app.providers.checksums import file_sha256
from app.providers.errors import MissingTurnModelError, ProviderError
from app.providers.log_mel import turn_features

__all__ = [
    "MODEL_FILE",
    "MODEL_SHA256",
    "PROVIDER",
    "Admission",
    "LoadedSmartTurn",
    "SmartTurn",
    "default_executor",
    "load_smart_turn",
    "model_path",
]

PROVIDER = "smart-turn"
MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
#: sha256 of ``pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx`` in ``pipecat-ai==1.14.0``
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
MAX_WAITING = 2  # inferences queued behind the running one, process-wide, before callers get None

log = logging.getLogger("app.providers.smart_turn")

_LOCK = threading.Lock()  # guards the process-wide singletons below
_loaded: LoadedSmartTurn | None = None
_executor: ThreadPoolExecutor | None = None


def model_path() -> Path:
    """Where the bundled model file is (whether or not it is there)."""
    return Path(str(importlib.resources.files("app.providers").joinpath("models", MODEL_FILE)))


@dataclass(frozen=True, slots=True)
class LoadedSmartTurn:
    """An onnxruntime session on the model (one intra-op and one inter-op thread) and its file."""

    session: Any  # onnxruntime.InferenceSession
    path: Path

    def predict(self, audio: PCM) -> float:
        """Probability (0..1) that the speaker has finished, from int16 16 kHz mono audio of any
        length (the last 8 s count). Blocking (~40 ms): call it from a worker thread."""
        features = turn_features(audio)[np.newaxis]
        (out,) = self.session.run(["logits"], {"input_features": features})
        return float(out[0, 0])  # the graph ends in a sigmoid: already a probability


def load_smart_turn(path: Path | None = None) -> LoadedSmartTurn:
    """The model, loaded by the first call (~0.1 s, blocking) and shared after. Thread-safe.

    ``path``: another copy of the file (loaded each time, never shared; it must still match
    :data:`MODEL_SHA256`). Raises :class:`MissingTurnModelError` without onnxruntime or the file,
    and ``ProviderError(retryable=False)`` when the file fails its sha256 check.
    """
    global _loaded
    if path is not None:
        return _load(path)
    with _LOCK:
        if _loaded is None:
            _loaded = _load(model_path())
        return _loaded


def _load(path: Path) -> LoadedSmartTurn:
    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError:
        raise MissingTurnModelError("the end-of-turn model's runtime (onnxruntime)", "embedded") from None
    if not path.is_file():
        raise MissingTurnModelError(f"the end-of-turn model ({path})", "embedded")
    actual = file_sha256(path)
    if actual != MODEL_SHA256:
        raise ProviderError(
            PROVIDER,
            f"{path} is not the pinned Smart Turn v3.2 model (sha256 {actual}, expected "
            f"{MODEL_SHA256}): reinstall the package",
            retryable=False,
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # ~35 ms either way on this CPU; one core per inference
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    log.info("smart-turn: loaded the end-of-turn model from %s", path)
    return LoadedSmartTurn(session, path)


def default_executor() -> ThreadPoolExecutor:
    """The process-wide single worker thread of the end-of-turn model."""
    global _executor
    with _LOCK:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smart-turn")
        return _executor


class Admission:
    """Counts inferences submitted and not yet finished (running or queued), across threads and
    event loops; refuses one more past ``1 + max_waiting``. A caller that stops waiting does not
    free its place: its inference still occupies the worker until it ends."""

    def __init__(self, max_waiting: int = MAX_WAITING) -> None:
        if max_waiting < 0:
            raise ValueError("max_waiting must be >= 0")
        self._limit = 1 + max_waiting
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        return self._pending

    def enter(self) -> bool:
        with self._lock:
            if self._pending >= self._limit:
                return False
            self._pending += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._pending -= 1


_ADMISSION = Admission()  # process-wide: one worker thread serves every call


class SmartTurn:
    """``TurnModel`` on Smart Turn v3.2.

    ``model`` defaults to :func:`load_smart_turn` (load it at start-up: the first call would
    otherwise pay for it), ``executor`` to :func:`default_executor` and ``admission`` to the
    process-wide one (at most one running and :data:`MAX_WAITING` queued inferences). Each
    inference runs inside ``clock.hold()`` (virtual time stands still meanwhile). One instance
    serves every call; its only state is whether a failure was already logged (the first one
    is a WARNING with the error's type, later ones DEBUG; never audio).
    """

    name = PROVIDER

    def __init__(
        self,
        model: LoadedSmartTurn | None = None,
        *,
        clock: Clock | None = None,
        executor: Executor | None = None,
        admission: Admission | None = None,
    ) -> None:
        self._model = model if model is not None else load_smart_turn()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._executor: Executor = executor if executor is not None else default_executor()
        self._admission = admission if admission is not None else _ADMISSION
        self._failed = False  # the first failure is logged at WARNING, later ones at DEBUG

    async def complete_probability(self, audio: PCM) -> float | None:
        """Probability (0..1) that the caller's turn is complete, judged from int16 16 kHz mono
        audio of any length ending now (the last 8 s count). ``None`` at once when the worker
        is busy past its queue (a late verdict is useless), and ``None`` if the model failed.
        Cancelling the caller abandons the result; the inference itself still runs to its end.
        Raises ``ValueError`` for audio that is not one-dimensional int16."""
        if audio.ndim != 1 or audio.dtype != np.int16:
            raise ValueError(f"expected mono int16 audio, got {audio.dtype} of shape {audio.shape}")
        if not self._admission.enter():
            log.debug("smart-turn: %d inferences pending; no verdict", self._admission.pending)
            return None
        job = _Job(self._model, audio.copy(), self._admission)
        try:
            return await run_blocking(self._clock, job, self._executor)
        except Exception as exc:  # the model failed: the caller decides without it
            if not job.started:  # never reached the worker (an executor shut down)
                self._admission.leave()
            level = logging.DEBUG if self._failed else logging.WARNING
            self._failed = True
            log.log(level, "smart-turn: inference failed (%s); no verdict", type(exc).__name__)
            return None


class _Job:
    """One inference, run in the worker thread; frees its admission place when it ends."""

    __slots__ = ("_admission", "_audio", "_model", "started")

    def __init__(self, model: LoadedSmartTurn, audio: PCM, admission: Admission) -> None:
        self._model, self._audio, self._admission = model, audio, admission
        self.started = False

    def __call__(self) -> float:
        self.started = True
        try:
            return self._model.predict(self._audio)
        finally:
            self._admission.leave()
