"""The emulator's playout: checkpoints ack only after their audio; clear voids them."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from app.simulator.playout import PhonePlayout, mix


def chunk(n: int, value: int) -> npt.NDArray[np.int16]:
    return np.full(n, value, np.int16)


def test_checkpoint_acked_on_the_tick_its_audio_finishes() -> None:
    p = PhonePlayout()
    p.push_audio(chunk(500, 1))
    p.push_checkpoint("a")
    p.push_audio(chunk(100, 2))
    p.push_checkpoint("b")
    first = p.tick(320)
    assert (first.audible, first.acked) == (320, ())
    second = p.tick(320)
    assert second.acked == ("a", "b")  # b's audio also finished within this tick
    assert second.audible == 280
    assert list(second.pcm[:180]) == [1] * 180
    assert list(second.pcm[180:280]) == [2] * 100
    assert list(second.pcm[280:]) == [0] * 40
    assert p.tick(320).acked == ()


def test_checkpoint_with_no_audio_before_it_is_acked_at_once() -> None:
    p = PhonePlayout()
    p.push_checkpoint("now")
    assert p.tick(320).acked == ("now",)


def test_clear_drops_audio_and_voids_pending_checkpoints() -> None:
    p = PhonePlayout()
    p.push_audio(chunk(1000, 3))
    p.push_checkpoint("void")
    p.tick(320)
    dropped, voided = p.clear()
    assert (dropped, voided) == (680, ("void",))
    after = p.tick(320)
    assert (after.audible, after.acked) == (0, ())
    assert not after.pcm.any()


def test_queued_samples_tracks_the_backlog() -> None:
    p = PhonePlayout()
    p.push_audio(chunk(700, 1))
    p.tick(320)
    assert p.queued_samples == 380


def test_mix_sums_streams_on_one_leg_and_clips() -> None:
    a = np.array([1000, 30000, -30000, 0], np.int16)
    b = np.array([-500, 10000, -10000, 7], np.int16)
    assert list(mix([a, b])) == [500, 32767, -32768, 7]
    assert mix([a]) is a  # one stream: no copy
