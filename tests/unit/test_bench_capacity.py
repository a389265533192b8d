"""Smoke test of the capacity benchmark's core with tiny numbers: structure, not timings."""

from __future__ import annotations

import json

from bench import capacity


def test_two_calls_through_the_capacity_ramp() -> None:
    options = capacity.Options(
        ramp=(2,), window=1.5, workers=1, refine=0, frames=50, pin=False, warm_up=False
    )
    result = capacity.run(options)

    (step,) = result["steps"]
    assert step["calls"] == 2
    assert step["carried"] == 2  # both calls were up through the whole window
    assert sum(step["end_reasons"].values()) == 2
    assert step["protocol_errors"] == 0, step["protocol_error_examples"]
    assert step["inbound_dropped"] == 0
    assert step["frames"] > 0  # frames matched across the fake Vobiz and the service
    for figure in ("frame_lag_ms", "loop_lag_ms", "vobiz_lag_ms"):
        assert {"p50", "p99", "max"} <= step[figure].keys()
    assert {"p50", "p95", "p99", "max"} <= step["overhead_ms"].keys()
    assert {"p50", "p95", "max"} <= step["reaction_ms"].keys()
    assert step["cpu_per_call_s"] > 0
    assert isinstance(step["passed"], bool)

    assert [row["format"] for row in result["frame_cost"]] == ["mu-law 8k", "L16 8k", "L16 16k"]
    for row in result["frame_cost"]:
        assert {"parse", "decode_resample", "vad", "path"} <= row["stages_us"].keys()
    assert [t["target"] for t in result["targets"]] == [
        "concurrent calls",
        "memory per call (MiB)",
        "overhead p95 (ms)",
        "barge-in reaction p95 (ms)",
    ]
    json.dumps(result)  # the --json output
    table = capacity.to_markdown(result)
    assert "| calls | frame lag" in table
    assert "| calls | service CPU" in table
    assert "| mu-law 8k |" in table


def test_playout_marks_ticks_that_run_dry_mid_segment_as_starved() -> None:
    """The benchmark's underrun count: a gap before a segment's checkpoint, not after it."""
    import numpy as np

    from app.simulator.playout import PhonePlayout

    p = PhonePlayout()
    assert not p.tick(160).starved  # nothing queued yet: silence, not an underrun
    p.push_audio(np.ones(240, np.int16))
    assert not p.tick(160).starved
    assert p.tick(160).starved  # 80 samples, then the queue ran dry with no checkpoint
    assert p.tick(160).starved
    p.push_audio(np.ones(160, np.int16))
    p.push_checkpoint("s1")
    assert not p.tick(160).starved  # full tick, and the checkpoint closes the segment
    assert not p.tick(160).starved  # dry after the checkpoint: the segment had ended
    p.push_audio(np.ones(80, np.int16))
    p.clear()
    assert not p.tick(160).starved  # a clear ends the segment too
