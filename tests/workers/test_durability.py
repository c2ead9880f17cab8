"""Kill -9 durability of the storage worker (tier 3): no acknowledged event is ever lost.

``relay/durability_probe.py`` runs a StorageWorker against a write burst and prints every id the
worker acknowledged (STORED, sent only after COMMIT). This test kills it with SIGKILL at seeded
random moments (during restore, between envelopes, mid-commit, mid-print), restarts it, and
after every kill checks that each id ever acknowledged is in the database and that
``PRAGMA integrity_check`` is ``ok``. Most restarts fork a fresh probe from an already-loaded
``--fork-server`` process (milliseconds instead of an interpreter start); every
``FRESH_EVERY``-th cycle starts a new interpreter with the plain command line. At the end the
archive must restore to the same state as a fresh, verified replay of the same events.
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from relay.durability_probe import make_burst, write_burst
from relay.storage import EventStore
from willow_core.dag import EventDag
from willow_core.event import decode_event
from willow_core.managed import ManagedDag
from willow_core.materialize import materialize
from willow_core.state import state_hash

#: kill -9 cycles in total
CYCLES = 200
#: every this many cycles, a brand-new interpreter instead of a fork
FRESH_EVERY = 25
#: events in the burst (about five are stored per cycle)
BURST = 2_000
SEED = 20_251_122
_TIMEOUT = 30.0


class Lines:
    """A child's stdout, read by a thread into a queue (so a full pipe never stalls it)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def next(self, timeout: float = _TIMEOUT) -> str | None:
        """The next complete line (None at end of stream)."""
        return self._queue.get(timeout=timeout)

    def close(self) -> None:
        """After the writer exited: wait for the reader thread, then close the pipe."""
        self._thread.join(timeout=_TIMEOUT)
        self._stream.close()


def _probe_command(data: Path, burst: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "relay.durability_probe",
        "--data",
        str(data),
        "--burst",
        str(burst),
        *extra,
    ]


def _stored_ids(db: Path) -> tuple[set[bytes], str]:
    """Ids in the database and its integrity verdict, read without checkpointing the WAL
    (so the next probe recovers from the crash state itself)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        conn.execute("SELECT 1 FROM events LIMIT 1")
    except sqlite3.Error:  # no WAL index to read through yet: open read-write
        conn.close()
        conn = sqlite3.connect(db)
    try:
        verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "events" not in tables:  # killed while creating the schema: nothing stored yet
            return set(), verdict
        ids = {row[0] for row in conn.execute("SELECT id FROM events")}
    finally:
        conn.close()
    return ids, str(verdict)


class Tally:
    def __init__(self) -> None:
        self.acked: set[bytes] = set()
        self.kills = 0
        self.early_kills = 0
        self.finished = 0
        self.restored: list[int] = []

    def take(self, line: str) -> None:
        if line.startswith("ack "):
            self.acked.add(bytes.fromhex(line[4:].strip()))
        elif line.startswith("ready "):
            self.restored.append(int(line.split()[1]))
        elif line.strip() == "done":
            self.finished += 1


def _one_cycle(
    rng: random.Random,
    tally: Tally,
    start: subprocess.Popen[str] | None,
    server_lines: Lines | None,
    fresh: tuple[list[str], int] | None,
) -> None:
    """Start (fork or exec) one probe, kill it at a random moment, collect its output."""
    early = rng.random() < 0.1
    if fresh is not None:
        command, _ = fresh
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        lines = Lines(proc.stdout)
        pid = proc.pid
    else:
        assert start is not None
        assert start.stdin is not None
        assert server_lines is not None
        start.stdin.write(f"run {rng.randrange(1 << 30)}\n")
        start.stdin.flush()
        lines = server_lines
        first = lines.next()
        assert first is not None
        assert first.startswith("child "), first
        pid = int(first.split()[1])
    if early:
        time.sleep(rng.uniform(0, 0.02))  # during start-up or restore, most likely
        tally.early_kills += 1
    else:
        while True:
            line = lines.next()
            assert line is not None, "probe exited before it was ready"
            tally.take(line)
            if line.startswith("ready "):
                break
        time.sleep(rng.uniform(0, 0.06))
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    tally.kills += 1
    # collect everything it printed up to its death
    while True:
        line = lines.next()
        if line is None or line.startswith("exited "):
            break
        tally.take(line)
    if fresh is not None:
        proc.wait(timeout=_TIMEOUT)
        lines.close()


@pytest.mark.slow
def test_no_acknowledged_event_is_lost_across_200_kill_9(tmp_path: Path) -> None:
    events = make_burst(BURST)
    burst = tmp_path / "burst.cbor"
    write_burst(burst, events)
    data = tmp_path / "data"
    server = events[0].id
    db = data / f"{server.hex()}.db"
    rng = random.Random(SEED)
    tally = Tally()
    forker = subprocess.Popen(
        _probe_command(data, burst, "--fork-server"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert forker.stdout is not None
    forker_lines = Lines(forker.stdout)
    started = time.monotonic()
    try:
        for cycle in range(CYCLES):
            fresh = None
            if cycle % FRESH_EVERY == FRESH_EVERY - 1:
                fresh = (_probe_command(data, burst, "--seed", str(cycle)), cycle)
            _one_cycle(rng, tally, forker, forker_lines, fresh)
            if not db.exists():
                assert not tally.acked, "acknowledged before the database existed"
                continue
            stored, verdict = _stored_ids(db)
            assert verdict == "ok", f"cycle {cycle}: integrity_check says {verdict}"
            lost = tally.acked - stored
            assert not lost, f"cycle {cycle}: {len(lost)} acknowledged events lost"
    finally:
        assert forker.stdin is not None
        forker.stdin.close()
        forker.wait(timeout=_TIMEOUT)
        forker_lines.close()
    elapsed = time.monotonic() - started

    # The archive restores to the state of a fresh, verified replay of the same events.
    by_id = {ev.id: ev for ev in events}
    stored, _ = _stored_ids(db)
    assert stored <= set(by_id)
    assert tally.acked <= stored
    with EventStore(data) as store:
        managed = ManagedDag(server)
        managed.restore(store.rows(server))
    dag = EventDag(server)
    for ev in events:  # parents first; every stored event's ancestors must be stored too
        if ev.id in stored:
            fresh_ev = decode_event(ev.wire)
            assert dag.check(fresh_ev) == [], "the archive is not closed under ancestry"
            dag.add(fresh_ev)
    assert managed.state is not None
    assert state_hash(managed.state) == state_hash(materialize(dag))
    print(
        f"\ndurability: {tally.kills} kill -9 cycles ({tally.early_kills} during start-up), "
        f"{len(tally.acked)} events acknowledged, {len(stored)} stored, lost 0, "
        f"{tally.finished} runs finished the burst, last restore {tally.restored[-1:]} events, "
        f"{elapsed:.1f} s"
    )
    assert tally.kills == CYCLES
    assert len(tally.acked) > CYCLES  # the kills really landed during writes
