"""Shared pieces of the worker tests: an in-memory hub, a clock, community builders.

The ``Hub`` stands in for a relay: it delivers every envelope a peer drains to every *other*
peer subscribed to the envelope's topic (``open_envelope(env).topic in peer.topics()``), until
nobody has anything left to send. Peers are ``Node``s or workers (same surface).
"""

from __future__ import annotations

from relay.tenancy import Peer
from willow_core.client import Community
from willow_core.encoding import encode
from willow_core.event import Event
from willow_core.identity import Identity
from willow_core.kinds import CreateChannel, GrantPermission, Message
from willow_core.node import Node
from willow_core.permissions import Permission
from willow_core.testing import identity
from willow_core.wire import MessageKind, community_topic, inbox_topic, open_envelope, seal

__all__ = [
    "T0",
    "Hub",
    "ident",
    "pk",
    "build_community",
    "events_envelopes",
    "serve_envelope",
    "owner_node",
]

T0 = 1_700_000_000_000


def ident(label: str) -> Identity:
    return identity(label)


def pk(label: str) -> bytes:
    return identity(label).public_key


class Hub:
    """An in-memory relay: topic fan-out between peers until quiet."""

    def __init__(self, *peers: Peer) -> None:
        self.peers: list[Peer] = list(peers)
        self.delivered = 0

    def add(self, peer: Peer) -> None:
        self.peers.append(peer)

    def run(self, now_ms: int, *, max_rounds: int = 200) -> int:
        """Deliver until no peer has anything to send; returns envelopes delivered."""
        delivered = 0
        for _ in range(max_rounds):
            moved = 0
            for sender in self.peers:
                for raw in sender.drain():
                    topic = open_envelope(raw).topic
                    for peer in self.peers:
                        if peer is not sender and topic in peer.topics():
                            peer.receive(raw, now_ms)
                            moved += 1
            delivered += moved
            if not moved:
                self.delivered += delivered
                return delivered
        raise AssertionError("the hub did not settle")


def build_community(
    owner: str,
    messages: int,
    *,
    now: int = T0,
    name: str = "Room",
    grant: list[bytes] | None = None,
    members: tuple[str, ...] = (),
) -> tuple[Community, list[Event]]:
    """A community founded by ``owner`` with a channel and ``messages`` posts.

    ``grant`` keys get SyncProvider; ``members`` (labels) are added with a direct grant and
    post in turn with the owner, so the DAG has several authors with cross-author deps.
    Returns the owner's view and every event, parents first.
    """
    view, genesis = Community.create(ident(owner), name, now)
    events = [genesis]
    t = now

    def tick() -> int:
        nonlocal t
        t += 1_000
        return t

    for key in grant or []:
        events.append(view.author(GrantPermission(key, Permission.SYNC_PROVIDER), tick()))
    for label in members:
        events.append(view.author(GrantPermission(pk(label), Permission.SEND_MESSAGES), tick()))
    channel = view.author(CreateChannel("general"), tick())
    events.append(channel)
    views = [view]
    for label in members:
        member = Community(ident(label), view.server_id)
        member.receive(events, tick(), verified=True)
        views.append(member)
    for i in range(messages):
        author = views[i % len(views)]
        missing = [ev for ev in events if ev.id not in author.dag.events]
        if missing:
            author.receive(missing, tick(), verified=True)
        events.append(author.author(Message(channel.id, f"message {i}"), tick()))
    missing = [ev for ev in events if ev.id not in view.dag.events]
    view.receive(missing, tick(), verified=True)
    return view, events


def events_envelopes(sender: Identity, server: bytes, events: list[Event]) -> list[bytes]:
    """EVENTS envelopes on the community topic carrying ``events`` (up to 64 per envelope)."""
    topic = community_topic(server)
    return [
        seal(sender, topic, MessageKind.EVENTS, encode([ev.wire for ev in events[i : i + 64]]))
        for i in range(0, len(events), 64)
    ]


def serve_envelope(sender: Identity, server: bytes, worker: bytes) -> bytes:
    """A SERVE request from ``sender`` to ``worker``'s inbox."""
    return seal(sender, inbox_topic(worker), MessageKind.SERVE, encode([server]))


def owner_node(label: str, now: int) -> tuple[Node, bytes]:
    """A client Node that founds a community; returns it and the server id."""
    node = Node(ident(label))
    community = node.create("Room", now)
    return node, community.server_id
