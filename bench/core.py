"""Core replay benchmarks: materialize, replay and late-event."""

from __future__ import annotations

import time

import cbor2

from willow_core import crypto
from willow_core.event import decode_event
from willow_core.managed import ManagedDag
from willow_core.state import state_hash

from .fixtures import history, history_label, invite_seed, late_events
from .harness import Result, best_time, report

__all__ = ["materialize", "replay", "late_event"]


def _ingest(wires: list[bytes], *, verified: bool) -> ManagedDag:
    events = [decode_event(w) for w in wires]
    managed = ManagedDag(events[0].id)
    receipt = managed.receive(events, 0, verified=verified)
    if receipt.refused or receipt.buffered or managed.state is None:
        raise AssertionError("fixture did not ingest cleanly")
    return managed


def materialize(n_events: int = 100_000, rounds: int = 2) -> Result:
    """Wire bytes -> state with every signature verified, vs verifying alone (goal <= 1.25)."""
    wires = history(n_events)
    triples = [(e.author, e.signable, e.sig) for e in map(decode_event, wires)]
    verify = crypto.ed25519_verify

    def baseline() -> None:
        for public_key, message, signature in triples:
            if not verify(public_key, message, signature):
                raise AssertionError("fixture signature invalid")

    subject_s, baseline_s = best_time(lambda: _ingest(wires, verified=False), baseline, rounds)
    managed = _ingest(wires, verified=False)
    assert managed.state is not None
    notes = [
        f"{n_events} events, {len(managed.dag.chains)} authors, "
        f"{len(managed.state.messages)} messages, state {state_hash(managed.state).hex()[:16]}",
        f"per event: subject {subject_s / n_events * 1e6:.1f} us, "
        f"verify {baseline_s / n_events * 1e6:.1f} us",
    ]
    return report(
        Result("materialize", subject_s, baseline_s, "s", subject_s / baseline_s, "<=", 1.25),
        notes,
    )


def _reload(server_id: bytes, stored: list[tuple[bytes, int, bytes, bytes]]) -> ManagedDag:
    managed = ManagedDag(server_id)
    managed.restore(stored)
    return managed


def replay(n_events: int = 100_000, rounds: int = 3) -> Result:
    """State from an already-verified store vs a bare decode + dict update (goal <= 3).

    The store holds what ingest accepted: ``(id, depth, signable, signature)`` rows, returned
    in order by the store's index, as the storage worker and the browser keep them. The
    baseline decodes the same rows and files each under its id.
    """
    wires = history(n_events)
    fresh = _ingest(wires, verified=False)
    stored = fresh.stored_rows()
    reloaded = _reload(fresh.server_id, stored)
    assert fresh.state is not None
    assert reloaded.state is not None
    if state_hash(fresh.state) != state_hash(reloaded.state):
        raise AssertionError("reload from the store differs from a verified ingest")

    def baseline() -> None:
        table: dict[bytes, object] = {}
        for event_id, _depth, signable, _sig in stored:
            table[event_id] = cbor2.loads(signable)

    subject_s, baseline_s = best_time(lambda: _reload(fresh.server_id, stored), baseline, rounds)
    return report(
        Result("replay", subject_s, baseline_s, "s", subject_s / baseline_s, "<=", 3.0),
        [
            f"per event: subject {subject_s / n_events * 1e6:.1f} us, "
            f"bare {baseline_s / n_events * 1e6:.1f} us"
        ],
    )


def _late_cost(n_events: int, count: int, behind: int) -> float:
    wires = history(n_events)
    late = late_events(wires, invite_seed(history_label(n_events)), count, behind)
    managed = _ingest(wires, verified=True)
    rebuilds = managed.rebuilds
    start = time.perf_counter()
    for ev in late:
        receipt = managed.receive([ev], 0)
        if len(receipt.inserted) != 1:
            raise AssertionError("late event not inserted")
    elapsed = time.perf_counter() - start
    if managed.rebuilds != rebuilds:
        raise AssertionError("late events forced a full rebuild")
    return elapsed


def late_event(count: int = 100, behind: int = 200, rounds: int = 3) -> Result:
    """100 concurrent late events on 100k history vs on 1k history (goal <= 2)."""
    small = min(_late_cost(1_000, count, behind) for _ in range(rounds))
    large = min(_late_cost(100_000, count, behind) for _ in range(rounds))
    return report(
        Result("late-event", large, small, "s", large / small, "<=", 2.0),
        [
            f"{count} late events, each concurrent with the last {behind} events; "
            "subject = on 100k history, baseline = on 1k history"
        ],
    )
