"""Sync benchmarks (D9): bytes on the wire for a small gap, and snapshot catch-up time.

Both run two real ``Node``s against each other over an in-memory link (envelope bytes handed
across), on the cached 100k-event benchmark history:

* ``sync-bytes``: a requester holding the first 99% of the history asks a responder holding
  all of it. Subject: every envelope byte both ways (heads request, batches, end-of-history
  marker). Baseline: the wire bytes of the missing events themselves, the floor for any
  protocol that ships events. Goal <= 1.2.
* ``sync-snapshot``: a peer with nothing asks a serving node for a snapshot and assembles it
  (the unverified state a user sees first). Baseline: the same peer catching up by full sync
  instead (one window of events per request, as any reader does), every event's signature
  verified and replayed. Goal <= 0.25.
* ``sync`` runs both and ends with a ``sync:`` line repeating whichever of the two is worse
  against its own goal (largest ratio/goal), so the last line is the one to watch.
"""

from __future__ import annotations

from willow_core.client import Community
from willow_core.event import decode_event
from willow_core.identity import Identity
from willow_core.node import Node
from willow_core.state import state_hash
from willow_core.sync import WINDOW_BYTES
from willow_core.testing import identity

from .fixtures import history
from .harness import Result, best_time, report

__all__ = ["sync", "sync_bytes", "sync_snapshot"]

N_EVENTS = 100_000


def _exchange(a: Node, b: Node, now_ms: int = 0) -> int:
    """Hand envelopes between ``a`` and ``b`` until both are quiet; returns the bytes moved."""
    moved = 0
    while True:
        out_a = a.drain()
        for envelope in out_a:
            moved += len(envelope)
            b.receive(envelope, now_ms)
        out_b = b.drain()
        for envelope in out_b:
            moved += len(envelope)
            a.receive(envelope, now_ms)
        if not out_a and not out_b:
            return moved


class _Fixture:
    """A serving node holding the whole history, and the rows to rebuild any prefix fast."""

    def __init__(self, n_events: int) -> None:
        self.wires = history(n_events)
        events = [decode_event(w) for w in self.wires]
        self.server = events[0].id
        self.responder = Node(identity("bench/sync/responder"), serves=True)
        community = self.responder.add(Community(self.responder.identity, self.server))
        receipt = community.managed.receive(events, 0, verified=True)
        if receipt.buffered or receipt.refused or not community.ready:
            raise AssertionError("fixture did not ingest cleanly")
        self.rows = community.managed.stored_rows()
        self.hash = community.state_hash()
        self.ids = [e.id for e in events]

    def peer(self, ident: Identity, keep: int) -> Node:
        """A node holding the first ``keep`` events of the history (restored, not verified)."""
        node = Node(ident)
        community = node.open(self.server)
        if keep:
            wanted = set(self.ids[:keep])
            community.managed.restore(row for row in self.rows if row[0] in wanted)
        return node


_cache: dict[int, _Fixture] = {}


def _fixture(n_events: int) -> _Fixture:
    if n_events not in _cache:
        _cache[n_events] = _Fixture(n_events)
    return _cache[n_events]


def sync_bytes(n_events: int = N_EVENTS, behind: float = 0.01) -> Result:
    """Envelope bytes to close a gap of ``behind`` of the history vs the missing events' bytes."""
    fx = _fixture(n_events)
    keep = n_events - int(n_events * behind)
    requester = fx.peer(identity("bench/sync/requester"), keep)
    requester.request_sync(fx.server, fx.responder.identity.public_key)
    moved = _exchange(requester, fx.responder)
    missing = sum(len(w) for w in fx.wires[keep:])
    community = requester.communities[fx.server]
    if len(community.dag) != n_events or community.state_hash() != fx.hash:
        raise AssertionError("the requester did not end with the full history")
    if requester.errors or fx.responder.errors:
        raise AssertionError("sync produced errors")
    progress = requester.progress[fx.server]
    notes = [
        f"{n_events} events, requester {n_events - keep} behind ({behind:.0%}); "
        f"{progress.requested} request(s) (windows of {WINDOW_BYTES // 1024} KiB), "
        f"{progress.batches} batch(es), "
        f"end-of-history marker from the responder: "
        f"{bool(progress.complete_from) or 'untrusted (not a SyncProvider here)'}",
        f"moved {moved} B both ways for {missing} B of missing events",
    ]
    return report(Result("sync-bytes", moved, missing, "B", moved / missing, "<=", 1.2), notes)


def sync_snapshot(n_events: int = N_EVENTS, rounds: int = 2) -> Result:
    """Snapshot catch-up (request, assemble, show unverified) vs full sync with verification."""
    fx = _fixture(n_events)
    responder_key = fx.responder.identity.public_key

    last: dict[str, Node] = {}

    def snapshot() -> None:
        node = last["snapshot"] = fx.peer(identity("bench/sync/snapshot"), 0)
        node.request_snapshot(fx.server, responder_key)
        _exchange(node, fx.responder)  # the Node checks the blob against its claimed hash

    def full_sync() -> None:
        node = last["full"] = fx.peer(identity("bench/sync/replay"), 0)
        node.request_sync(fx.server, responder_key)
        _exchange(node, fx.responder)

    subject_s, baseline_s = best_time(snapshot, full_sync, rounds)
    # Correctness of the last runs, checked outside the timings.
    unverified = last["snapshot"].communities[fx.server].unverified
    if unverified is None or state_hash(unverified) != fx.hash:
        raise AssertionError("the snapshot did not assemble to the responder's state")
    community = last["full"].communities[fx.server]
    if len(community.dag) != n_events or community.state_hash() != fx.hash:
        raise AssertionError("full sync did not reach the responder's state")
    requests = last["full"].progress[fx.server].requested
    notes = [
        f"{n_events} events; subject = snapshot request -> chunks -> assembled unverified state "
        f"(hash checked); baseline = full sync ({requests} windowed requests), every signature "
        f"verified and replayed",
        f"snapshot {subject_s:.2f} s, full sync {baseline_s:.2f} s",
    ]
    return report(
        Result("sync-snapshot", subject_s, baseline_s, "s", subject_s / baseline_s, "<=", 0.25),
        notes,
    )


def sync() -> Result:
    """Both sync benchmarks; the last line repeats the worse one (against its goal) as ``sync``."""
    results = [sync_bytes(), sync_snapshot()]
    worst = max(results, key=lambda r: r.ratio / r.goal)
    combined = Result(
        "sync", worst.subject, worst.baseline, worst.unit, worst.ratio, worst.op, worst.goal
    )
    return report(
        combined, [f"sync = the worse of sync-bytes and sync-snapshot vs its goal: {worst.name}"]
    )
