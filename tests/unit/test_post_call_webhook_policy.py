"""The post-call webhook's pure parts: the signature, the retry policy (tenacity, driven with a
sleep that records its waits instead of waiting), the payload, and the summary's parsing."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from app.postcall.payload import encode, payload
from app.postcall.policy import RetryPolicy, TryAgain, Verdict, verdict
from app.postcall.signing import sign, verify
from app.postcall.summary import parse

BODY = b'{"call_id":"c-1","transcript":[]}'


def test_the_signature_is_the_hex_hmac_sha256_of_the_raw_body() -> None:
    expected = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, "s3cret") == f"sha256={expected}"
    assert verify(BODY, "s3cret", f"sha256={expected}")
    assert not verify(BODY + b" ", "s3cret", f"sha256={expected}")  # one byte more
    assert not verify(BODY, "other", f"sha256={expected}")
    assert not verify(BODY, "s3cret", expected)  # the prefix is part of the header


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Verdict.DELIVERED),
        (202, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (400, Verdict.FINAL),
        (401, Verdict.FINAL),
        (404, Verdict.FINAL),
        (422, Verdict.FINAL),
        (301, Verdict.FINAL),  # redirects are not followed
    ],
)
def test_which_answers_are_retried(status: int, expected: Verdict) -> None:
    assert verdict(status) is expected


class Waits:
    """tenacity's sleep: records each wait, waits for nothing."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.tries = 0

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def attempt_all(policy: RetryPolicy, waits: Waits, spent: float, fail: type[Exception]) -> None:
    """Runs attempts that all raise ``fail`` (tenacity raises it at the end); ``waits.tries``
    counts them."""
    async for attempt in policy.retrying(spent, waits):
        with attempt:
            waits.tries += 1
            raise fail()


async def attempts_until_given_up(policy: RetryPolicy, spent: float = 0.0) -> tuple[int, Waits]:
    waits = Waits()
    with pytest.raises(TryAgain):
        await attempt_all(policy, waits, spent, TryAgain)
    return waits.tries, waits


async def test_the_default_policy_retries_for_at_least_ten_minutes_with_capped_jittered_back_off() -> None:
    policy = RetryPolicy()
    assert policy.window_s >= 600
    tries, waits = await attempts_until_given_up(policy)
    assert sum(waits.waits) >= 600  # kept trying for the whole window
    assert sum(waits.waits[:-1]) < policy.window_s  # and stopped once it had passed
    assert tries == len(waits.waits) + 1
    # exponential from initial_s (plus up to initial_s of jitter), then capped
    for n, wait in enumerate(waits.waits[:4]):
        base = policy.initial_s * 2**n
        assert base <= wait <= base + policy.initial_s
    assert max(waits.waits) <= policy.max_s + policy.initial_s
    assert waits.waits[-1] >= policy.max_s
    assert len(set(waits.waits)) > len(waits.waits) // 2  # jittered: the capped waits differ


async def test_the_window_continues_after_a_restart() -> None:
    policy = RetryPolicy(window_s=600, initial_s=1, max_s=10)
    _, fresh = await attempts_until_given_up(policy)
    _, resumed = await attempts_until_given_up(policy, spent=550)
    assert sum(fresh.waits) >= 600
    assert 50 <= sum(resumed.waits) < 100  # the 50 s left, not another 10 minutes
    tries, none_left = await attempts_until_given_up(policy, spent=900)
    assert (tries, none_left.waits) == (1, [])  # past its window: one last attempt


async def test_a_success_or_a_final_refusal_ends_the_retries() -> None:
    policy = RetryPolicy(initial_s=0.5, max_s=4)
    waits, tries = Waits(), 0
    async for attempt in policy.retrying(0, waits):
        with attempt:
            tries += 1
            if tries < 3:
                raise TryAgain(error="ConnectError")
    assert tries == 3
    assert len(waits.waits) == 2

    class Refused(Exception):
        pass

    waits = Waits()
    with pytest.raises(Refused):
        await attempt_all(policy, waits, 0, Refused)
    assert (waits.tries, waits.waits) == (1, [])


def test_the_payload_carries_what_other_features_add_and_builds_the_recording_url() -> None:
    record = {
        "call_id": "c-9",
        "persona": "clinic",
        "caller": "14155550199",
        "called": "",
        "started_at": 100.0,
        "ended_at": 160.5,
        "duration": 60.5,
        "end_reason": "hangup",
        "transcript": [{"t": 1.0, "speaker": "agent", "text": "Hello", "interrupted": True}],
        "tool_calls": [{"id": "t1", "name": "end_call", "arguments": "{}"}],
        "dtmf": [{"t": 3.0, "digits": "1"}],
        "usage": {"stt_seconds": 12.5},
        "recording": "c-9.wav",
        "summary": "Booked.",
        "disposition": "booked",
        "stats": {"frames_in": 1},
    }
    body = payload(record, "https://agent.example.com")
    assert body["recording_url"] == "https://agent.example.com/calls/c-9/recording"
    assert (body["caller"], body["called"]) == ("+14155550199", None)
    assert body["dtmf"] == [{"t": 3.0, "digits": "1"}]
    assert body["usage"] == {"stt_seconds": 12.5}
    assert body["transcript"] == [{"t": 1.0, "speaker": "agent", "text": "Hello", "interrupted": True}]
    assert (body["summary"], body["disposition"]) == ("Booked.", "booked")
    assert "stats" not in body
    # a record from before recordings, DTMF and usage existed
    older = {k: v for k, v in record.items() if k not in ("dtmf", "usage", "recording")}
    body = payload(older, "https://agent.example.com")
    assert (body["dtmf"], body["usage"], body["recording_url"]) == ([], {}, None)
    assert encode(body) == encode(dict(reversed(body.items())))  # the same bytes, whatever the order


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The caller booked a table.\nDISPOSITION: booked", ("The caller booked a table.", "booked")),
        ("Wants a call back.\nDISPOSITION: Callback.", ("Wants a call back.", "callback")),
        ("Not keen.\nDISPOSITION: not interested", ("Not keen.", "not_interested")),
        ("Odd call.\nDISPOSITION: angry", ("Odd call.", None)),  # not on the list: dropped
        ("No marker at all.", ("No marker at all.", None)),
        ("", (None, None)),
    ],
)
def test_the_summary_and_a_disposition_from_the_list(
    text: str, expected: tuple[str | None, str | None]
) -> None:
    assert parse(text, ["booked", "callback", "not_interested"], True) == expected


def test_a_persona_that_wants_only_a_disposition_gets_no_summary() -> None:
    assert parse("Booked.\nDISPOSITION: booked", ["booked"], False) == (None, "booked")
