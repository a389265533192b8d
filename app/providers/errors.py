"""Every error of the providers layer (``app/providers``), in one place.

Vendor errors become these at the provider's edge; nothing above this layer sees an SDK's own
exception. A provider imports its errors from here, never from another provider.

::

    Exception
    ├── ProviderError                 a provider failed; ``retryable``: a retry may succeed
    ├── TTSError                      synthesis failed (a rejected setting, an engine error)
    └── RuntimeError
        ├── MissingEngineError        an optional engine's package is not installed (names the extra)
        │   ├── MissingSTTEngineError   the offline speech-to-text's package
        │   └── MissingTurnModelError   the end-of-turn model or its runtime (onnxruntime)
        └── ProviderSetupError        the chosen providers cannot run here (what to set or install)
"""

from __future__ import annotations


class ProviderError(Exception):
    """A provider failed. ``retryable``: a retry (or reconnect) may succeed. ``retry_after``:
    the seconds the service asked to wait first (its ``Retry-After``), when it said."""

    def __init__(
        self, provider: str, message: str, *, retryable: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.retryable = retryable
        self.retry_after = retry_after


class TTSError(Exception):
    """Synthesis failed: the engine rejected a setting (e.g. an unknown voice) or errored."""


class MissingEngineError(RuntimeError):
    """The Python package behind an optional engine is not installed.

    The message is one sentence naming the pip extra that installs it, e.g.
    ``pip install -e '.[embedded]'``. ``engine`` and ``extra`` are kept as attributes.
    """

    def __init__(self, engine: str, extra: str) -> None:
        self.engine = engine
        self.extra = extra
        super().__init__(
            f"the {engine} text-to-speech engine is not installed: "
            f"install the optional '{extra}' extra with `pip install -e '.[{extra}]'`"
        )

    def __reduce__(self) -> tuple[type[MissingEngineError], tuple[str, str]]:
        return (type(self), (self.engine, self.extra))


class MissingSTTEngineError(MissingEngineError):
    """A package of the offline STT is not installed; the message names the pip extra."""

    def __init__(self, engine: str, extra: str) -> None:
        super().__init__(engine, extra)
        install = f"install the optional '{extra}' extra with `pip install -e '.[{extra}]'`"
        self.args = (f"{engine} is not installed: {install}",)


class ProviderSetupError(RuntimeError):
    """The chosen providers cannot run here; one sentence saying what to set or install."""


class MissingTurnModelError(MissingEngineError):
    """The end-of-turn model or its runtime is not installed; the message names the pip extra."""

    def __init__(self, engine: str, extra: str) -> None:
        super().__init__(engine, extra)
        install = f"install the optional '{extra}' extra with `pip install -e '.[{extra}]'`"
        self.args = (f"{engine} is not installed: {install}",)
