"""Headless Chromium (Debian's package, installed by ``.ci/run``) driven by Playwright; nothing
downloads a browser. The microphone is a WAV file (Chromium's fake capture device)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
    "--use-fake-device-for-media-stream",
]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "Chromium is not installed: .ci/run installs Debian's chromium package (apt-get install chromium)"
        )
    return found


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[object]:
    """``launch(microphone_wav)``: a headless Chromium whose microphone plays that file."""
    browsers: list[Browser] = []
    with sync_playwright() as playwright:

        def start(microphone: Path | None = None) -> Browser:
            flags = list(CHROMIUM_FLAGS)
            if microphone is not None:
                flags.append(f"--use-file-for-fake-audio-capture={microphone}")
            browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=flags)
            browsers.append(browser)
            return browser

        yield start
        for browser in browsers:
            browser.close()
