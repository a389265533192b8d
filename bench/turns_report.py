"""``bench.turns``'s tables: figures per profile × behaviour, and the issue's targets met or missed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.harness import fmt_ms, percentile
from bench.turns_measure import CallFigures

REPLY = ("a", "b0.5", "b1", "b1.5", "c", "d")
OVER = ("e", "f", "g")


def summarise(calls: Sequence[CallFigures]) -> dict[str, Any]:
    """One behaviour under one profile: times in ms."""

    def ms(values: list[float | None]) -> list[float]:
        return [v * 1000 for v in values if v is not None]

    latency = ms([c.latency_s for c in calls])
    reaction = ms([c.reaction_s for c in calls])
    dead = ms([c.dead_air_s for c in calls])
    wasted = [c.preemptive_wasted for c in calls if c.preemptive_wasted is not None]
    return {
        "calls": len(calls),
        "latency_ms": {"p50": percentile(latency, 50), "p95": percentile(latency, 95), "n": len(latency)},
        "pauses": sum(c.pauses for c in calls),
        "replies_in_pauses": sum(c.replies_in_pauses for c in calls),
        "cuts": sum(c.cuts for c in calls),
        "calls_cut": sum(1 for c in calls if c.cuts),
        "false_cuts": sum(1 for c in calls if c.false_cut),
        "dead_air_ms": {"p50": percentile(dead, 50), "p95": percentile(dead, 95),
                        "max": max(dead, default=None), "n": len(dead)},
        "reaction_ms": {"p50": percentile(reaction, 50), "p95": percentile(reaction, 95), "n": len(reaction)},
        "yielded": sum(1 for c in calls if c.yielded),
        "llm_requests": sum(c.llm_requests for c in calls),
        "replies_played": sum(c.replies_played for c in calls),
        # a caller who says one thing hears one answer: more is an answer to part of the turn
        "extra_replies": sum(max(0, c.replies_played - 1) for c in calls),
        "wasted_llm": sum(c.llm_requests - c.replies_played for c in calls),
        "preemptive_wasted": sum(wasted) if wasted else None,
        "off_script": sum(1 for c in calls if c.off_script),
    }  # fmt: skip


def behaviour_table(profile: str, rows: dict[str, dict[str, Any]], titles: dict[str, str]) -> str:
    lines = [
        f"**{profile}**",
        "",
        "| behaviour | calls | reply p50 ms | p95 ms | replies in pauses | extra replies "
        "| cuts (calls cut) | false cuts | dead air p50 ms | p95 ms | barge-in p50 ms | p95 ms | yielded "
        "| LLM requests − replies played "
        "= wasted | preemptive_wasted |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lat, dead, rea = r["latency_ms"], r["dead_air_ms"], r["reaction_ms"]
        over = name in OVER
        pauses = f"{r['replies_in_pauses']} / {r['pauses']}" if r["pauses"] else "—"
        lines.append(
            f"| {name}: {titles[name]} | {r['calls']} | {fmt_ms(lat['p50'])} | {fmt_ms(lat['p95'])} "
            f"| {pauses} "
            f"| {r['extra_replies'] if name in REPLY else '—'} "
            f"| {r['cuts']} ({r['calls_cut']}) | {r['false_cuts'] if name in ('e', 'f') else '—'} "
            f"| {fmt_ms(dead['p50']) if over else '—'} | {fmt_ms(dead['p95']) if over else '—'} "
            f"| {fmt_ms(rea['p50'])} | {fmt_ms(rea['p95'])} | {r['yielded'] if name == 'g' else '—'} "
            f"| {r['llm_requests']} − {r['replies_played']} = {r['wasted_llm']} "
            f"| {'—' if r['preemptive_wasted'] is None else r['preemptive_wasted']} |"
        )
    off = {name: r["off_script"] for name, r in rows.items() if r.get("off_script")}
    if off:
        lines += ["", "Calls where the sound fell on another reply than the long answer (misheard question): "
                  + ", ".join(f"{name} {n}" for name, n in off.items())]  # fmt: skip
    return "\n".join(lines)


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "missed")


def targets(result: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each target row of issue 12 with the measured figure, per profile where it applies."""
    out: list[dict[str, Any]] = []
    latency_targets = {"zero": (300.0, 450.0), "realistic": (700.0, None), "embedded": (900.0, None)}
    names = {"zero": "zero-latency providers", "realistic": "realistic cloud latencies",
             "embedded": "embedded engines"}  # fmt: skip
    for profile, rows in result.items():
        a = rows.get("a")
        if a is not None:
            p50_max, p95_max = latency_targets[profile]
            lat = a["latency_ms"]
            ok = lat["p50"] is not None and lat["p50"] <= p50_max
            if p95_max is not None:
                ok = ok and lat["p95"] is not None and lat["p95"] <= p95_max
            want = f"p50 ≤ {p50_max:g} ms" + (f", p95 ≤ {p95_max:g} ms" if p95_max else "")
            got = f"p50 {fmt_ms(lat['p50'])}, p95 {fmt_ms(lat['p95'])} ms"
            out.append({"target": f"complete question, {names[profile]}", "want": want, "measured": got,
                        "met": ok})  # fmt: skip
        inside = [rows[b] for b in ("b0.5", "b1") if b in rows]
        if inside:
            n = sum(r["replies_in_pauses"] for r in inside)
            total = sum(r["pauses"] for r in inside)
            out.append({"target": f"unfinished phrase + pause ≤ 1.2 s (0.5, 1.0 s), {names[profile]}",
                        "want": "0 replies inside the pause", "measured": f"{n} of {total} pauses",
                        "met": n == 0})  # fmt: skip
        limit = 800.0 if profile == "embedded" else 500.0  # Whisper has no interim words
        for b, what in (("e", "backchannel"), ("f", "noise")):
            r = rows.get(b)
            if r is None:
                continue
            dead = r["dead_air_ms"]
            never = r["calls_cut"] == 0
            worst = dead["max"]
            # a call cut and never resumed has no dead-air figure: it misses
            ok = never or (dead["n"] == r["calls"] and worst is not None and worst <= limit)
            cut = f"{r['calls_cut']} of {r['calls']} cut"
            got = "no cut" if never else f"dead air p50 {fmt_ms(dead['p50'])}, max {fmt_ms(worst)} ms; {cut}"
            want = f"dead air ≤ {limit:g} ms, or no cut"
            out.append({"target": f"{what} over the agent, {names[profile]}", "want": want, "measured": got,
                        "met": ok})  # fmt: skip
        g = rows.get("g")
        if g is not None:
            rea = g["reaction_ms"]
            ok = rea["p95"] is not None and rea["p95"] <= 150.0 and g["yielded"] == g["calls"]
            got = f"p95 {fmt_ms(rea['p95'])} ms, yielded {g['yielded']} of {g['calls']}"
            want = "barge-in p95 ≤ 150 ms, yields"
            out.append({"target": f"real interruption, {names[profile]}", "want": want, "measured": got,
                        "met": ok})  # fmt: skip
    return out


def targets_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| target | wanted | measured | |", "|---|---|---|---|"]
    lines += [f"| {r['target']} | {r['want']} | {r['measured']} | {_verdict(r['met'])} |" for r in rows]
    return "\n".join(lines)
