"""D4 as properties: one state for every arrival order, and incremental replay equals fresh replay.

Histories come from ``strategies.histories`` (several authors acting on their own replicas with
partial syncs, so the DAG has real concurrent branches). The reference is always independent of
the incremental engine: a plain ``EventDag`` filled parents-first, folded by ``materialize``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from strategies import (
    REMOVAL_HEAVY,
    START_MS,
    History,
    cached_identity,
    causal_order,
    examples,
    fresh_dag,
    histories,
    random_linear_extension,
)

from willow_core import pending as pending_module
from willow_core.client import Community
from willow_core.dag import EventDag, removal_targets
from willow_core.event import ZERO_ID, Event, sign_event
from willow_core.invite import sign_join
from willow_core.kinds import (
    Join,
    KeyShare,
    Kind,
    Message,
    MuteGrove,
    Reaction,
    RotateChannelKey,
    SetProfile,
)
from willow_core.managed import ManagedDag
from willow_core.materialize import materialize
from willow_core.order import topological_order
from willow_core.pending import (
    MAX_PENDING_AGE_MS,
    MAX_PENDING_BYTES,
    MAX_PENDING_EVENTS,
    MAX_PENDING_PER_AUTHOR,
    PendingBuffer,
)
from willow_core.permissions import _channel_permissions, _server_permissions
from willow_core.results import RejectReason
from willow_core.state import ServerState, state_hash
from willow_core.testing import seed_bytes

#: Arrival orders tried per history (the D4 requirement is "every arrival order").
ORDERS = 100

HISTORY_SETTINGS = settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SEEDS = st.integers(0, 2**64 - 1)
NOW = START_MS + 10**9  # receive time: later than every history's wall clock


# --- helpers ----------------------------------------------------------------------------------


def reference(server_id: bytes, events: Sequence[Event]) -> tuple[EventDag, bytes, list[bytes]]:
    """Fresh DAG, its materialized state hash, and its deterministic order (as ids)."""
    dag = fresh_dag(server_id, events)
    assert len(dag) == len(events), "every generated event must be insertable"
    order = [ev.id for ev in topological_order(dag.events.values(), dag.depth)]
    return dag, state_hash(materialize(dag)), order


def random_batches(events: list[Event], rng: random.Random) -> list[list[Event]]:
    """Split ``events`` into consecutive batches at random cut points."""
    cuts = sorted(rng.sample(range(1, len(events)), rng.randint(0, min(8, len(events) - 1))))
    bounds = [0, *cuts, len(events)]
    return [events[a:b] for a, b in pairwise(bounds)]


def check_perm_cache(state: ServerState) -> None:
    """Every cached permission set equals a fresh computation (no stale derived data)."""
    for (peer, channel), cached in list(state.perm_cache.items()):
        if channel is None:
            fresh = _server_permissions(state, peer)
        else:
            fresh = _channel_permissions(state, peer, channel)
        assert cached == fresh, (peer.hex()[:8], None if channel is None else channel.hex()[:8])


def assert_matches_fresh(managed: ManagedDag) -> None:
    """The incremental state and order equal a fresh replay of the DAG held right now."""
    state = managed.state
    assert state is not None
    assert state_hash(state) == state_hash(materialize(managed.dag))
    expected = topological_order(managed.dag.events.values(), managed.dag.depth)
    assert [ev.id for ev in managed.order] == [ev.id for ev in expected]
    check_perm_cache(state)


def replay_in_orders(
    server_id: bytes, events: Sequence[Event], seed: int, orders: int = ORDERS
) -> tuple[set[bytes], ManagedDag]:
    """Deliver ``events`` in ``orders`` random arrival orders; return the state hashes seen.

    Even orders go one event per ``receive``; odd ones in random batches. Every third order
    also delivers some events twice (networks duplicate). Every fourth order goes through a
    ``Community`` of an identity that is not a member. The first order checks
    signatures; the rest pass ``verified=True`` (signatures are not what is under test, and
    checking them 100 times over is most of the cost).
    """
    _, expected_hash, expected_order = reference(server_id, events)
    rng = random.Random(seed)
    hashes: set[bytes] = set()
    observer = cached_identity("observer")
    managed = ManagedDag(server_id)
    for i in range(orders):
        arrival = list(events)
        if i % 3 == 2:
            arrival += rng.sample(arrival, len(arrival) // 10)
        rng.shuffle(arrival)
        batches = random_batches(arrival, rng) if i % 2 else [[ev] for ev in arrival]
        verified = i > 0
        if i % 4 == 3:
            community = Community(observer, server_id)
            for batch in batches:
                receipt = community.receive(batch, NOW, verified=verified)
                assert not receipt.refused
            managed = community.managed
        else:
            managed = ManagedDag(server_id)
            for batch in batches:
                receipt = managed.receive(batch, NOW, verified=verified)
                assert not receipt.refused
        assert len(managed.pending) == 0
        assert len(managed.dag) == len(events)
        assert managed.state is not None
        assert managed.rebuilds == 1, "late events must rewind a suffix, not rebuild"
        hashes.add(state_hash(managed.state))
        assert [ev.id for ev in managed.order] == expected_order, f"order {i}"
    assert hashes == {expected_hash}
    return hashes, managed


# --- arrival orders ---------------------------------------------------------------------------


@HISTORY_SETTINGS
@given(history=histories(), seed=SEEDS)
def test_every_arrival_order_gives_one_state(history: History, seed: int) -> None:
    event(f"events: {len(history.events) // 25 * 25}+")
    replay_in_orders(history.server_id, history.events, seed)


@HISTORY_SETTINGS
@given(history=histories(actions=REMOVAL_HEAVY), seed=SEEDS)
def test_every_arrival_order_gives_one_state_with_many_removals(
    history: History, seed: int
) -> None:
    replay_in_orders(history.server_id, history.events, seed)


@HISTORY_SETTINGS
@given(history=histories(), seed=SEEDS)
def test_replicas_agree_after_full_sync(history: History, seed: int) -> None:
    """The authors' own replicas (built by authoring + partial syncs) converge once synced."""
    _, expected_hash, expected_order = reference(history.server_id, history.events)
    rng = random.Random(seed)
    for replica in history.replicas:
        missing = [ev for ev in history.events if ev.id not in replica.dag]
        rng.shuffle(missing)
        receipt = replica.receive(missing, NOW)
        assert not receipt.refused
        assert len(replica.managed.pending) == 0
        assert replica.state_hash() == expected_hash
        assert [ev.id for ev in replica.managed.order] == expected_order
        check_perm_cache(replica.state)


# --- incremental equals fresh after every receive ---------------------------------------------


def late_first_extension(events: Sequence[Event], rng: random.Random) -> list[Event]:
    """A causal order that delays shallow events: each step takes one of the deepest ready
    events, so concurrent shallow work arrives late and lands far back in the order."""
    dag = fresh_dag(events[0].id, events)
    by_id = {ev.id: ev for ev in events}
    remaining = {ev.id: sum(1 for p in ev.parents if p in by_id) for ev in events}
    children: dict[bytes, list[bytes]] = {ev.id: [] for ev in events}
    for ev in events:
        for parent in ev.parents:
            children[parent].append(ev.id)
    ready = [ev.id for ev in events if remaining[ev.id] == 0]
    out: list[Event] = []
    while ready:
        if rng.random() < 0.7:
            deepest = max(dag.depth[i] for i in ready)
            choices = [i for i in ready if dag.depth[i] == deepest]
            pick = rng.choice(choices)
        else:
            pick = rng.choice(ready)
        ready.remove(pick)
        out.append(by_id[pick])
        for child in children[pick]:
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.append(child)
    assert len(out) == len(events)
    return out


@HISTORY_SETTINGS
@given(history=histories(), seed=SEEDS, mode=st.sampled_from(("uniform", "late", "shuffled")))
def test_incremental_equals_fresh_after_every_receive(
    history: History, seed: int, mode: str
) -> None:
    rng = random.Random(seed)
    events = history.events
    if mode == "uniform":
        arrival = random_linear_extension(events, rng)
    elif mode == "late":
        arrival = late_first_extension(events, rng)
    else:  # not causal at all: exercises draining the pending buffer into the middle
        arrival = list(events)
        rng.shuffle(arrival)
    managed = ManagedDag(history.server_id)
    position = 0
    while position < len(arrival):
        size = 1 if rng.random() < 0.7 else rng.randint(2, 6)
        receipt = managed.receive(arrival[position : position + size], NOW, verified=True)
        position += size
        assert not receipt.refused
        if managed.state is not None:
            assert_matches_fresh(managed)
    assert len(managed.pending) == 0
    assert managed.rebuilds == 1


# --- the order against a brute-force reference ------------------------------------------------


def brute_force_depths(events: Sequence[Event]) -> dict[bytes, int]:
    """Effective depths straight from the definition (``willow_core.dag``), by brute force.

    nat = causal depth; effective depth = max(1 + deepest parent's effective depth,
    1 + nat of every removal that targets the event's subject and is not its descendant's
    ancestor, i.e. did not see it). Ancestor sets are computed in full here.
    """
    by_id = {ev.id: ev for ev in events}
    ordered = causal_order(events)
    nat: dict[bytes, int] = {}
    ancestors: dict[bytes, set[bytes]] = {}
    for ev in ordered:
        nat[ev.id] = 1 + max(nat[p] for p in ev.parents) if ev.parents else 0
        ancestors[ev.id] = set(ev.parents).union(*(ancestors[p] for p in ev.parents))
    bound: dict[bytes, int] = {}
    for removal in ordered:
        for target in removal_targets(removal, by_id):
            for ev in ordered:
                subject = ev.author == target or (
                    ev.kind is Kind.JOIN and ev.payload.invite == target
                )
                if subject and ev.id != removal.id and ev.id not in ancestors[removal.id]:
                    bound[ev.id] = max(bound.get(ev.id, 0), nat[removal.id] + 1)
    depth: dict[bytes, int] = {}
    for ev in ordered:
        base = 1 + max(depth[p] for p in ev.parents) if ev.parents else 0
        depth[ev.id] = max(base, bound.get(ev.id, 0))
    return depth


def brute_force_order(events: Sequence[Event]) -> list[bytes]:
    """Repeatedly take the minimum (depth, id) among events whose parents are all placed."""
    by_id = {ev.id: ev for ev in events}
    depth = brute_force_depths(events)
    placed: set[bytes] = set()
    out: list[bytes] = []
    while len(out) < len(events):
        ready = [
            (depth[i], i)
            for i, ev in by_id.items()
            if i not in placed and all(p in placed for p in ev.parents)
        ]
        _, pick = min(ready)
        placed.add(pick)
        out.append(pick)
    return out


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=histories(min_events=20, max_events=45, max_steps=40), seed=SEEDS)
def test_order_matches_brute_force(history: History, seed: int) -> None:
    events = history.events
    expected = brute_force_order(events)
    rng = random.Random(seed)
    arrival = list(events)
    rng.shuffle(arrival)
    managed = ManagedDag(history.server_id)
    for batch in random_batches(arrival, rng):
        managed.receive(batch, NOW, verified=True)
    got = [ev.id for ev in managed.order]
    assert got == expected
    position = {event_id: i for i, event_id in enumerate(got)}
    for ev in managed.order:
        for parent in ev.parents:
            assert position[parent] < position[ev.id]
    # And the DAG's own depths agree with the ones recomputed from the definition.
    assert managed.dag.depth == brute_force_depths(events)


# --- equivocation -----------------------------------------------------------------------------


def add_fork(history: History, rng: random.Random) -> tuple[list[Event], bytes, int]:
    """Fork one member's chain with a second signed event at an existing seq.

    Also signs a child on the fork branch and an event by another member that depends on the
    fork (honest peers who saw only that branch). Returns (events, forked author, fork seq).
    """
    events = list(history.events)
    authored = [i for i in history.members if any(e.author == i.public_key for e in events)]
    forker = rng.choice(authored)
    chain = sorted((e for e in events if e.author == forker.public_key), key=lambda e: e.seq)
    original = rng.choice(chain)
    variant = rng.choice(("profile", "message", "same-payload"))
    if variant == "profile":
        payload: object = SetProfile("forked")
    elif variant == "message":
        payload = Message(history.general, "fork")
    else:  # same kind and payload (a Join keeps its valid invite proof), another time
        payload = original.payload
    fork = sign_event(
        secret_key=forker.secret_key,
        author=forker.public_key,
        server=history.server_id,
        seq=original.seq,
        prev=original.prev,
        deps=original.deps,
        ts=original.ts + 1,
        payload=payload,  # type: ignore[arg-type]
    )
    assert fork.id != original.id
    child = sign_event(
        secret_key=forker.secret_key,
        author=forker.public_key,
        server=history.server_id,
        seq=fork.seq + 1,
        prev=fork.id,
        deps=(),
        ts=fork.ts + 1,
        payload=Message(history.general, "on the fork"),
    )
    events += [fork, child]
    others = [i for i in history.identities if i.public_key != forker.public_key]
    witness = rng.choice(others)
    head = max(
        (e for e in events if e.author == witness.public_key), key=lambda e: e.seq, default=None
    )
    if head is not None:
        events.append(
            sign_event(
                secret_key=witness.secret_key,
                author=witness.public_key,
                server=history.server_id,
                seq=head.seq + 1,
                prev=head.id,
                deps=(child.id,),
                ts=max(head.ts, child.ts) + 1,
                payload=Reaction(child.id, "👀"),
            )
        )
    return events, forker.public_key, original.seq


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=histories(max_events=100), seed=SEEDS)
def test_equivocation_converges(history: History, seed: int) -> None:
    rng = random.Random(seed)
    events, forker, fork_seq = add_fork(history, rng)
    _, managed = replay_in_orders(history.server_id, events, seed, orders=ORDERS)
    dag = managed.dag
    assert dag.fork_seq[forker] == fork_seq
    proofs = dag.fork_proofs[forker]
    assert proofs
    for a, b in proofs:
        assert a != b
        assert dag.events[a].author == dag.events[b].author == forker
        assert dag.events[a].seq == dag.events[b].seq
    state = managed.state
    assert state is not None
    for ev in dag.events.values():
        if ev.author == forker and ev.seq >= fork_seq:
            assert state.rejected.get(ev.id) == RejectReason.EQUIVOCATION


# --- undo window ------------------------------------------------------------------------------


def late_events(history: History) -> list[Event]:
    """Two events by newcomers that are shallow (depth 1 and 3): whenever they arrive, they
    land near the start of the order."""
    genesis = history.genesis
    muter = cached_identity("late-muter")
    joiner = cached_identity("late-joiner")
    invite = history.link.invite
    invite_ev = next(e for e in history.events if e.id == invite)
    return [
        sign_event(
            secret_key=muter.secret_key,
            author=muter.public_key,
            server=history.server_id,
            seq=1,
            prev=ZERO_ID,
            deps=(genesis.id,),
            ts=genesis.ts,
            payload=MuteGrove(True),
        ),
        sign_event(
            secret_key=joiner.secret_key,
            author=joiner.public_key,
            server=history.server_id,
            seq=1,
            prev=ZERO_ID,
            deps=(invite,),
            ts=invite_ev.ts,
            payload=Join(
                invite,
                sign_join(history.link.seed, history.server_id, invite, joiner.public_key),
            ),
        ),
    ]


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=histories(min_events=40), seed=SEEDS)
def test_small_undo_window_falls_back_to_rebuild(history: History, seed: int) -> None:
    rng = random.Random(seed)
    window = 8
    # Random causal arrival with a tiny window: every receive still equals fresh.
    managed = ManagedDag(history.server_id, undo_window=window)
    for ev in late_first_extension(history.events, rng):
        managed.receive([ev], NOW, verified=True)
        assert_matches_fresh(managed)
    # A late event far further back than the window: correct, via a rebuild.
    for late in late_events(history):
        before = managed.rebuilds
        managed.receive([late], NOW)
        position = [ev.id for ev in managed.order].index(late.id)
        if position < len(managed.order) - 2 * window:  # beyond any kept journal
            assert managed.rebuilds == before + 1
        # (A late event a removal did not see is ordered after that removal, so it can land
        # near the end instead; either way the state must equal a fresh replay.)
        assert_matches_fresh(managed)
    # The same late events with the default window rewind instead.
    roomy = ManagedDag(history.server_id)
    roomy.receive(causal_order(history.events), NOW, verified=True)
    roomy.receive(late_events(history), NOW)
    assert roomy.rebuilds == 1
    assert_matches_fresh(roomy)
    assert state_hash(roomy.state) == state_hash(managed.state)  # type: ignore[arg-type]


# --- restore from the store, then late events ------------------------------------------------


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(history=histories(), seed=SEEDS, window=st.sampled_from((8, 20_000)))
def test_restore_then_late_events_equals_fresh(history: History, seed: int, window: int) -> None:
    """``restore(stored_rows())`` reproduces the live DAG exactly, and late concurrent events
    received afterwards (removals among them) still give the fresh replay's state and order."""
    rng = random.Random(seed)
    arrival = late_first_extension(history.events, rng)
    split = rng.randint(1, len(arrival) - 1)
    live = ManagedDag(history.server_id)
    live.receive(arrival[:split], NOW, verified=True)
    restored = ManagedDag(history.server_id, undo_window=window)
    restored.restore(live.stored_rows())
    assert restored.state is not None
    assert live.state is not None
    assert state_hash(restored.state) == state_hash(live.state)
    assert [ev.id for ev in restored.order] == [ev.id for ev in live.order]
    assert restored.dag.depth == live.dag.depth
    assert restored.dag.fork_seq == live.dag.fork_seq
    late = arrival[split:]
    rng.shuffle(late)
    for batch in random_batches(late, rng):
        restored.receive(batch, NOW, verified=True)
        live.receive(batch, NOW, verified=True)
        assert_matches_fresh(restored)
        assert state_hash(restored.state) == state_hash(live.state)
    assert len(restored.pending) == 0
    assert restored.dag.depth == fresh_dag(history.server_id, history.events).depth


# --- pending buffer limits --------------------------------------------------------------------


def orphan(author_label: str, n: int, *, ts: int = START_MS, payload: object = None) -> Event:
    """An event whose ``prev`` never arrives: seq 2 of a chain whose seq 1 nobody has."""
    who = cached_identity(author_label)
    return sign_event(
        secret_key=who.secret_key,
        author=who.public_key,
        server=SERVER,
        seq=2,
        prev=seed_bytes(f"missing/{author_label}/{n}"),
        deps=(),
        ts=ts,
        payload=payload if payload is not None else MuteGrove(n % 2 == 0),  # type: ignore[arg-type]
    )


_OWNER = cached_identity("owner")
_, _GENESIS = Community.create(_OWNER, "pending", START_MS)
SERVER = _GENESIS.id


def check_pending_invariants(buffer: PendingBuffer) -> None:
    entries = buffer._entries
    assert len(buffer) <= MAX_PENDING_EVENTS
    assert buffer.size_bytes == sum(len(ev.signable) for ev, _, _ in entries.values())
    assert buffer.size_bytes <= MAX_PENDING_BYTES
    per_author: dict[bytes, int] = {}
    for ev, _, _ in entries.values():
        per_author[ev.author] = per_author.get(ev.author, 0) + 1
    assert per_author == buffer._per_author
    assert all(count <= MAX_PENDING_PER_AUTHOR for count in per_author.values())
    waiting = {i for ids in buffer._waiting.values() for i in ids}
    assert waiting == set(entries)


def test_pending_is_capped_per_author() -> None:
    managed = ManagedDag(SERVER)
    managed.receive([_GENESIS], START_MS)
    flood = [orphan("flooder", n) for n in range(MAX_PENDING_PER_AUTHOR + 200)]
    receipt = managed.receive(flood, START_MS)
    assert not receipt.refused
    assert not receipt.inserted
    assert len(managed.pending) == MAX_PENDING_PER_AUTHOR
    assert managed.pending.dropped == 200
    assert len(managed.pending.missing_parents()) == MAX_PENDING_PER_AUTHOR
    check_pending_invariants(managed.pending)
    # Another author still gets room.
    managed.receive([orphan("bystander", 0)], START_MS)
    assert len(managed.pending) == MAX_PENDING_PER_AUTHOR + 1
    assert_matches_fresh(managed)


def test_receipt_does_not_count_refused_buffering_as_buffered() -> None:
    managed = ManagedDag(SERVER)
    managed.receive([_GENESIS], START_MS)
    flood = [orphan("over-cap", n) for n in range(MAX_PENDING_PER_AUTHOR + 3)]
    receipt = managed.receive(flood, START_MS, verified=True)
    assert managed.pending.dropped == 3
    assert receipt.buffered == MAX_PENDING_PER_AUTHOR
    assert receipt.dropped == 3


@pytest.mark.slow
def test_pending_is_capped_in_total_count() -> None:
    managed = ManagedDag(SERVER)
    managed.receive([_GENESIS], START_MS)
    authors = MAX_PENDING_EVENTS // MAX_PENDING_PER_AUTHOR + 1
    first: Event | None = None
    for a in range(authors):
        batch = [orphan(f"crowd-{a}", n) for n in range(MAX_PENDING_PER_AUTHOR)]
        first = first or batch[0]
        managed.receive(batch, START_MS + a, verified=True)
        check_pending_invariants(managed.pending)
    assert first is not None
    assert len(managed.pending) == MAX_PENDING_EVENTS
    assert first.id not in managed.pending  # the oldest went first
    assert managed.pending.dropped == authors * MAX_PENDING_PER_AUTHOR - MAX_PENDING_EVENTS


def big_orphan(n: int) -> Event:
    """An orphan of about 200 KB (a key rotation with the most shares a payload may carry)."""
    shares = tuple(KeyShare(seed_bytes(f"peer/{n}/{i}"), bytes(128)) for i in range(1_200))
    return orphan(
        "big", n, payload=RotateChannelKey(seed_bytes("channel"), n.to_bytes(16, "big"), shares)
    )


@pytest.mark.slow
def test_pending_is_capped_in_bytes() -> None:
    managed = ManagedDag(SERVER)
    managed.receive([_GENESIS], START_MS)
    one = big_orphan(0)
    count = MAX_PENDING_BYTES // len(one.signable) + 10
    for n in range(count):
        managed.receive([big_orphan(n)], START_MS, verified=True)
        assert managed.pending.size_bytes <= MAX_PENDING_BYTES
    check_pending_invariants(managed.pending)
    assert len(managed.pending) < count
    assert managed.pending.dropped == count - len(managed.pending)
    assert one.id not in managed.pending


def test_pending_expires() -> None:
    managed = ManagedDag(SERVER)
    managed.receive([_GENESIS], START_MS)
    t0 = START_MS + 1_000
    old = [orphan("old", n) for n in range(20)]
    new = [orphan("new", n) for n in range(10)]
    managed.receive(old, t0)
    managed.receive(new, t0 + MAX_PENDING_AGE_MS // 2)
    assert len(managed.pending) == 30
    assert managed.pending.expire(t0 + MAX_PENDING_AGE_MS) == 0  # exactly the age: kept
    assert managed.pending.expire(t0 + MAX_PENDING_AGE_MS + 1) == 20
    assert len(managed.pending) == 10
    check_pending_invariants(managed.pending)
    assert managed.pending.expire(t0 + 2 * MAX_PENDING_AGE_MS) == 10
    assert len(managed.pending) == 0
    assert managed.pending.size_bytes == 0
    assert managed.pending.missing_parents() == set()
    # Expired events are gone for good: their missing parents no longer pull them in.
    assert all(ev.id not in managed.dag for ev in old + new)


@settings(max_examples=examples(60), deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(("add", "add", "add", "take", "expire")),
            st.integers(0, 5),  # author
            st.integers(0, 7),  # missing parent
            st.integers(0, 3),  # clock advance (in tenths of the max age)
        ),
        max_size=120,
    )
)
def test_pending_buffer_invariants_under_small_caps(
    ops: list[tuple[str, int, int, int]],
) -> None:
    """Random add/take/expire sequences with tiny caps keep every bound and every index."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pending_module, "MAX_PENDING_EVENTS", 12)
        mp.setattr(pending_module, "MAX_PENDING_PER_AUTHOR", 4)
        mp.setattr(pending_module, "MAX_PENDING_BYTES", 2_000)
        buffer = PendingBuffer()
        now = 0
        for n, (op, author, parent, advance) in enumerate(ops):
            now += advance * MAX_PENDING_AGE_MS // 10
            parent_id = bytes([parent]) * 32
            if op == "add":
                ev = fake_event(n, author)
                buffer.add(ev, parent_id, now)
            elif op == "take":
                for ev in buffer.take(parent_id):
                    assert ev.id not in buffer
            else:
                buffer.expire(now)
                assert all(now - t <= MAX_PENDING_AGE_MS for _, _, t in buffer._entries.values())
            assert len(buffer) <= 12
            assert buffer.size_bytes <= 2_000
            assert all(c <= 4 for c in buffer._per_author.values())
            assert buffer.size_bytes == sum(len(e.signable) for e, _, _ in buffer._entries.values())
            assert {i for ids in buffer._waiting.values() for i in ids} == set(buffer._entries)


def fake_event(n: int, author: int) -> Event:
    """An unsigned stand-in: the buffer only looks at id, author and size."""
    signable = bytes(100 + 37 * (n % 7))
    return Event(
        seed_bytes(f"fake/{n}"),
        SERVER,
        bytes([author]) * 32,
        2,
        bytes(32),
        (),
        0,
        Kind.MUTE_GROVE,
        MuteGrove(True),
        signable,
        bytes(64),
        (bytes(32),),
    )
