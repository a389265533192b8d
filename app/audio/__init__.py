"""Audio formats, codecs, resampling and framing for Vobiz media streams (pure, sans-IO)."""

from app.audio.codec import decode, detect_l16_byte_order, encode
from app.audio.formats import (
    INBOUND_FORMATS,
    L16_8K,
    L16_16K,
    L16_24K,
    MULAW_8K,
    OUTBOUND_FORMATS,
    AudioFormat,
)
from app.audio.frames import FrameSlicer, InboundDecoder, OutboundEncoder
from app.audio.resample import StreamResampler

__all__ = [
    "INBOUND_FORMATS",
    "L16_8K",
    "L16_16K",
    "L16_24K",
    "MULAW_8K",
    "OUTBOUND_FORMATS",
    "AudioFormat",
    "FrameSlicer",
    "InboundDecoder",
    "OutboundEncoder",
    "StreamResampler",
    "decode",
    "detect_l16_byte_order",
    "encode",
]
