"""Per-turn latency stamps, on the call's clock (seconds)."""

from __future__ import annotations

from dataclasses import dataclass, field

STAGES = ("speech_end", "stt_final", "turn_end", "llm_first_token", "tts_first_audio", "first_play_audio")


@dataclass(slots=True)
class TurnStamps:
    """When each stage of one reply happened (None: it did not happen)."""

    turn: int
    speech_end: float | None = None  # the caller's last voiced frame
    stt_final: float | None = None  # arrival of the last final transcript of the caller's turn
    turn_end: float | None = None  # the turn-taker ended the turn (on that transcript, or later on silence)
    llm_first_token: float | None = None
    tts_first_audio: float | None = None
    first_play_audio: float | None = None  # the first playAudio frame written to the socket
    interrupted: bool = False

    def stamp(self, stage: str, t: float) -> None:
        """Record ``stage`` at ``t`` unless it was already recorded (the first one counts)."""
        if getattr(self, stage) is None:
            setattr(self, stage, t)

    def turn_ended(self, speech_end: float, stt_final: float | None, turn_end: float) -> None:
        """The caller's turn ended: its first three stages (no ``stt_final``: at ``turn_end``)."""
        self.stamp("speech_end", speech_end)
        self.stamp("stt_final", turn_end if stt_final is None else stt_final)
        self.stamp("turn_end", turn_end)

    def since_speech_end(self) -> dict[str, float]:
        """Each recorded stage as seconds after the caller stopped speaking."""
        if self.speech_end is None:
            return {}
        return {s: getattr(self, s) - self.speech_end for s in STAGES[1:] if getattr(self, s) is not None}


@dataclass(slots=True)
class LatencyLog:
    turns: dict[int, TurnStamps] = field(default_factory=dict)

    def turn(self, turn: int) -> TurnStamps:
        stamps = self.turns.get(turn)
        if stamps is None:
            stamps = self.turns[turn] = TurnStamps(turn)
        return stamps
