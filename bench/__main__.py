"""``python -m bench <name> [<name> ...]``: run benchmarks; the last line of each is its ratio."""

from __future__ import annotations

import sys
from collections.abc import Callable

from . import browser, browser_app, core, e2ee, relay, sync
from .harness import Result, runtime_gc

BENCHMARKS: dict[str, Callable[[], Result]] = {
    "materialize": core.materialize,
    "replay": core.replay,
    "late-event": core.late_event,
    "relay-fanout": relay.relay_fanout,
    "relay-latency": relay.relay_latency,
    "sync": sync.sync,
    "sync-bytes": sync.sync_bytes,
    "sync-snapshot": sync.sync_snapshot,
    "seal": e2ee.seal,
    "rotate": e2ee.rotate,
    **browser.BENCHMARKS,
    **browser_app.BENCHMARKS,
}


def main(argv: list[str]) -> int:
    if not argv or any(name not in BENCHMARKS for name in argv):
        print(f"usage: python -m bench <{'|'.join(BENCHMARKS)}> ...", file=sys.stderr)
        return 2
    runtime_gc()
    results = [BENCHMARKS[name]() for name in argv]
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
