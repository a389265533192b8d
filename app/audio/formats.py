"""Wire audio formats used by Vobiz media streams.

An :class:`AudioFormat` names an encoding (G.711 mu-law or L16 linear PCM), a
sample rate in Hz and, for L16, the byte order of each 16-bit sample. It can be
parsed liberally from the strings Vobiz sends (``audio/x-l16;rate=16000``,
``start.mediaFormat``) and always renders the canonical strings Vobiz expects.
Pure data: no I/O, no numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

Encoding: TypeAlias = Literal["mulaw", "l16"]
ByteOrder: TypeAlias = Literal["little", "big"]

#: Sample rates (Hz) accepted for L16. mu-law is always 8000 Hz.
MIN_L16_RATE = 8000
MAX_L16_RATE = 48000
MULAW_RATE = 8000
#: Rate assumed when a content type or media format does not carry one.
DEFAULT_RATE = 8000

_MIME: dict[str, str] = {"mulaw": "audio/x-mulaw", "l16": "audio/x-l16"}
_RATE_KEYS = frozenset({"rate", "samplerate", "sample_rate", "sample-rate"})


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """An uncompressed-or-G.711 mono audio format on the wire.

    ``sample_rate`` is in Hz. ``byte_order`` only matters for L16 (mu-law is one
    byte per sample); it defaults to little-endian, Vobiz's default.
    Construction validates everything: an instance is always usable.
    """

    encoding: Encoding
    sample_rate: int
    byte_order: ByteOrder = "little"

    def __post_init__(self) -> None:
        if self.encoding not in _MIME:
            raise ValueError(f"unknown audio encoding {self.encoding!r} (expected 'mulaw' or 'l16')")
        if self.byte_order not in ("little", "big"):
            raise ValueError(f"unknown byte order {self.byte_order!r} (expected 'little' or 'big')")
        rate = self.sample_rate
        if isinstance(rate, bool) or not isinstance(rate, int):
            raise ValueError(f"sample rate must be an int in Hz, got {rate!r}")
        if self.encoding == "mulaw" and rate != MULAW_RATE:
            raise ValueError(f"mu-law audio must be {MULAW_RATE} Hz, got sample rate {rate!r}")
        if not MIN_L16_RATE <= rate <= MAX_L16_RATE:
            raise ValueError(
                f"unsupported L16 sample rate {rate!r} Hz (accepted: {MIN_L16_RATE}..{MAX_L16_RATE})"
            )

    # -- derived values -------------------------------------------------------------------

    @property
    def mime(self) -> str:
        """The bare MIME type: ``audio/x-mulaw`` or ``audio/x-l16``."""
        return _MIME[self.encoding]

    @property
    def content_type(self) -> str:
        """The canonical MIME type with rate, e.g. ``audio/x-l16;rate=16000`` (no byte order)."""
        return f"{self.mime};rate={self.sample_rate}"

    @property
    def silence_byte(self) -> int:
        """The byte value that encodes digital silence (0xFF for mu-law, 0x00 for L16)."""
        return 0xFF if self.encoding == "mulaw" else 0x00

    @property
    def bytes_per_sample(self) -> int:
        """Bytes per mono sample on the wire: 1 for mu-law, 2 for L16."""
        return 1 if self.encoding == "mulaw" else 2

    def samples_per_frame(self, ms: int = 20) -> int:
        """Samples in a frame of ``ms`` milliseconds; ``ValueError`` if not a whole number."""
        samples, rem = divmod(self.sample_rate * ms, 1000)
        if ms <= 0 or rem:
            raise ValueError(f"a {ms!r} ms frame at {self.sample_rate} Hz is not a whole number of samples")
        return samples

    def frame_bytes(self, ms: int = 20) -> int:
        """Bytes in a frame of ``ms`` milliseconds (e.g. 160 for mu-law, 960 for L16 24 kHz at 20 ms)."""
        return self.samples_per_frame(ms) * self.bytes_per_sample

    # -- parsing --------------------------------------------------------------------------

    @classmethod
    def from_content_type(cls, ct: str, byte_order: ByteOrder = "little") -> AudioFormat:
        """Parse a content type such as ``audio/x-l16;rate=16000`` or ``audio/x-mulaw``.

        Whitespace and case are ignored; a missing rate means 8000 Hz. Raises
        ``ValueError`` naming the offending value for unknown encodings or bad rates.
        """
        encoding_part, rate = _split_content_type(ct)
        return cls(_parse_encoding(encoding_part, ct), DEFAULT_RATE if rate is None else rate, byte_order)

    @classmethod
    def from_media_format(
        cls, encoding: str, sample_rate: int | float | str | None, byte_order: ByteOrder = "little"
    ) -> AudioFormat:
        """Build from Vobiz ``start.mediaFormat`` (``encoding``, ``sampleRate``).

        ``sample_rate`` may be an int, an integral float, a decimal string or ``None`` (then the rate
        comes from a ``;rate=`` parameter in ``encoding``, else 8000 Hz). A rate in
        both places must agree. Raises ``ValueError`` naming the offending value.
        """
        encoding_part, ct_rate = _split_content_type(encoding)
        rate = ct_rate if sample_rate is None else _parse_rate(sample_rate)
        if ct_rate is not None and rate != ct_rate:
            raise ValueError(f"sample rate {sample_rate!r} contradicts encoding {encoding!r}")
        return cls(
            _parse_encoding(encoding_part, encoding), DEFAULT_RATE if rate is None else rate, byte_order
        )


def _split_content_type(ct: str) -> tuple[str, int | None]:
    """Split ``type;key=value;...`` into the lower-cased type and the rate parameter, if any."""
    if not isinstance(ct, str):
        raise ValueError(f"audio content type must be a string, got {ct!r}")
    head, *params = ct.split(";")
    rate: int | None = None
    for param in params:
        key, sep, value = param.partition("=")
        if sep and key.strip().lower() in _RATE_KEYS:
            rate = _parse_rate(value)
    return head.strip().lower(), rate


def _parse_encoding(value: str, original: str) -> Encoding:
    # Check the mu-law spellings first: "pcmu" also contains "pcm".
    if any(token in value for token in ("mulaw", "ulaw", "pcmu", "basic")):
        return "mulaw"
    if "l16" in value or "pcm" in value:
        return "l16"
    raise ValueError(f"unknown audio encoding {original!r} (expected mu-law or L16)")


def _parse_rate(value: int | float | str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"invalid sample rate {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            as_float = float(text)
        except ValueError:
            as_float = float("nan")
        if as_float.is_integer():
            return int(as_float)
    raise ValueError(f"invalid sample rate {value!r} (expected an integer number of Hz)")


MULAW_8K = AudioFormat("mulaw", 8000)
L16_8K = AudioFormat("l16", 8000)
L16_16K = AudioFormat("l16", 16000)
L16_24K = AudioFormat("l16", 24000)

#: Formats Vobiz can send us (inbound stream).
INBOUND_FORMATS: tuple[AudioFormat, ...] = (MULAW_8K, L16_8K, L16_16K)
#: Formats Vobiz accepts in ``playAudio`` (outbound).
OUTBOUND_FORMATS: tuple[AudioFormat, ...] = (MULAW_8K, L16_8K, L16_16K, L16_24K)
#: Formats a ``start`` may announce: the ``<Stream contentType>`` values plus L16 24 kHz, which the
#: REST start documents as a ``content_type`` "echoed in start.mediaFormat" (PROTOCOL.md §6.1, D2).
STREAM_FORMATS: frozenset[tuple[Encoding, int]] = frozenset(
    (f.encoding, f.sample_rate) for f in OUTBOUND_FORMATS
)


def check_stream_format(fmt: AudioFormat) -> AudioFormat:
    """``fmt`` if a media stream may use it, else ``ValueError`` naming the documented set.

    Only documented formats reach the call path: each (encoding, rate) pair costs one
    resampler design, and an arbitrary rate (47999 Hz) would cost a filter of millions of taps.
    """
    if (fmt.encoding, fmt.sample_rate) not in STREAM_FORMATS:
        documented = ", ".join(f.content_type for f in OUTBOUND_FORMATS)
        raise ValueError(f"undocumented stream format {fmt.content_type} (documented: {documented})")
    return fmt
