"""What a call used of the paid services, and what that is estimated to cost.

``CallUsage`` is one call's raw counts, written only by that call's own tasks: caller audio sent
to the recogniser (samples, one integer add per 20 ms frame), language-model tokens as the API
reported them (per model), characters sent to a voice for synthesis (per provider and voice).
``usage_summary`` turns the counts and a ``Prices`` table into the JSON-ready ``usage`` of the
call record; the arithmetic is pure.

A language-model request closed before its end (a barge-in, a discarded preemptive reply) gets no
usage report from the API: it is counted in ``llm_requests`` but not in ``llm_requests_reported``,
and its tokens are not in the figures (the provider bills them). A fixed line served from the
line cache costs nothing and counts no characters; the call that renders it counts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_VOICE = "default"  # the voice key of a synthesizer asked for its default voice


@dataclass(frozen=True, slots=True)
class LLMPrice:
    input_per_million: float  # USD per 1,000,000 input (prompt) tokens
    output_per_million: float  # USD per 1,000,000 output (completion) tokens


@dataclass(frozen=True, slots=True)
class Prices:
    """USD prices by provider name (``SpeechToText.name``, ``SpeechSynthesizer.name``) and by
    model name (as the persona asks for it). A name missing here has no known price: its cost
    is left out of ``cost_usd`` and the name is listed in ``unpriced``."""

    stt_per_minute: Mapping[str, float] = field(default_factory=dict)
    llm_per_million_tokens: Mapping[str, LLMPrice] = field(default_factory=dict)
    tts_per_million_characters: Mapping[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class CallUsage:
    """One call's counts. ``stt_samples`` at ``stt_rate`` Hz went to recogniser ``stt_provider``."""

    stt_provider: str = ""
    stt_rate: int = 16000
    stt_samples: int = 0
    llm_requests: int = 0  # requests started, reported or not
    # by model: [input tokens, output tokens, requests whose usage was reported]
    llm: dict[str, list[int]] = field(default_factory=dict)
    tts: dict[tuple[str, str], int] = field(default_factory=dict)  # by (provider, voice): characters

    def add_llm(self, model: str, input_tokens: int, output_tokens: int) -> None:
        counts = self.llm.setdefault(model, [0, 0, 0])
        counts[0] += max(0, input_tokens)
        counts[1] += max(0, output_tokens)
        counts[2] += 1

    def add_tts(self, provider: str, voice: str, characters: int) -> None:
        key = (provider, voice or DEFAULT_VOICE)
        self.tts[key] = self.tts.get(key, 0) + characters

    @property
    def stt_seconds(self) -> float:
        return self.stt_samples / self.stt_rate if self.stt_rate > 0 else 0.0


def usage_summary(usage: CallUsage, prices: Prices, preemptive_wasted: int = 0) -> dict[str, Any]:
    """The record's ``usage``: totals, the estimated ``cost_usd`` and a per-provider breakdown
    (``stt`` by provider, ``llm`` by model, ``tts`` by provider with ``voices``). Costs are
    rounded to 1e-6 USD, seconds to the millisecond."""
    unpriced: list[str] = []
    stt: dict[str, Any] = {}
    if usage.stt_samples and usage.stt_provider:
        seconds = usage.stt_seconds
        per_minute = prices.stt_per_minute.get(usage.stt_provider)
        if per_minute is None:
            unpriced.append(f"stt:{usage.stt_provider}")
        cost = seconds / 60 * (per_minute or 0.0)
        stt[usage.stt_provider] = {"seconds": round(seconds, 3), "cost_usd": _usd(cost)}
    llm: dict[str, Any] = {}
    for model, (tokens_in, tokens_out, reported) in sorted(usage.llm.items()):
        price = prices.llm_per_million_tokens.get(model)
        if price is None:
            unpriced.append(f"llm:{model}")
            cost = 0.0
        else:
            cost = (tokens_in * price.input_per_million + tokens_out * price.output_per_million) / 1e6
        llm[model] = {"input_tokens": tokens_in, "output_tokens": tokens_out, "requests": reported,
                      "cost_usd": _usd(cost)}  # fmt: skip
    tts: dict[str, Any] = {}
    for (provider, voice), characters in sorted(usage.tts.items()):
        entry = tts.setdefault(provider, {"characters": 0, "voices": {}, "cost_usd": 0.0})
        entry["characters"] += characters
        entry["voices"][voice] = entry["voices"].get(voice, 0) + characters
    for provider, entry in tts.items():
        per_million = prices.tts_per_million_characters.get(provider)
        if per_million is None:
            unpriced.append(f"tts:{provider}")
        entry["cost_usd"] = _usd(entry["characters"] * (per_million or 0.0) / 1e6)
    total = sum(e["cost_usd"] for part in (stt, llm, tts) for e in part.values())
    reported = sum(counts[2] for counts in usage.llm.values())
    return {
        "stt_seconds": round(usage.stt_seconds, 3),
        "llm_input_tokens": sum(counts[0] for counts in usage.llm.values()),
        "llm_output_tokens": sum(counts[1] for counts in usage.llm.values()),
        "llm_requests": usage.llm_requests,
        "llm_requests_reported": reported,
        "tts_characters": sum(usage.tts.values()),
        "preemptive_wasted": preemptive_wasted,
        "cost_usd": _usd(total),
        "unpriced": unpriced,
        "stt": stt,
        "llm": llm,
        "tts": tts,
    }


def summed_usage(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Two parts of one call's ``usage`` (a reconnect continues a record) as one: numbers are
    added at every depth, ``unpriced`` lists joined; an empty part changes nothing."""
    if not a:
        return dict(b)
    if not b:
        return dict(a)
    out: dict[str, Any] = dict(a)
    for key, value in b.items():
        mine = out.get(key)
        if isinstance(value, Mapping) and isinstance(mine, Mapping):
            out[key] = summed_usage(mine, value)
        elif isinstance(value, list) and isinstance(mine, list):
            out[key] = mine + [v for v in value if v not in mine]
        elif _is_number(value) and _is_number(mine):
            total = mine + value
            out[key] = round(total, 6) if isinstance(total, float) else total
        else:
            out[key] = value
    return out


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _usd(value: float) -> float:
    return round(value, 6)
