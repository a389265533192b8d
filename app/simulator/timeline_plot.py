"""Draw a ``CallRecording`` as one timeline figure (matplotlib ``Figure`` + Agg; no pyplot, no display).

Lanes, top to bottom: call events (clearAudio, protocol errors, hang-up, …), checkpoints
(sent tick → playedStream dot), caller speech, per-turn latency, agent audio. Each speech lane
shows its spans with the downsampled waveform envelope drawn inside them; barge-ins are red
vertical lines through every lane. x is seconds since the dial. The figure is 14×5 in at 100 dpi.
Labels are measured in pixels and truncated or dropped so that none overlap, whatever the length.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MultipleLocator

from app.simulator.recording import PCM, CallRecording, EventKind, TimelineEvent, TranscriptLine

__all__ = ["draw_timeline", "envelope", "spans"]

FIG_SIZE_IN = (14.0, 5.0)
DPI = 100
MARGINS = {"left": 0.075, "right": 0.985, "bottom": 0.1, "top": 0.8}
FONT_PT = 7.5
ENVELOPE_BINS = 2400  # more bins than the axes has pixels across
MIN_LABEL_CHARS = 6  # a label cut shorter than this is dropped

# lane centres (data y); a speech band spans centre ± BAND, its labels sit just above
Y_EVENTS, Y_CKPT, Y_CALLER, Y_LATENCY, Y_AGENT = 4.0, 3.1, 2.0, 1.05, 0.0
BAND = 0.32
Y_LIMITS = (Y_AGENT - 0.55, Y_EVENTS + 0.55)

CALLER_COLOR, AGENT_COLOR, GAP_COLOR = "#1f77b4", "#e07b00", "#f3d36b"
BARGE_COLOR, ERROR_COLOR, CLEAR_COLOR = "#d62728", "#c00000", "#7b3fa0"
ACK_COLOR, MUTED = "#2ca02c", "#666666"
LATENCY_COLORS = ((1000.0, "#2a7a2a"), (2000.0, "#c77700"), (float("inf"), "#c00000"))  # up to ms → colour
Speaker = Literal["caller", "agent"]
LANES: dict[Speaker, tuple[float, str, EventKind, EventKind]] = {  # y, colour, span start/end events
    "caller": (Y_CALLER, CALLER_COLOR, "caller_speech_start", "caller_speech_end"),
    "agent": (Y_AGENT, AGENT_COLOR, "agent_audio_start", "agent_audio_end"),
}
TICK_STEPS_S = (0.25, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)


def spans(
    recording: CallRecording, start: EventKind, end: EventKind, x_max: float
) -> list[tuple[float, float, dict[str, Any]]]:
    """(start s, end s, start event's detail) from paired start/end events, in time order.

    A start while a span is open is ignored; an unclosed start runs to ``x_max``.
    """
    out: list[tuple[float, float, dict[str, Any]]] = []
    opened: TimelineEvent | None = None
    for event in _by_time(recording.events):
        if event.kind == start and opened is None:
            opened = event
        elif event.kind == end and opened is not None:
            out.append((opened.t, max(event.t, opened.t), opened.detail))
            opened = None
    if opened is not None:
        out.append((opened.t, max(x_max, opened.t), opened.detail))
    return out


def envelope(track: PCM, sample_rate: int, bins: int = ENVELOPE_BINS) -> tuple[npt.NDArray[np.float64], ...]:
    """(bin centre times in s, peak |amplitude| per bin scaled to 0..1 by the track's own peak).

    The scale has a floor of −40 dBFS, so a near-silent track stays flat instead of being amplified.
    """
    if track.size == 0:
        return np.zeros(0), np.zeros(0)
    per_bin = max(1, -(-track.size // bins))
    padded = np.zeros(-(-track.size // per_bin) * per_bin, dtype=np.int16)
    padded[: track.size] = track
    blocks = padded.reshape(-1, per_bin)
    peak = np.maximum(blocks.max(axis=1).astype(np.int32), -blocks.min(axis=1).astype(np.int32))
    scale = max(float(peak.max()), 32768 * 0.01)
    times = (np.arange(peak.size) + 0.5) * per_bin / sample_rate
    return times.astype(np.float64), peak.astype(np.float64) / scale


def _by_time(events: list[TimelineEvent]) -> list[TimelineEvent]:
    return sorted(events, key=lambda e: e.t)


class _Labels:
    """Places text labels, measured in display pixels, so that no two on the same row overlap."""

    def __init__(self, ax: Axes, renderer: RendererBase) -> None:
        self.ax, self.renderer = ax, renderer
        self.taken: dict[float, list[tuple[float, float]]] = {}
        self.right_px = ax.get_window_extent(renderer).x1

    def place(self, x: float, rows: Sequence[float], text: str, max_px: float = np.inf, **style: Any) -> bool:
        """Put ``text`` at data x on the first free row (data y), cut to ``max_px``; False if nowhere."""
        text, dx = " ".join(text.split()), style.pop("dx", 3)
        for y in rows:
            label = self.ax.annotate(
                text,
                (x, y),
                xytext=(dx, 0),
                textcoords="offset points",
                fontsize=FONT_PT,
                va="bottom",
                annotation_clip=False,
                **style,
            )
            label.set_parse_math(False)
            box = label.get_window_extent(self.renderer)
            cut = len(text)
            while box.width > max_px and cut > MIN_LABEL_CHARS:
                cut = min(cut - 1, int(cut * max_px / box.width))
                label.set_text(text[:cut].rstrip() + "…")
                box = label.get_window_extent(self.renderer)
            if box.x1 > self.right_px:  # flip to the left of x rather than run off the figure
                label.set_horizontalalignment("right")
                label.xyann = (-3, 0)
                box = label.get_window_extent(self.renderer)
            busy = self.taken.setdefault(y, [])
            if (
                box.width > max_px
                or cut < min(MIN_LABEL_CHARS, len(text))  # cut too short to say anything
                or any(box.x0 < b + 6 and a < box.x1 + 6 for a, b in busy)
            ):
                label.remove()
                continue
            busy.append((box.x0, box.x1))
            return True
        return False


def _label_for(lines: list[TranscriptLine], t0: float, t1: float) -> str:
    """The first transcript line that starts inside [t0 − 0.5 s, t1]."""
    return next((line.text for line in lines if t0 - 0.5 <= line.t <= t1), "")


def _speech_lane(ax: Axes, labels: _Labels, recording: CallRecording, speaker: Speaker, x_max: float) -> None:
    y, color, start, end = LANES[speaker]
    said = [line for line in sorted(recording.transcript, key=lambda line: line.t) if line.speaker == speaker]
    px_per_s = ax.transData.transform((1, 0))[0] - ax.transData.transform((0, 0))[0]
    intervals = spans(recording, start, end, x_max)
    ax.broken_barh([(t0, t1 - t0) for t0, t1, _ in intervals], (y - BAND, 2 * BAND), color=color, alpha=0.18)
    for t0, t1, detail in intervals:
        # the emulator's text for this span, else the transcript line that starts in it
        text = str(detail.get("text") or "") or _label_for(said, t0, t1)
        if text:
            labels.place(t0, [y + BAND], text, max_px=(t1 - t0) * px_per_s - 4, color=color, dx=1)
    track = recording.caller if speaker == "caller" else recording.agent
    times, level = envelope(track, recording.sample_rate)
    ax.fill_between(times, y - BAND * level, y + BAND * level, color=color, lw=0, alpha=0.85)
    ax.axhline(y, color=color, lw=0.4, alpha=0.5)


def _latencies(ax: Axes, labels: _Labels, recording: CallRecording, dense: bool) -> None:
    turns = sorted(recording.turns, key=lambda t: t.caller_end)
    gaps = [(turn.caller_end, turn.latency) for turn in turns]
    ax.broken_barh(gaps, (Y_AGENT + BAND, Y_CALLER - Y_AGENT - 2 * BAND), color=GAP_COLOR, alpha=0.45)
    colors = [next(c for limit, c in LATENCY_COLORS if turn.latency * 1000 <= limit) for turn in turns]
    y = Y_LATENCY - 0.12
    ax.hlines([y] * len(turns), [t.caller_end for t in turns], [t.agent_start for t in turns], colors, lw=1.2)
    ends = [t for turn in turns for t in (turn.caller_end, turn.agent_start)]
    ax.vlines(ends, y - 0.06, y + 0.06, [c for c in colors for _ in (0, 1)], lw=1.2)
    for turn, color in zip(turns, colors, strict=True):
        ms = turn.latency * 1000
        text = f"{ms:.0f}" if dense else f"{ms:.0f} ms"
        mid, rows = (turn.caller_end + turn.agent_start) / 2, [Y_LATENCY, Y_LATENCY - 0.42]
        labels.place(mid, rows, text, color=color, fontweight="bold", ha="center", dx=0)


def _markers(ax: Axes, times: list[float], y: float, **style: Any) -> None:
    """One artist for all the markers of a kind (fast to draw even for hundreds)."""
    if times:
        ax.plot(times, [y] * len(times), ls="none", **style)


def _checkpoints(ax: Axes, recording: CallRecording) -> None:
    sent: dict[str, float] = {}
    ticks: list[float] = []
    acks: list[float] = []
    links: list[tuple[float, float]] = []
    for event in _by_time(recording.events):
        name = str(event.detail.get("name", ""))
        if event.kind == "checkpoint":
            sent[name] = event.t
            ticks.append(event.t)
        elif event.kind == "played_stream":
            if name in sent:
                links.append((sent.pop(name), event.t))
            acks.append(event.t)
    if links:
        ax.hlines([Y_CKPT] * len(links), *zip(*links, strict=True), color=ACK_COLOR, lw=1, alpha=0.6)
    _markers(ax, ticks, Y_CKPT, marker="|", ms=11, mew=1.4, color=MUTED)
    _markers(ax, acks, Y_CKPT, marker="o", ms=5.5, color=ACK_COLOR)


def _call_events(ax: Axes, labels: _Labels, recording: CallRecording) -> None:
    rows = [Y_EVENTS + 0.12, Y_EVENTS - 0.42]
    hangups, barge_ins = recording.events_of("hangup"), recording.events_of("barge_in")
    ax.vlines([e.t for e in barge_ins], *Y_LIMITS, color=BARGE_COLOR, lw=1.4, alpha=0.85, zorder=5)
    ax.vlines([e.t for e in hangups], *Y_LIMITS, color="black", lw=1.6, zorder=5)
    for event in hangups:  # labels claim room in order of importance
        labels.place(event.t, rows, f"hang-up ({event.detail.get('by', '?')})", color="black")
    errors = sorted(recording.protocol_errors, key=lambda e: e.t)
    _markers(ax, [e.t for e in errors], Y_EVENTS, marker="X", ms=9, color=ERROR_COLOR, zorder=6)
    for error in errors:
        labels.place(error.t, rows, error.rule, max_px=220, color=ERROR_COLOR, dx=5)
    clears = [e for e in _by_time(recording.events) if e.kind == "clear_audio"]
    _markers(ax, [e.t for e in clears], Y_EVENTS, marker="v", ms=7, color=CLEAR_COLOR)
    for event in clears:
        dropped = event.detail.get("dropped_s")
        text = f"clear −{float(dropped):.1f} s" if isinstance(dropped, int | float) else "clear"
        labels.place(event.t, rows, text, color=CLEAR_COLOR, dx=4)
    others = [e for e in _by_time(recording.events) if e.kind in ("socket_open", "stop", "dtmf")]
    _markers(ax, [e.t for e in others], Y_EVENTS, marker="^", ms=5, color=MUTED)
    for event in others:
        digit = event.detail.get("digit", event.detail.get("digits", ""))
        text = {"socket_open": "ws open", "stop": "stop"}.get(event.kind, f"dtmf {digit}")
        labels.place(event.t, rows, text, color=MUTED)


def _legend(fig: Figure) -> None:
    handles = [
        Patch(color=CALLER_COLOR, alpha=0.6, label="caller speech"),
        Patch(color=AGENT_COLOR, alpha=0.6, label="agent audio"),
        Patch(color=GAP_COLOR, alpha=0.6, label="latency (caller end → agent start)"),
        Line2D([], [], color=BARGE_COLOR, lw=1.4, label="barge-in"),
        Line2D([], [], color=MUTED, marker="|", ms=9, mew=1.4, ls="none", label="checkpoint sent"),
        Line2D([], [], color=ACK_COLOR, marker="o", ms=5.5, ls="none", label="playedStream ack"),
        Line2D([], [], color=CLEAR_COLOR, marker="v", ms=7, ls="none", label="clearAudio"),
        Line2D([], [], color=ERROR_COLOR, marker="X", ms=8, ls="none", label="protocol error"),
        Line2D([], [], color="black", lw=1.6, label="hang-up"),
    ]
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.53, 0.895),
        ncol=len(handles),
        fontsize=8,
        frameon=False,
        handlelength=1.6,
        columnspacing=1.4,
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _titles(fig: Figure, recording: CallRecording, summary: Mapping[str, Any], x_max: float) -> None:
    ok = bool(summary["ok"])
    verdict = "PASS" if ok else f"FAIL ({_plural(len(summary['protocol_errors']), 'protocol error')})"
    d = recording.duration or _x_extent(recording, floor=0.0)
    shown = f"{d:.1f} s" if d < 60 else f"{int(d // 60)} min {d % 60:04.1f} s"
    fig.text(
        0.075,
        0.965,
        f"Call {recording.call_id}  ·  {shown}",
        fontsize=12,
        fontweight="bold",
        va="top",
        parse_math=False,
    )
    fig.text(
        0.985,
        0.965,
        verdict,
        fontsize=12,
        fontweight="bold",
        va="top",
        ha="right",
        color=ACK_COLOR if ok else ERROR_COLOR,
    )
    p50, p95 = summary["latency_p50_ms"], summary["latency_p95_ms"]
    latency = "latency —" if p50 is None else f"latency p50 {p50:.0f} ms, p95 {p95:.0f} ms"
    details = "  ·  ".join(
        [
            _plural(summary["turns"], "turn"),
            latency,
            _plural(summary["barge_ins"], "barge-in"),
            f"{summary['clear_audio']} clearAudio",
            f"checkpoints {summary['checkpoints_acknowledged']}/{summary['checkpoints_sent']} acked",
            f"ended: {recording.end_reason or '?'}",
        ]
    )
    fig.text(0.075, 0.915, details, fontsize=9, va="top", color="#333333", parse_math=False)


def _x_extent(recording: CallRecording, floor: float = 1.0) -> float:
    """The time axis end (s): the call's duration, or the longest track / last event if later."""
    track_s = max(recording.caller.size, recording.agent.size) / recording.sample_rate
    last_event = max((e.t for e in recording.events), default=0.0)
    return max(recording.duration, track_s, last_event, floor)


def _axes(fig: Figure, x_max: float, dense: bool) -> Axes:
    ax = fig.add_subplot()
    ax.set_xlim(0, x_max * 1.01)
    ax.set_ylim(*Y_LIMITS)
    lanes = ["Agent audio", "Latency (ms)" if dense else "Latency", "Caller", "Checkpoints", "Events"]
    ax.set_yticks([Y_AGENT, Y_LATENCY, Y_CALLER, Y_CKPT, Y_EVENTS], lanes)
    step = next((s for s in TICK_STEPS_S if x_max / s <= 14), TICK_STEPS_S[-1])
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_minor_locator(MultipleLocator(step / 5 if step < 60 else step / 4))
    if x_max < 90:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
        ax.set_xlabel("time since dial (s)", fontsize=9)
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{int(x) // 60}:{int(x) % 60:02d}"))
        ax.set_xlabel("time since dial (min:s)", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(axis="x", which="major", color="#dddddd", lw=0.6)
    ax.grid(axis="x", which="minor", color="#f0f0f0", lw=0.4)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


def draw_timeline(recording: CallRecording, path: Path, summary: Mapping[str, Any]) -> None:
    """Render the timeline PNG (14×5 in, 100 dpi → 1400×500 px) to ``path``.

    ``summary`` is ``report.summarize(recording)`` (used for the title lines).
    """
    x_max = _x_extent(recording)
    fig = Figure(figsize=FIG_SIZE_IN, dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    fig.subplots_adjust(**MARGINS)
    # more than one turn per 60 px of axis: latency labels drop their " ms" unit (it moves to the lane name)
    dense = len(recording.turns) * 60 > fig.get_figwidth() * DPI * (MARGINS["right"] - MARGINS["left"])
    ax = _axes(fig, x_max, dense)
    with warnings.catch_warnings():  # a caller's emoji/CJK text must not abort the report
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from", category=UserWarning)
        labels = _Labels(ax, canvas.get_renderer())  # type: ignore[no-untyped-call]  # unannotated upstream
        _call_events(ax, labels, recording)
        _checkpoints(ax, recording)
        _speech_lane(ax, labels, recording, "caller", x_max)
        _speech_lane(ax, labels, recording, "agent", x_max)
        _latencies(ax, labels, recording, dense)
        _legend(fig)
        _titles(fig, recording, summary, x_max)
        fig.savefig(path, format="png", dpi=DPI)
