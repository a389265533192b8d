"""Shared fixtures: settings isolated from the developer's environment and .env file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a real key or setting from the machine it runs on."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",  # the example agents' tables: one per test
            "public_url": "https://agent.example.com",
            "signature_mode": "off",
            "stream_token_secret": "test-secret-0123456789",
            # the telephony tests talk to the echo agent; conversation tests choose their engines
            "providers": "echo",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return build
