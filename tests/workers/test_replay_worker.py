"""The replay worker (relay/replay_worker.py): both memory bounds, deltas and snapshots."""

from __future__ import annotations

import gc
import tracemalloc
from dataclasses import dataclass

from relay.replay_worker import ReplayWorker
from willow_core.client import Community
from willow_core.event import Event
from willow_core.kinds import CreateChannel, GrantPermission, Message
from willow_core.node import Node
from willow_core.permissions import Permission
from willow_core.sync import SyncBatch, SyncDone, SyncRequest
from willow_core.wire import MessageKind, community_topic, inbox_topic, open_envelope, seal

from .helpers import T0, Hub, build_community, events_envelopes, ident, pk, serve_envelope

WORKER = "replay"


@dataclass
class Fed:
    """A community ready to be fed to a worker: SERVE, then its events on the topic."""

    server: bytes
    envelopes: list[bytes]
    events: int


def prepare(label: str, messages: int) -> Fed:
    view, events = build_community(label, messages, grant=[pk(WORKER)])
    owner = ident(label)
    serve = serve_envelope(owner, view.server_id, pk(WORKER))
    return Fed(
        view.server_id, [serve, *events_envelopes(owner, view.server_id, events)], len(events)
    )


def feed(worker: ReplayWorker, fed: Fed, now: int = T0) -> None:
    for raw in fed.envelopes:
        worker.receive(raw, now)
    worker.drain()  # its sync requests: nobody answers in these tests


def touch(worker: ReplayWorker, server: bytes) -> None:
    """Someone asks the worker for a delta: that is a use."""
    request = SyncRequest(1, server, (), None, None)
    asker = ident("asker")
    worker.receive(
        seal(asker, community_topic(server), MessageKind.SYNC_REQUEST, request.encode()), T0
    )
    worker.drain()


def test_lru_keeps_the_most_recently_used_communities() -> None:
    worker = ReplayWorker(ident(WORKER), max_events_per_community=1_000, max_communities=3)
    fed = [prepare(f"owner{i}", 3) for i in range(6)]
    for f in fed[:3]:
        feed(worker, f)
    assert set(worker.node.communities) == {f.server for f in fed[:3]}
    touch(worker, fed[0].server)  # now fed[1] is the least recently used
    feed(worker, fed[3])
    assert set(worker.node.communities) == {fed[0].server, fed[2].server, fed[3].server}
    feed(worker, fed[4])
    feed(worker, fed[5])
    assert set(worker.node.communities) == {fed[3].server, fed[4].server, fed[5].server}
    stats = worker.stats()
    assert stats.communities == 3
    assert stats.lru_evictions == 3
    assert stats.events == sum(f.events for f in fed[3:])
    for f in fed[3:]:
        assert worker.node.communities[f.server].ready
        assert worker.tenancy.granted(f.server)
    # an evicted community is forgotten entirely: topics, progress, probation
    evicted = community_topic(fed[1].server)
    assert evicted not in worker.topics()
    assert fed[1].server not in worker.node.progress
    # ... and comes back on a new SERVE
    feed(worker, fed[1])
    assert fed[1].server in worker.node.communities
    assert worker.stats().communities == 3


def test_a_community_over_the_event_cap_is_evicted_and_refused() -> None:
    worker = ReplayWorker(ident(WORKER), max_events_per_community=40, max_communities=10)
    small = prepare("small", 10)
    big = prepare("big", 60)
    feed(worker, small)
    feed(worker, big)
    assert big.server not in worker.node.communities
    assert worker.refused(big.server)
    assert small.server in worker.node.communities
    stats = worker.stats()
    assert stats.cap_evictions == 1
    assert stats.refused_communities == 1
    assert stats.events == small.events
    # further envelopes about it, even a new SERVE, are ignored without touching the Node
    ignored = stats.ignored_envelopes
    errors = worker.node.errors
    feed(worker, big)
    assert big.server not in worker.node.communities
    # the SERVE is refused; its topic is no longer subscribed, and a stray EVENTS envelope on
    # it is dropped by the Node like any other unknown topic
    assert worker.stats().ignored_envelopes == ignored + 1
    assert community_topic(big.server) not in worker.topics()
    assert worker.node.errors == errors


def test_the_cap_counts_the_pending_buffer_too() -> None:
    worker = ReplayWorker(ident(WORKER), max_events_per_community=30, max_communities=10)
    view, events = build_community("gappy", 40, grant=[pk(WORKER)])
    owner = ident("gappy")
    worker.receive(serve_envelope(owner, view.server_id, pk(WORKER)), T0)
    # genesis, then everything except the event right after it: the rest waits for parents
    for raw in events_envelopes(owner, view.server_id, [events[0], *events[2:]]):
        worker.receive(raw, T0)
    assert worker.refused(view.server_id)
    assert worker.stats().events == 0


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_memory_stays_bounded_when_fed_far_more_than_the_bounds() -> None:
    """Measured with tracemalloc: feeding 8x the LRU bound (and over-cap communities) does
    not grow the worker past what the bound itself holds; an unbounded worker does grow."""
    per_community = 40
    fed = [prepare(f"m{i}", per_community) for i in range(32)]
    over_cap = [prepare(f"huge{i}", 120) for i in range(6)]
    tracemalloc.start()
    try:
        base = _traced()
        worker = ReplayWorker(ident(WORKER), max_events_per_community=100, max_communities=4)
        for f in fed[:4]:
            feed(worker, f)
        at_bound = _traced() - base
        for f in fed[4:8]:
            feed(worker, f)
        warm = _traced() - base  # the same bound, after the first evictions
        for f in fed[8:]:
            feed(worker, f)
        for f in over_cap:
            feed(worker, f)
        after = _traced() - base
        del worker
        unbounded = ReplayWorker(ident(WORKER), max_events_per_community=10**6, max_communities=100)
        base2 = _traced()
        for f in fed:
            feed(unbounded, f)
        unbounded_growth = _traced() - base2
    finally:
        tracemalloc.stop()
    print(
        f"\nreplay worker memory: first 4 communities {at_bound / 1024:.0f} KiB, after 8 "
        f"{warm / 1024:.0f} KiB, after 32 (and 6 over the cap) {after / 1024:.0f} KiB; "
        f"unbounded worker holding all 32: {unbounded_growth / 1024:.0f} KiB"
    )
    assert after < at_bound * 1.25
    assert after < warm * 1.1 + 16 * 1024
    assert unbounded_growth > at_bound * 5  # the measurement does see communities


def test_serves_deltas_to_a_peer_that_is_behind() -> None:
    worker = ReplayWorker(ident(WORKER), max_events_per_community=1_000, max_communities=4)
    f = prepare("owner", 20)
    feed(worker, f)
    held = worker.node.communities[f.server]
    reader = Node(ident("reader"))
    hub = Hub(worker, reader)
    reader.request_sync(f.server, pk(WORKER))
    hub.run(T0 + 10)
    mine = reader.communities[f.server]
    assert set(mine.dag.events) == set(held.dag.events)
    assert mine.state_hash() == held.state_hash()
    # the end-of-history marker counts: the worker holds SyncProvider there
    assert pk(WORKER) in reader.progress[f.server].complete_from


def test_serves_snapshots_that_the_reader_then_verifies() -> None:
    worker = ReplayWorker(ident(WORKER), max_events_per_community=1_000, max_communities=4)
    view, events = build_community("owner", 25, grant=[pk(WORKER)], members=("ann",))
    for raw in [
        serve_envelope(ident("owner"), view.server_id, pk(WORKER)),
        *events_envelopes(ident("owner"), view.server_id, events),
    ]:
        worker.receive(raw, T0)
    worker.drain()
    reader = Node(ident("reader"))
    hub = Hub(worker, reader)
    reader.request_snapshot(view.server_id, pk(WORKER))
    hub.run(T0 + 10)
    progress = reader.progress[view.server_id]
    community: Community = reader.communities[view.server_id]
    assert progress.snapshot_hash == view.state_hash()
    assert progress.snapshot_verified is None  # shown, marked unverified
    assert community.view is not None
    assert not community.ready
    reader.request_sync(view.server_id, pk(WORKER))
    hub.run(T0 + 20)
    assert reader.progress[view.server_id].snapshot_verified is True  # replayed: it matched
    assert community.state_hash() == view.state_hash()


def test_live_events_on_the_topic_keep_a_served_community_current() -> None:
    worker = ReplayWorker(ident(WORKER), max_events_per_community=1_000, max_communities=4)
    owner = Node(ident("owner"))
    server = owner.create("Room", T0).server_id
    owner.author(server, GrantPermission(pk(WORKER), Permission.SYNC_PROVIDER), T0 + 1)
    hub = Hub(owner, worker)
    owner.ask_to_serve(server, pk(WORKER))
    hub.run(T0 + 2)
    channel = owner.author(server, CreateChannel("general"), T0 + 3)
    posted: list[Event] = [owner.author(server, Message(channel.id, "hi"), T0 + 4)]
    hub.run(T0 + 5)
    held = worker.node.communities[server]
    assert posted[0].id in held.dag.events
    assert held.state_hash() == owner.communities[server].state_hash()
    assert open_envelope(serve_envelope(ident("x"), server, pk(WORKER))).kind is MessageKind.SERVE


def test_late_answers_about_an_evicted_community_are_ignored() -> None:
    """The Node still remembers its request ids; an answer naming an evicted community (on any
    topic) must be dropped by the worker, not reach the Node (which would look up the
    forgotten community's progress)."""
    worker = ReplayWorker(ident(WORKER), max_events_per_community=1_000, max_communities=1)
    first, second = prepare("first", 2), prepare("second", 2)
    feed(worker, first)
    feed(worker, second)
    assert first.server not in worker.node.communities
    mallory = ident("mallory")
    errors = worker.node.errors
    for request_id in range(1, 4):
        batch = SyncBatch(request_id, first.server, (), False).encode()
        done = SyncDone(request_id, first.server, 0).encode()
        for topic in (community_topic(second.server), inbox_topic(pk(WORKER))):
            worker.receive(seal(mallory, topic, MessageKind.SYNC_BATCH, batch), T0)
            worker.receive(seal(mallory, topic, MessageKind.SYNC_DONE, done), T0)
    assert worker.node.errors == errors
    assert set(worker.node.communities) == {second.server}
