"""Per-frame CPU cost of the inbound path, in-process: one ``media`` frame as the fake Vobiz
sends it → ``parse_inbound`` (JSON + base64) → ``InboundDecoder`` (decode + resample to 16 kHz)
→ ``WebRtcVad.is_voiced``, the work ``CallSession`` and ``Conversation`` do for every 20 ms
frame before the speech-to-text stream gets it.

Each stage is timed per frame with ``time.perf_counter_ns`` (``bench.codec``'s ``_measure``:
warm-up, GC off); the whole path is also timed as CPU time (``time.process_time``) over all the
frames with GC on, as in the service.
"""

from __future__ import annotations

import time
from typing import Any

from app.audio.codec import encode
from app.audio.formats import INBOUND_FORMATS, AudioFormat
from app.audio.frames import InboundDecoder
from app.providers.vad import WebRtcVad
from app.simulator.stream_audio import media_frame
from app.telephony.events import MediaEvent, parse_inbound
from bench.codec import PIPELINE_RATE, WARMUP, _label, _measure, _speech_like

STREAM_ID = "3f6c2a9e-5b1d-4e8a-9c7f-0d2b4a6e8c1f"  # as long as a real streamId


def _messages(fmt: AudioFormat) -> list[str]:
    """One second of speech-like audio as 50 ``media`` frames, in the fake Vobiz's JSON."""
    payload = encode(_speech_like(fmt.sample_rate, 1.0, seed=fmt.sample_rate), fmt)
    size = fmt.frame_bytes()
    chunks = [payload[i : i + size] for i in range(0, len(payload), size)]
    return [media_frame(STREAM_ID, n, chunk) for n, chunk in enumerate(chunks, 1)]


def _media(message: str) -> MediaEvent:
    event = parse_inbound(message)
    assert isinstance(event, MediaEvent)
    return event


def measure(fmt: AudioFormat, frames: int) -> dict[str, Any]:
    """Per-stage and whole-path µs per frame for one inbound format."""
    messages = _messages(fmt)
    n = len(messages)
    payloads = [_media(m).payload for m in messages]
    decoder = InboundDecoder(fmt, PIPELINE_RATE)
    pcms = [decoder(p) for p in payloads]
    vad = WebRtcVad(2, PIPELINE_RATE)
    stages = {
        "parse": _measure(lambda i: parse_inbound(messages[i % n]), frames),
        "decode_resample": _measure(lambda i: decoder(payloads[i % n]), frames),
        "vad": _measure(lambda i: vad.is_voiced(pcms[i % n]), frames),
    }
    path_decoder = InboundDecoder(fmt, PIPELINE_RATE)

    def path(i: int) -> bool:
        return vad.is_voiced(path_decoder(_media(messages[i % n]).payload))

    stages["path"] = _measure(path, frames)
    for i in range(WARMUP):
        path(i)
    start = time.process_time()
    for i in range(frames):
        path(i)
    cpu_us = (time.process_time() - start) / frames * 1e6
    return {
        "format": _label(fmt),
        "content_type": fmt.content_type,
        "message_bytes": len(messages[0]),
        "stages_us": stages,
        "path_cpu_us": cpu_us,
    }


def run(frames: int) -> list[dict[str, Any]]:
    return [measure(fmt, frames) for fmt in INBOUND_FORMATS]


def to_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| inbound format | parse µs | decode+resample µs | VAD µs | whole path p50 µs | p95 µs "
        "| CPU µs/frame | % of a core per call |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        s = r["stages_us"]
        lines.append(
            f"| {r['format']} | {s['parse']['mean_us']:.1f} | {s['decode_resample']['mean_us']:.1f} "
            f"| {s['vad']['mean_us']:.1f} | {s['path']['p50_us']:.1f} | {s['path']['p95_us']:.1f} "
            f"| {r['path_cpu_us']:.1f} | {r['path_cpu_us'] * 50 / 1e4:.2f} |"
        )
    return "\n".join(lines)
