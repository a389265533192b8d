"""Without the optional espeakng-loader package the eSpeak engine says which extra to install."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import pytest

from app.providers.errors import MissingEngineError
from app.providers.espeak import EspeakTTS

INSTALL_HINT = "pip install -e '.[embedded]'"


@pytest.fixture
def no_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import espeakng_loader`` fail as if the package were not installed."""
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)


@pytest.mark.usefixtures("no_loader")
def test_constructing_names_the_embedded_extra() -> None:
    with pytest.raises(MissingEngineError) as info:
        EspeakTTS()
    error = info.value
    assert isinstance(error, RuntimeError)
    assert INSTALL_HINT in str(error)
    assert "eSpeak NG" in str(error)
    assert (error.engine, error.extra) == ("eSpeak NG", "embedded")
    assert "\n" not in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__  # raised "from None": no chained ImportError


def test_loading_and_synthesizing_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    tts = EspeakTTS()  # the package is really installed while constructing
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    with pytest.raises(MissingEngineError, match=r"\[embedded\]"):
        tts.load()
    with pytest.raises(MissingEngineError, match=r"\[embedded\]"):
        tts.synthesize("hello")


def test_error_survives_pickling() -> None:
    error = MissingEngineError("eSpeak NG", "embedded")
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is MissingEngineError
    assert str(clone) == str(error)
    assert clone.extra == "embedded"


def test_fresh_process_reports_one_clear_line() -> None:
    """End to end in a new interpreter: the library was never loaded there."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["espeakng_loader"] = None
        from app.providers.espeak import EspeakTTS
        EspeakTTS().synthesize("hello")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("app.providers.errors.MissingEngineError: ")
    assert INSTALL_HINT in last
    assert "During handling of the above exception" not in proc.stderr
    assert "ImportError" not in proc.stderr
