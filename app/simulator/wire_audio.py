"""The fake Vobiz's own audio codec: G.711 mu-law from the standard's formula, L16 by byte order.

The app's codec (``app.audio.codec``) uses ``audioop``; the emulator must not share it, or a
codec bug would cancel out end to end. Here mu-law decoding follows ITU-T G.711 (sign, 3-bit
segment, 4-bit step, bias 0x84) and encoding picks the nearest of the 256 decoded levels, a
different method that ``tests/unit/test_wire_audio.py`` checks against ``audioop``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["decode_wire", "encode_wire"]

Int16 = npt.NDArray[np.int16]


def _mulaw_levels() -> Int16:
    codes = np.arange(256)
    u = ~codes & 0xFF
    magnitude = ((((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


_LEVELS = _mulaw_levels()  # code → sample
_ORDER = np.argsort(_LEVELS, kind="stable")
_SORTED = _LEVELS[_ORDER].astype(np.int32)
_MIDPOINTS = (_SORTED[:-1] + _SORTED[1:]) / 2  # boundaries between neighbouring levels


def decode_wire(payload: bytes, encoding: str, byte_order: Literal["little", "big"] = "little") -> Int16:
    """Samples from a ``playAudio``/``media`` payload: ``"mulaw"`` or ``"l16"`` in ``byte_order``."""
    if encoding == "mulaw":
        return _LEVELS[np.frombuffer(payload, dtype=np.uint8)]
    dtype = "<i2" if byte_order == "little" else ">i2"
    return np.frombuffer(payload[: len(payload) // 2 * 2], dtype=dtype).astype(np.int16)


def encode_wire(pcm: Int16, encoding: str, byte_order: Literal["little", "big"] = "little") -> bytes:
    """The payload for int16 ``pcm``; mu-law takes the nearest level (the code of the positive
    twin where two are equally near; zero is the code 0xFF, as G.711 encoders write it)."""
    if encoding == "mulaw":
        index = np.searchsorted(_MIDPOINTS, pcm.astype(np.int32), side="left")
        codes = _ORDER[index].astype(np.uint8)
        codes[pcm == 0] = 0xFF
        return codes.tobytes()
    return pcm.astype("<i2" if byte_order == "little" else ">i2").tobytes()
