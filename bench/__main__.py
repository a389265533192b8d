"""``python -m bench [NAME ...]``: run the named benchmarks (all by default)."""

from __future__ import annotations

import sys

from bench import codec, offline, offline_calls, offline_tts, pipeline

BENCHMARKS = {
    "codec": codec.main,
    "pipeline": pipeline.main,
    "offline_tts": offline_tts.main,
    "offline_stt": offline.main,
    "offline_calls": offline_calls.main,
}


def main() -> None:
    names = sys.argv[1:] or list(BENCHMARKS)
    for name in names:
        if name not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    for name in names:
        sys.argv = [f"bench.{name}"]
        BENCHMARKS[name]()


if __name__ == "__main__":
    main()
