"""How the fake Vobiz behaves: credentials, formats, faults and limits (``PlatformConfig``)."""

from __future__ import annotations

from dataclasses import dataclass

from app.audio.formats import AudioFormat


@dataclass(frozen=True, slots=True)
class PlatformConfig:
    auth_id: str = "MA_SIMULATOR00000001"
    auth_token: str = "simulator-auth-token"
    account_id: str = "500025"
    sign_webhooks: bool = True
    answer_method: str = "POST"
    hangup_url: str | None = None  # None: Vobiz falls back to the answer URL
    playback_format: AudioFormat | None = None  # accepted playAudio format; None = the inbound one
    l16_byte_order: str = "little"
    recording_rate: int = 16000
    clear_latency: float = 0.02  # seconds until clearedAudio
    acks_checkpoints: bool = True  # False: every playedStream is lost (a fault Vobiz documents, §3.3)
    max_duration: float = 900.0  # seconds; the call is cut after this
    epoch: float = 1_767_225_600.0  # unix seconds of the wall clock when the platform is made (2026-01-01)
