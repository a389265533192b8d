"""Smoke test of the capacity benchmark's core with tiny numbers: structure, not timings."""

from __future__ import annotations

import json

import pytest

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
    assert step["failed_calls"] == []
    # frames matched across the fake Vobiz and the service: at most one per 20 ms per call
    assert 0 < step["frames"] <= 2 * 1.5 / 0.020 + 2
    for figure, quantiles in (
        ("frame_lag_ms", ("p50", "p99", "max")),
        ("loop_lag_ms", ("p50", "p99", "max")),
        ("vobiz_lag_ms", ("p50", "p99", "max")),
        ("overhead_ms", ("p50", "p95", "p99", "max")),
        ("reaction_ms", ("p50", "p95", "max")),
    ):
        values = [step[figure][q] for q in quantiles]
        if values[0] is None:  # no sample in the window (no turn, no barge-in): all are None
            assert values == [None] * len(values), figure
            continue
        assert all(v is not None and v >= 0 for v in values), figure
        assert values == sorted(values), figure  # quantiles never decrease
    assert step["frame_lag_ms"]["p50"] is not None
    # the verdict follows from the figures it is made of
    lag99 = step["frame_lag_ms"]["p99"]
    expected = lag99 < capacity.TARGET_LAG_P99_MS and step["underrun_ticks"] == 0 and step["carried"] == 2
    assert step["passed"] is expected
    assert step["cpu_per_call_s"] > 0
    assert step["cpu_per_call_s"] == pytest.approx(step["service_cpu_share"] / 2)
    assert step["probe_ms"] > 0  # the machine's speed in the window (bench.speed)
    assert step["rss_mib"] > 0
    assert result["capacity"] == (2 if step["passed"] else 0)

    assert [row["format"] for row in result["frame_cost"]] == ["mu-law 8k", "L16 8k", "L16 16k"]
    for row in result["frame_cost"]:
        stages = row["stages_us"]
        assert {"parse", "decode_resample", "vad", "path"} <= stages.keys()
        for name in ("parse", "decode_resample", "vad"):
            assert stages[name]["mean_us"] > 0, name
        assert 0 < stages["path"]["p50_us"] <= stages["path"]["p95_us"]
        assert row["path_cpu_us"] > 0
    targets = {t["target"]: t for t in result["targets"]}
    assert list(targets) == [
        "concurrent calls",
        "service CPU per call-second (ms)",
        "memory per call (MiB)",
        "overhead p95 (ms)",
        "barge-in reaction p95 (ms)",
    ]
    calls = targets["concurrent calls"]
    assert calls["measured"] == result["capacity"]
    assert calls["met"] is (result["capacity"] >= capacity.TARGET_CALLS)
    assert calls["met"] is False  # two calls are far from the target
    memory = targets["memory per call (MiB)"]
    if step["passed"]:
        assert memory["measured"] == pytest.approx(step["mib_per_call"])
        assert memory["met"] is (memory["measured"] <= capacity.TARGET_MIB_PER_CALL)
    else:
        assert memory["measured"] is None
        assert memory["met"] is False
    cpu = targets["service CPU per call-second (ms)"]
    if step["passed"]:
        assert cpu["measured"] == pytest.approx(step["cpu_per_call_s"] * 1000)
        assert cpu["met"] is (cpu["measured"] <= capacity.TARGET_CPU_MS_PER_CALL_S)
    assert capacity.hosts(result) == []  # not pinned to one core: no per-core arithmetic
    json.dumps(result)  # the --json output
    table = capacity.to_markdown(result)
    assert "| calls | frame lag" in table
    assert "| calls | service CPU" in table
    assert "| mu-law 8k |" in table


def test_two_service_workers_on_one_port_carry_the_calls_between_them() -> None:
    """``--service-workers 2``: one socket, one secret, a real Redis; each call is carried by
    one worker or the other (a webhook on one and the socket on the other is allowed), and what
    each recorded is merged."""
    options = capacity.Options(
        ramp=(4,), window=1.5, workers=1, refine=0, frames=50, pin=False, warm_up=False, service_workers=2
    )
    result = capacity.run(options)
    (step,) = result["steps"]
    assert result["service_workers"] == 2
    assert step["carried"] == 4, step["failed_calls"]  # every call's frames found in a worker's record
    assert step["protocol_errors"] == 0, step["protocol_error_examples"]
    assert step["failed_calls"] == []
    assert step["redis_cpu_per_call_s"] >= 0
    assert step["cpu_per_call_s"] == pytest.approx(step["service_cpu_share"] / 4)
    assert "2 service workers on one port" in capacity.to_markdown(result)


def test_bigger_hosts_are_arithmetic_from_the_one_core_figures() -> None:
    step = {"calls": 120, "cpu_per_call_s": 0.004}
    result = {"steps": [step], "capacity": 120, "pinned": {"service": [0], "vobiz": [1]}}
    assert capacity.hosts(result) == [
        {"cores": 4, "calls_by_capacity": 480, "calls_by_cpu": 1000},
        {"cores": 8, "calls_by_capacity": 960, "calls_by_cpu": 2000},
        {"cores": 16, "calls_by_capacity": 1920, "calls_by_cpu": 4000},
    ]
    assert capacity.hosts({**result, "capacity": 0}) == []  # nothing passed: nothing to scale


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
