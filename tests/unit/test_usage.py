"""The usage counts and the cost arithmetic (``app.pipeline.usage``), the PRICES setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import DEFAULT_TTS_PER_MILLION_CHARACTERS, Settings
from app.main import price_table
from app.pipeline.usage import CallUsage, LLMPrice, Prices, summed_usage, usage_summary

PRICES = Prices(
    stt_per_minute={"deepgram": 0.006},
    llm_per_million_tokens={"gpt-4o-mini": LLMPrice(0.15, 0.60), "big": LLMPrice(2.5, 10.0)},
    tts_per_million_characters={"deepgram": 30.0, "piper": 0.0},
)


def a_call() -> CallUsage:
    usage = CallUsage("deepgram", 16000)
    usage.stt_samples = 16000 * 90  # a minute and a half of audio sent
    usage.llm_requests = 4
    usage.add_llm("gpt-4o-mini", 1000, 200)
    usage.add_llm("gpt-4o-mini", 1500, 100)
    usage.add_llm("big", 2_000_000, 0)
    usage.add_tts("deepgram", "aura-2-thalia-en", 600)
    usage.add_tts("deepgram", "", 400)  # the provider's default voice
    usage.add_tts("piper", "", 5000)
    return usage


def test_each_part_is_priced_by_its_unit() -> None:
    summary = usage_summary(a_call(), PRICES, preemptive_wasted=1)
    assert summary["stt"] == {"deepgram": {"seconds": 90.0, "cost_usd": 0.009}}  # 1.5 min x 0.006
    assert summary["llm"]["gpt-4o-mini"] == {
        "input_tokens": 2500,
        "output_tokens": 300,
        "requests": 2,
        "cost_usd": 0.000555,  # 2500 x 0.15e-6 + 300 x 0.60e-6
    }
    assert summary["llm"]["big"]["cost_usd"] == 5.0  # 2M input tokens x 2.5 per 1M
    assert summary["tts"]["deepgram"] == {
        "characters": 1000,
        "voices": {"aura-2-thalia-en": 600, "default": 400},
        "cost_usd": 0.03,  # 1000 x 30e-6
    }
    assert summary["tts"]["piper"]["cost_usd"] == 0.0  # an embedded voice costs nothing
    assert summary["cost_usd"] == pytest.approx(0.009 + 0.000555 + 5.0 + 0.03)
    totals = {
        k: summary[k] for k in ("stt_seconds", "llm_input_tokens", "llm_output_tokens", "tts_characters")
    }
    assert totals == {"stt_seconds": 90.0, "llm_input_tokens": 2_002_500, "llm_output_tokens": 300,
                      "tts_characters": 6000}  # fmt: skip
    assert (summary["llm_requests"], summary["llm_requests_reported"], summary["preemptive_wasted"]) == (
        4,
        3,
        1,
    )
    assert summary["unpriced"] == []


def test_a_name_without_a_price_is_listed_and_left_out_of_the_cost() -> None:
    usage = CallUsage("whisper", 16000)
    usage.stt_samples = 16000 * 60
    usage.add_llm("gpt-6-luna", 1_000_000, 1_000_000)
    usage.add_tts("openai", "alloy", 1_000_000)
    summary = usage_summary(usage, PRICES)
    assert summary["unpriced"] == ["stt:whisper", "llm:gpt-6-luna", "tts:openai"]
    assert summary["cost_usd"] == 0.0
    assert summary["llm"]["gpt-6-luna"]["input_tokens"] == 1_000_000  # still counted


def test_a_call_that_used_nothing_costs_nothing() -> None:
    summary = usage_summary(CallUsage("deepgram", 16000), PRICES)
    assert (summary["cost_usd"], summary["stt"], summary["llm"], summary["tts"]) == (0.0, {}, {}, {})


def test_two_parts_of_a_reconnected_call_add_up() -> None:
    first = usage_summary(a_call(), PRICES, preemptive_wasted=1)
    later = CallUsage("deepgram", 16000)
    later.stt_samples = 16000 * 30
    later.add_llm("gpt-4o-mini", 500, 50)
    later.add_llm("other", 10, 10)
    second = usage_summary(later, PRICES)
    both = summed_usage(first, second)
    assert both["stt_seconds"] == 120.0
    assert both["stt"]["deepgram"] == {"seconds": 120.0, "cost_usd": 0.012}
    assert both["llm"]["gpt-4o-mini"]["input_tokens"] == 3000
    assert both["llm"]["other"]["output_tokens"] == 10
    assert both["unpriced"] == ["llm:other"]
    assert both["cost_usd"] == pytest.approx(first["cost_usd"] + second["cost_usd"])
    assert summed_usage({}, second) == second
    assert summed_usage(first, {}) == first


def test_prices_setting_adds_to_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PRICES", '{"llm": {"my-model": {"input": 0.2, "output": 0.8}}, "tts": {"deepgram": 15}}'
    )
    prices = price_table(Settings().prices)
    assert prices.llm_per_million_tokens["my-model"] == LLMPrice(0.2, 0.8)
    assert prices.llm_per_million_tokens["gpt-4o-mini"] == LLMPrice(0.15, 0.60)  # a default kept
    assert prices.tts_per_million_characters["deepgram"] == 15.0  # a default replaced
    assert prices.tts_per_million_characters["piper"] == DEFAULT_TTS_PER_MILLION_CHARACTERS["piper"] == 0.0
    assert prices.stt_per_minute["whisper"] == 0.0


@pytest.mark.parametrize(
    "bad", ['{"tts": {"deepgram": -1}}', '{"llm": {"m": {"input": 1}}}', '{"stt_price": {}}', "not json"]
)
def test_a_bad_price_table_is_refused(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("PRICES", bad)
    with pytest.raises((ValidationError, ValueError)):
        Settings()
