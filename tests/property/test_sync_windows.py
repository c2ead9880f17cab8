"""Windowed sync (docs/protocol.md sections 13.2-13.4) over random histories.

For any pair of replicas, any window and any page size, one exchange (``SyncRound`` on the
requester, ``answer`` on the responder, every body through its wire form) ends, leaves the
requester holding everything the responder holds, never sends an event twice, keeps every answer
within its window (or one event), moves the cursor strictly forward, and reads the same events
off the order as it sorts from the chains. Forked authors included: their whole history is sent
on every request, so without the cursor a fork longer than a window would be sent forever.
"""

from __future__ import annotations

import random
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import START_MS, History, examples, histories

from willow_core import sync
from willow_core.client import Community
from willow_core.event import Event, decode_event, sign_event
from willow_core.kinds import CreateChannel, Message
from willow_core.managed import ManagedDag
from willow_core.sync import SyncDone, SyncRequest, SyncRound, answer
from willow_core.testing import identity

NOW = START_MS + 10**9
SETTINGS = settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _copy(server: bytes, events: list[Event]) -> ManagedDag:
    managed = ManagedDag(server)
    managed.receive(events, NOW, verified=True)
    assert len(managed.dag) == len(events)
    assert not len(managed.pending)
    return managed


def _fork(history: History, rng: random.Random) -> list[Event]:
    """A second branch by one member, a few events long, from a random point of its chain."""
    authors = [i for i in history.members if any(e.author == i.public_key for e in history.events)]
    forker = rng.choice(authors)
    chain = sorted(
        (e for e in history.events if e.author == forker.public_key), key=lambda e: e.seq
    )
    base = rng.choice(chain)
    out: list[Event] = []
    prev, deps, ts = base.prev, base.deps, base.ts + 1
    for i in range(rng.randint(1, 6)):
        ev = sign_event(
            secret_key=forker.secret_key,
            author=forker.public_key,
            server=history.server_id,
            seq=base.seq + i,
            prev=prev,
            deps=deps,
            ts=ts + i,
            payload=Message(history.general, f"fork {i}"),
        )
        out.append(ev)
        prev, deps = ev.id, ()
    return out


def exchange(responder: ManagedDag, requester: ManagedDag, window: int) -> tuple[int, int]:
    """Run one exchange to its end; returns (requests, events sent)."""
    round_ = SyncRound(requester.server_id, None)
    sent: set[bytes] = set()
    requests = 0
    limit = 4 * len(responder.dag) + 20
    while not round_.done:
        requests += 1
        assert requests <= limit, "the exchange does not end"
        request = round_.next_request(requester.dag, requests)
        request = SyncRequest.decode(request.encode())
        batches, done = answer(responder.dag, request, order=responder.order, window=window)
        assert (batches, done) == answer(responder.dag, request, window=window), "scan != sort"
        wires = [w for b in batches for w in b.events]
        assert done.sent == len(wires)
        assert len(wires) <= 1 or sum(len(w) + 4 for w in wires) <= window
        events = [decode_event(w) for w in wires]
        assert not sent & {e.id for e in events}, "an event sent twice in one exchange"
        sent.update(e.id for e in events)
        depth = responder.dag.depth
        keys = [(depth[e.id], e.id) for e in events]
        assert keys == sorted(keys)
        if request.after is not None:
            assert all(k > request.after for k in keys)
        done = SyncDone.decode(done.encode())
        if done.cursor is not None:
            assert done.cursor == keys[-1]
        requester.receive(events, NOW)
        round_.answered(done.cursor)
    return requests, len(sent)


@SETTINGS
@given(
    history=histories(max_events=120),
    seed=st.integers(0, 2**32),
    window=st.sampled_from((1, 600, 2_000, 8_000, sync.WINDOW_BYTES)),
    max_heads=st.sampled_from((1, 2, 3, sync.MAX_HEADS)),
    forked=st.booleans(),
)
def test_a_windowed_exchange_brings_everything_once(
    history: History, seed: int, window: int, max_heads: int, forked: bool
) -> None:
    rng = random.Random(seed)
    union = list(history.events) + (_fork(history, rng) if forked else [])
    server = history.server_id
    held = {r.identity.public_key: set(r.dag.events) for r in history.replicas}
    keys = list(held)
    a, b = rng.choice(keys), rng.choice(keys)
    # The responder holds one replica's events or everything; the requester another replica's.
    responder_ids = set(union) if rng.random() < 0.5 else held[a]
    responder = _copy(server, [e for e in union if e.id in responder_ids])
    requester = _copy(server, [e for e in history.events if e.id in held[b]])
    before = set(requester.dag.events)
    with mock.patch.object(sync, "MAX_HEADS", max_heads):
        exchange(responder, requester, window)
    assert not len(requester.pending)
    assert set(responder.dag.events) <= set(requester.dag.events)
    assert set(requester.dag.events) == before | set(responder.dag.events)


def test_a_fork_longer_than_a_window_is_sent_once() -> None:
    """The case that needs the cursor: every request names the forked author, so the heads rule
    sends its whole history each time; the cursor still moves on."""
    owner = identity("windows/owner")
    room, genesis = Community.create(owner, "room", START_MS)
    events = [genesis]
    channel = room.author(CreateChannel("general"), START_MS + 1)
    events.append(channel)
    for i in range(40):
        events.append(room.author(Message(channel.id, f"m{i} " + "x" * 200), START_MS + 2 + i))
    base = events[2]
    branch: list[Event] = []
    prev, deps = base.prev, base.deps
    for i in range(40):
        ev = sign_event(
            secret_key=owner.secret_key,
            author=owner.public_key,
            server=room.server_id,
            seq=base.seq + i,
            prev=prev,
            deps=deps,
            ts=base.ts + 1 + i,
            payload=Message(channel.id, f"b{i} " + "y" * 200),
        )
        branch.append(ev)
        prev, deps = ev.id, ()
    responder = _copy(room.server_id, events + branch)
    assert owner.public_key in responder.dag.fork_seq
    requester = _copy(room.server_id, events[:2])
    requests, sent = exchange(responder, requester, 1_000)
    assert requests > 10  # many windows...
    # ...and every event once: all the forked author's but the requester's head (genesis too)
    assert sent == len(responder.dag) - 1
    assert set(requester.dag.events) == set(responder.dag.events)
