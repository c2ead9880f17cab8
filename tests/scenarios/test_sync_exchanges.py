"""Sync exchanges between sans-I/O Nodes (docs/protocol.md sections 13.4 and 14.1).

* Catching up asks one provider: every missing event arrives once, not once per serving node;
  the provider rotates between exchanges.
* A silent provider is replaced (by the next provider, or the community topic when none is
  left) after ``SYNC_SILENCE_MS`` of ticks, and left alone for ``SILENT_PROVIDER_MS``: the
  reader still converges whichever provider is gone, and whenever it goes (property test).
* Flow control: one answer holds at most ``WINDOW_BYTES`` of events and the reader has one
  request in flight per exchange, so a long catch-up never queues more than a window for it.
* A newcomer with nothing asks the topic; only its first window comes from every serving node.
* Gaps seen in live traffic during a catch-up do not start more exchanges.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from willow_core.client import Community
from willow_core.encoding import encode
from willow_core.event import Event
from willow_core.identity import Identity
from willow_core.kinds import CreateChannel, GrantPermission, Message
from willow_core.node import SILENT_PROVIDER_MS, SYNC_SILENCE_MS, Node
from willow_core.permissions import Permission
from willow_core.sync import WINDOW_BYTES, SyncBatch, SyncDone, SyncRequest
from willow_core.testing import identity
from willow_core.wire import MessageKind, community_topic, open_envelope, seal

T0 = 1_700_000_000_000


@dataclass
class Delivery:
    sender: bytes
    receiver: bytes
    kind: MessageKind
    body: bytes


@dataclass
class Net:
    """An in-memory relay: topic fan-out in publication order, one envelope at a time, with
    nodes that can be down (what they send and what is sent to them is lost). ``log`` records
    every delivery."""

    nodes: list[Node]
    down: set[bytes] = field(default_factory=set)
    log: list[Delivery] = field(default_factory=list)
    queue: deque[tuple[Node, bytes]] = field(default_factory=deque)

    def step(self, now_ms: int) -> bool:
        """Deliver the oldest envelope in flight; False when nothing is."""
        for node in self.nodes:
            self.queue.extend((node, raw) for raw in node.drain())
        if not self.queue:
            return False
        sender, raw = self.queue.popleft()
        me = sender.identity.public_key
        if me in self.down:
            return True
        env = open_envelope(raw)
        for node in self.nodes:
            key = node.identity.public_key
            if node is sender or key in self.down or env.topic not in node.topics():
                continue
            self.log.append(Delivery(me, key, env.kind, env.body))
            node.receive(raw, now_ms)
        return True

    def run(self, now_ms: int, *, limit: int = 100_000) -> None:
        for _ in range(limit):
            if not self.step(now_ms):
                return
        raise AssertionError("the network does not settle")

    def requests_to(self, key: bytes) -> list[Delivery]:
        return [d for d in self.log if d.receiver == key and d.kind is MessageKind.SYNC_REQUEST]


def _history(owner: Identity, providers: list[bytes], messages: int, size: int = 40) -> list[Event]:
    room, genesis = Community.create(owner, "room", T0)
    events = [genesis]
    t = T0
    for key in providers:
        t += 1
        events.append(room.author(GrantPermission(key, Permission.SYNC_PROVIDER), t))
    t += 1
    channel = room.author(CreateChannel("general"), t)
    events.append(channel)
    for i in range(messages):
        t += 1
        events.append(room.author(Message(channel.id, f"{i} " + "x" * size), t))
    return events


def _node(label: str, events: list[Event], *, serves: bool = False) -> Node:
    node = Node(identity(label), serves=serves)
    community = node.open(events[0].id)
    if events:
        community.managed.receive(events, T0, verified=True)
    return node


def _received(node: Node, server: bytes) -> int:
    return node.progress[server].events


@pytest.fixture
def setup() -> tuple[list[Event], Node, Node, Node]:
    a, b = identity("sync/provider-a"), identity("sync/provider-b")
    events = _history(identity("sync/owner"), [a.public_key, b.public_key], 300)
    reader = _node("sync/reader", events[:100])
    return (
        events,
        _node("sync/provider-a", events, serves=True),
        _node("sync/provider-b", events, serves=True),
        reader,
    )


def test_catching_up_asks_one_provider_and_gets_each_event_once(
    setup: tuple[list[Event], Node, Node, Node],
) -> None:
    events, a, b, reader = setup
    server = events[0].id
    net = Net([a, b, reader])
    reader.request_sync(server)
    net.run(T0)
    assert set(reader.communities[server].dag.events) == {e.id for e in events}
    assert _received(reader, server) == len(events) - 100  # nothing twice
    asked = [n for n in (a, b) if net.requests_to(n.identity.public_key)]
    assert len(asked) == 1
    first = asked[0].identity.public_key
    assert reader.progress[server].complete_from == {first}
    assert reader.progress[server].rounds == 1
    # The next exchange goes to the other provider: no single view is trusted forever.
    reader.request_sync(server)
    net.run(T0)
    other = ({a.identity.public_key, b.identity.public_key} - {first}).pop()
    assert net.requests_to(other)
    assert reader.progress[server].complete_from == {first, other}
    assert _received(reader, server) == len(events) - 100


def test_a_silent_provider_is_replaced_and_left_alone(
    setup: tuple[list[Event], Node, Node, Node],
) -> None:
    events, a, b, reader = setup
    server = events[0].id
    net = Net([a, b, reader])
    reader.request_sync(server)
    chosen = reader.progress[server].provider
    assert chosen is not None
    net.down.add(chosen)
    net.run(T0)
    assert len(reader.communities[server].dag) == 100  # nobody answered
    reader.tick(T0)
    reader.tick(T0 + SYNC_SILENCE_MS - 1)
    net.run(T0)
    assert reader.progress[server].fallbacks == 0  # not silent long enough yet
    now = T0 + SYNC_SILENCE_MS
    reader.tick(now)
    assert reader.progress[server].fallbacks == 1
    net.run(now)
    assert set(reader.communities[server].dag.events) == {e.id for e in events}
    other = ({a.identity.public_key, b.identity.public_key} - {chosen}).pop()
    assert reader.progress[server].complete_from == {other}
    # Asking again (within the cool-down) goes straight to the live provider, and after the
    # cool-down the silent one may be picked again.
    reader.request_sync(server)
    assert reader.progress[server].provider == other
    net.run(now)
    reader.tick(now + SILENT_PROVIDER_MS)
    picks = set()
    for _ in range(2):
        reader.request_sync(server)
        picks.add(reader.progress[server].provider)
        net.run(now + SILENT_PROVIDER_MS)
    assert chosen in picks


def test_with_no_provider_left_the_exchange_moves_to_the_topic() -> None:
    """The only granted provider is down: after its silence the reader asks the community
    topic, where any serving node (here one without a grant) answers."""
    a = identity("topic/provider")
    events = _history(identity("topic/owner"), [a.public_key], 300)
    server = events[0].id
    provider = _node("topic/provider", events, serves=True)
    spare = _node("topic/spare", events, serves=True)  # serving, never granted
    reader = _node("topic/reader", events[:100])
    net = Net([provider, spare, reader])
    net.down.add(a.public_key)
    reader.request_sync(server)
    assert reader.progress[server].provider == a.public_key
    net.run(T0)
    assert not net.requests_to(spare.identity.public_key)  # one provider asked, not the topic
    reader.tick(T0)
    reader.tick(T0 + SYNC_SILENCE_MS)
    assert reader.progress[server].provider is None  # the topic
    net.run(T0 + SYNC_SILENCE_MS)
    assert set(reader.communities[server].dag.events) == {e.id for e in events}
    assert net.requests_to(spare.identity.public_key)
    assert reader.progress[server].complete_from == set()  # the spare vouches for nothing


def test_asking_again_does_not_hide_a_dead_provider(
    setup: tuple[list[Event], Node, Node, Node],
) -> None:
    """Anti-entropy may ask more often than ``SYNC_SILENCE_MS``: silence still adds up."""
    events, a, b, reader = setup
    server = events[0].id
    net = Net([a, b, reader])
    reader.request_sync(server)
    chosen = reader.progress[server].provider
    assert chosen is not None
    net.down.add(chosen)
    for step in range(0, SYNC_SILENCE_MS + 2_000, 1_000):
        reader.tick(T0 + step)
        reader.request_sync(server)
        net.run(T0 + step)
    assert reader.progress[server].fallbacks >= 1
    net.run(T0 + SYNC_SILENCE_MS + 2_000)
    assert set(reader.communities[server].dag.events) == {e.id for e in events}


def test_one_window_per_answer_and_one_request_in_flight() -> None:
    a = identity("flow/provider")
    events = _history(identity("flow/owner"), [a.public_key], 2_500, size=400)
    server = events[0].id
    total = sum(len(e.wire) for e in events)
    assert total > 2 * WINDOW_BYTES  # a catch-up of several windows
    provider = _node("flow/provider", events, serves=True)
    reader = _node("flow/reader", events[:1])
    net = Net([provider, reader])
    reader.request_sync(server)
    net.run(T0)
    assert set(reader.communities[server].dag.events) == {e.id for e in events}
    assert _received(reader, server) == len(events) - 1
    # Replay the log: between two requests of the reader, the provider sends one window.
    in_flight = False
    per_request: Counter[int] = Counter()
    markers: list[SyncDone] = []
    for d in net.log:
        if d.kind is MessageKind.SYNC_REQUEST:
            assert not in_flight, "a request while the previous answer was still coming"
            in_flight = True
        elif d.kind is MessageKind.SYNC_BATCH:
            batch = SyncBatch.decode(d.body)
            per_request[batch.request_id] += sum(len(w) + 4 for w in batch.events)
        elif d.kind is MessageKind.SYNC_DONE:
            in_flight = False
            markers.append(SyncDone.decode(d.body))
    assert len(markers) >= 3
    assert all(m.cursor is not None for m in markers[:-1])
    assert markers[-1].cursor is None
    assert max(per_request.values()) <= WINDOW_BYTES
    assert reader.progress[server].complete_from == {a.public_key}


def test_a_newcomer_asks_the_topic_and_then_follows_one_answerer() -> None:
    a, b = identity("new/provider-a"), identity("new/provider-b")
    events = _history(identity("new/owner"), [a.public_key, b.public_key], 2_500, size=400)
    server = events[0].id
    providers = [_node(f"new/provider-{x}", events, serves=True) for x in "ab"]
    reader = Node(identity("new/reader"))
    reader.open(server)
    net = Net([*providers, reader])
    reader.request_sync(server)
    net.run(T0)
    assert set(reader.communities[server].dag.events) == {e.id for e in events}
    first_request = SyncRequest.decode(net.requests_to(a.public_key)[0].body)
    assert first_request.heads == ()  # on the topic: both got it
    assert net.requests_to(b.public_key)
    # Both sent their first window; after that only one answered.
    followed = [p for p in (a, b) if len(net.requests_to(p.public_key)) > 1]
    assert len(followed) == 1
    # Beyond the history: at most the first window of the provider not followed.
    per_answer: dict[tuple[bytes, int], int] = {}
    for d in net.log:
        if d.kind is MessageKind.SYNC_BATCH:
            batch = SyncBatch.decode(d.body)
            key = (d.sender, batch.request_id)
            per_answer[key] = per_answer.get(key, 0) + len(batch.events)
    assert _received(reader, server) - len(events) <= max(per_answer.values())


def test_live_gaps_during_a_catch_up_start_no_more_exchanges(
    setup: tuple[list[Event], Node, Node, Node],
) -> None:
    events, a, _, reader = setup
    server = events[0].id
    reader.request_sync(server)
    reader.drain()  # the request is in flight
    author = identity("sync/owner")
    late = events[-1]
    body = encode([late.wire])  # its parents are among what the reader still lacks
    reader.receive(seal(author, community_topic(server), MessageKind.EVENTS, body), T0)
    assert reader.communities[server].managed.pending  # a gap...
    assert not reader.drain()  # ...but the catch-up will bring its parents: no new request
    assert a is not None


@dataclass
class Plan:
    providers: int
    dead: int  # which provider goes down
    after: int  # ...after this many deliveries (0: before the catch-up)
    reader_has: int  # events the reader starts with (0: a newcomer)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=st.builds(
        Plan,
        providers=st.integers(2, 3),
        dead=st.integers(0, 2),
        after=st.integers(0, 40),
        reader_has=st.sampled_from((0, 1, 50, 400)),
    )
)
def test_the_reader_converges_whichever_provider_is_gone_and_whenever(plan: Plan) -> None:
    keys = [identity(f"prop/provider-{i}") for i in range(plan.providers)]
    events = _HISTORIES.setdefault(
        plan.providers,
        _history(identity("prop/owner"), [k.public_key for k in keys], 1_200, size=300),
    )
    server = events[0].id
    providers = [_node(f"prop/provider-{i}", events, serves=True) for i in range(plan.providers)]
    reader = _node("prop/reader", events[: plan.reader_has]) if plan.reader_has else None
    if reader is None:
        reader = Node(identity("prop/reader"))
        reader.open(server)
    net = Net([*providers, reader])
    victim = keys[plan.dead % plan.providers].public_key
    reader.request_sync(server)
    now = T0
    for _ in range(plan.after):  # a few deliveries, then the victim goes down
        net.step(now)
    net.down.add(victim)
    for _ in range(30):  # ticks, a second apart, with everything delivered in between
        net.run(now)
        reader.tick(now)
        now += 1_000
        if not reader.syncing(server):
            break
    assert set(reader.communities[server].dag.events) == {e.id for e in events}
    assert not reader.communities[server].managed.pending
    assert reader.progress[server].complete_from  # some provider vouched for the end


_HISTORIES: dict[int, list[Event]] = {}
