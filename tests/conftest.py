"""Shared fixtures: settings isolated from the developer's environment and .env file; the opt-in
live checks (``-m live``) deselected unless asked for and their keys are set."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from tests.postgres import throwaway_postgres
from tests.redis_server import redis_server

#: (check, milliseconds) of each live check that ran, for the summary
LIVE_TIMINGS: list[tuple[str, float]] = []
_LIVE_DESELECTED = pytest.StashKey[int]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep a ``live`` test only under ``-m live`` and with every key it names in the environment;
    the others are deselected (counted, and named in the summary), never skipped in silence."""
    asked = "live" in (config.getoption("markexpr") or "").replace("not live", "")
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("live")
        needs: tuple[str, ...] = marker.kwargs.get("keys", ()) if marker is not None else ()
        if marker is None or (asked and all(os.environ.get(key) for key in needs)):
            keep.append(item)
        else:
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    config.stash[_LIVE_DESELECTED] = len(dropped)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    seed = getattr(config.option, "randomly_seed", None)  # pytest-randomly: tests ran in random order
    if isinstance(seed, int):
        terminalreporter.write_line(f"random test order: replay it with pytest --randomly-seed={seed}")
    for check, ms in LIVE_TIMINGS:
        terminalreporter.write_line(f"live: {check} answered in {ms:.0f} ms")
    dropped = config.stash.get(_LIVE_DESELECTED, 0)
    if dropped:
        terminalreporter.write_line(
            f"{dropped} live checks deselected (real vendor requests: `pytest -m live --no-cov` "
            "runs those whose keys are set)"
        )


@pytest.fixture(autouse=True)
def _isolated_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a real key or setting from the machine it runs on (live checks excepted)."""
    if request.node.get_closest_marker("live") is not None:
        return
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


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis for this session (``tests/redis_server.py``), started on first use."""
    with redis_server() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``TEST_DATABASE_URL``, or a throwaway server started for this session and removed after it."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if url:
        yield url
        return
    with throwaway_postgres() as started:
        yield started
