"""``python -m bench [NAME ...] [OPTIONS]``: run benchmarks by name; the capacity benchmark by default.

``python -m bench`` (or ``python -m bench --ramp 50 100 …``) runs ``bench.capacity`` with those
options; ``python -m bench codec pipeline`` runs the named ones in turn; options after a single
name go to that benchmark (``python -m bench pipeline --calls 20``).
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "capacity": "bench.capacity",
    "codec": "bench.codec",
    "pipeline": "bench.pipeline",
    "offline_tts": "bench.offline_tts",
    "offline_stt": "bench.offline",
    "offline_calls": "bench.offline_calls",
    "smart_turn": "bench.smart_turn",
    "turns": "bench.turns",
    "greetings": "bench.greetings",
    "failover": "bench.failover",
    "recording": "bench.recording",
}
DEFAULT = "capacity"


def main() -> None:
    args = sys.argv[1:]
    names: list[str] = []
    while args and not args[0].startswith("-"):
        if args[0] not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {args[0]!r}; choose from {', '.join(BENCHMARKS)}")
        names.append(args.pop(0))
    if len(names) > 1 and args:
        raise SystemExit("options go with one benchmark at a time")
    for name in names or [DEFAULT]:
        sys.argv = [f"bench.{name}", *args]  # each benchmark parses sys.argv itself
        importlib.import_module(BENCHMARKS[name]).main()


if __name__ == "__main__":
    main()
