"""A peer, sans I/O: communities, envelopes in, envelopes out.

Every kind of participant is a ``Node`` driven by a shell: browser tabs, native clients, the
replay and storage workers, the agent, the network simulator. The shell delivers envelope bytes
(``receive``) and publishes what ``drain`` returns; time is passed in. Addressing:

* new events go to the community topic (everyone subscribed gets them);
* a sync request goes either to one peer's inbox (any member holding the community answers) or
  to the community topic, where only peers that *serve* (workers holding ``SyncProvider``, and
  any node configured with ``serves=True``) answer, so a topic request is not amplified by every
  member;
* answers (batches, end-of-history markers, snapshots, storage acknowledgements) go to the
  requester's inbox.

Events are self-authenticating, so a node takes them from anyone. What is *not* self-verifying
counts only when its sender holds ``SyncProvider`` (or is an admin) in the community: an
end-of-history marker, a storage acknowledgement. A snapshot is shown (marked unverified)
whoever sent it, since a newcomer has no state to judge the sender by; it becomes verified only
when the history it claims replays to the same state hash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .client import Community
from .encoding import decode, encode
from .errors import DecodeError, LocalError, RemoteError
from .event import MAX_EVENT_BYTES, Event, decode_event
from .identity import Identity
from .invite import InviteLink
from .kinds import Payload
from .managed import Receipt
from .materialize import materialize
from .permissions import Permission, has_permission
from .state import state_hash
from .sync import (
    Head,
    SnapshotAssembler,
    SnapshotChunk,
    SnapshotRequest,
    SyncBatch,
    SyncDone,
    SyncRequest,
    answer,
    history_up_to,
    plan_requests,
    requester_has_more,
    snapshot_chunks,
)
from .wire import (
    MAX_BODY_BYTES,
    Envelope,
    MessageKind,
    community_topic,
    inbox_topic,
    open_envelope,
    seal,
    verify_envelope,
)

__all__ = ["Node", "SyncProgress", "ReceiptHook", "MAX_EVENTS_PER_ENVELOPE", "MAX_COMMUNITIES"]

#: Events in one live EVENTS envelope (a burst is split across envelopes).
MAX_EVENTS_PER_ENVELOPE = 256
#: Communities one node carries (workers bound theirs further).
MAX_COMMUNITIES = 10_000
#: After asking a peer back (its request showed heads we lack), wait this long before asking
#: the same peer again for the same community: its answer is on the way.
PULL_BACK_MS = 5_000

ReceiptHook = Callable[[bytes, Receipt], None]
"""``(server_id, receipt)`` after every batch of received events: how a client shell learns what
to persist and redraw (inserted and moved events) without acknowledging anything."""

StoreHook = Callable[[bytes, list[Event]], Iterable[bytes]]
"""``(server_id, new or moved events) -> ids durably stored`` (the storage worker's commit).

It may raise (a failed write); the node then holds events its store lacks, and the shell must
treat the failure as fatal for that store (the storage worker stops and restarts from disk)."""


@dataclass(slots=True)
class SyncProgress:
    """What a node knows about catching up one community."""

    requested: int = 0
    batches: int = 0
    events: int = 0
    #: end-of-history markers received from trusted providers
    complete_from: set[bytes] = field(default_factory=set)
    #: an unverified snapshot's claimed state hash and heads (until history replays to it)
    snapshot_hash: bytes | None = None
    snapshot_heads: tuple[Head, ...] = ()
    #: None while unverified; then whether the replayed history gave the same state
    snapshot_verified: bool | None = None


class Node:
    """One identity's communities and its side of every protocol exchange."""

    def __init__(
        self,
        identity: Identity,
        *,
        serves: bool = False,
        store: StoreHook | None = None,
        observe: ReceiptHook | None = None,
        max_communities: int = MAX_COMMUNITIES,
    ) -> None:
        self.identity = identity
        self.serves = serves
        self.store = store
        self.observe = observe
        self.max_communities = max_communities
        self.communities: dict[bytes, Community] = {}
        self.progress: dict[bytes, SyncProgress] = {}
        #: event id -> storage workers that acknowledged it (trusted ones only)
        self.stored: dict[bytes, set[bytes]] = {}
        self._outbox: list[bytes] = []
        self._topics: dict[bytes, bytes] = {}
        #: handlers for envelope kinds the node itself does not handle (a worker's history pages)
        self.extra: dict[MessageKind, Callable[[Envelope, int], None]] = {}
        self._next_request = 1
        self._requests: dict[int, bytes] = {}
        #: request id -> events received in batches for it (an end-of-history marker counts only
        #: once the batches it announces are in)
        self._received: dict[int, int] = {}
        #: request id -> (sender, events announced, envelope) of a marker still waiting
        self._done: dict[int, tuple[bytes, int, Envelope]] = {}
        #: (community, peer) -> when we last asked that peer back
        self._pulled: dict[tuple[bytes, bytes], int] = {}
        self._snapshots: dict[int, SnapshotAssembler] = {}
        #: remote errors seen (bad envelopes, undecodable events): a health counter
        self.errors = 0

    # --- the surface shells drive (workers offer the same one) ----------------------------

    @property
    def node(self) -> Node:
        """This node (a worker wrapping a node exposes the node it wraps here)."""
        return self

    def tick(self, now_ms: int) -> None:
        """Periodic upkeep, about once a second: drop out-of-order events that waited too long."""
        for community in self.communities.values():
            community.managed.pending.expire(now_ms)

    # --- topics and outbox ----------------------------------------------------------------

    @property
    def inbox(self) -> bytes:
        return inbox_topic(self.identity.public_key)

    def topics(self) -> list[bytes]:
        """Everything this node should be subscribed to."""
        return [self.inbox, *(community_topic(s) for s in self.communities)]

    def drain(self) -> list[bytes]:
        """Envelopes to publish, oldest first (each names its own topic)."""
        out, self._outbox = self._outbox, []
        return out

    def _send(self, topic: bytes, kind: MessageKind, body: bytes) -> None:
        self._outbox.append(seal(self.identity, topic, kind, body))

    def _request_id(self, server: bytes) -> int:
        request_id = self._next_request
        self._next_request += 1
        self._requests[request_id] = server
        if len(self._requests) > 4096:  # forget the oldest; late answers are just events
            oldest = next(iter(self._requests))
            del self._requests[oldest]
            self._received.pop(oldest, None)
            self._done.pop(oldest, None)
        return request_id

    # --- communities ----------------------------------------------------------------------

    def add(self, community: Community) -> Community:
        if len(self.communities) >= self.max_communities and (
            community.server_id not in self.communities
        ):
            raise LocalError("this node carries its maximum number of communities")
        self.communities[community.server_id] = community
        self._topics[community_topic(community.server_id)] = community.server_id
        self.progress.setdefault(community.server_id, SyncProgress())
        return community

    def remove(self, server_id: bytes) -> None:
        """Stop carrying a community; answers still in flight for it are then ignored."""
        self.communities.pop(server_id, None)
        self._topics.pop(community_topic(server_id), None)
        self.progress.pop(server_id, None)
        for request_id in [r for r, s in self._requests.items() if s == server_id]:
            del self._requests[request_id]
            self._snapshots.pop(request_id, None)

    def open(self, server_id: bytes) -> Community:
        """The community ``server_id``, empty if new (to be filled by sync)."""
        community = self.communities.get(server_id)
        if community is None:
            community = self.add(Community(self.identity, server_id))
        return community

    def create(self, name: str, now_ms: int) -> Community:
        community, genesis = Community.create(self.identity, name, now_ms)
        self.add(community)
        self.publish(community.server_id, [genesis])
        return community

    def author(self, server_id: bytes, payload: Payload, now_ms: int) -> Event:
        """Author an event and queue it for the community topic."""
        ev = self.communities[server_id].author(payload, now_ms)
        self.publish(server_id, [ev])
        return ev

    def join(self, link: InviteLink, now_ms: int) -> Event:
        """Author the Join for ``link`` (its community's history must have synced first)."""
        ev = self.open(link.server).join(link, now_ms)
        self.publish(link.server, [ev])
        return ev

    def publish(self, server_id: bytes, events: list[Event]) -> None:
        topic = community_topic(server_id)
        for i in range(0, len(events), MAX_EVENTS_PER_ENVELOPE):
            wires = [e.wire for e in events[i : i + MAX_EVENTS_PER_ENVELOPE]]
            body = encode(wires)
            if len(body) > MAX_BODY_BYTES:
                for wire in wires:
                    self._send(topic, MessageKind.EVENTS, encode([wire]))
            else:
                self._send(topic, MessageKind.EVENTS, body)

    def request_sync(self, server_id: bytes, peer: bytes | None = None) -> int:
        """Ask ``peer`` (or the community's serving peers) for what we lack."""
        community = self.open(server_id)
        topic = community_topic(server_id) if peer is None else inbox_topic(peer)
        requests = plan_requests(community.dag, 0)
        for request in requests:
            request = request._replace(request_id=self._request_id(server_id))
            self._send(topic, MessageKind.SYNC_REQUEST, request.encode())
        self.progress[server_id].requested += len(requests)
        return len(requests)

    def request_snapshot(self, server_id: bytes, peer: bytes | None = None) -> int:
        self.open(server_id)
        request_id = self._request_id(server_id)
        self._snapshots[request_id] = SnapshotAssembler(request_id, server_id)
        topic = community_topic(server_id) if peer is None else inbox_topic(peer)
        body = SnapshotRequest(request_id, server_id).encode()
        self._send(topic, MessageKind.SNAPSHOT_REQUEST, body)
        return request_id

    def ask_to_serve(self, server_id: bytes, worker: bytes) -> None:
        """Ask a worker to carry a community (it keeps it only if granted SyncProvider)."""
        self._send(inbox_topic(worker), MessageKind.SERVE, encode([server_id]))

    # --- receiving ------------------------------------------------------------------------

    def receive(self, envelope_bytes: bytes, now_ms: int) -> None:
        """Handle one envelope from the relay. Bad input is counted, never raised."""
        try:
            env = open_envelope(envelope_bytes)
        except RemoteError:
            self.errors += 1
            return
        self.receive_envelope(env, now_ms)

    def receive_envelope(self, env: Envelope, now_ms: int) -> None:
        """Handle an already opened envelope (for shells that looked at it first)."""
        if env.sender == self.identity.public_key:
            return  # our own publication echoed back
        try:
            handler = self.extra.get(env.kind)
            if handler is not None:
                handler(env, now_ms)
            else:
                self._dispatch(env, now_ms)
        except (RemoteError, LocalError):
            # LocalError: a request we cannot honour (e.g. no room for another community).
            self.errors += 1

    def _dispatch(self, env: Envelope, now_ms: int) -> None:
        kind = env.kind
        if kind is MessageKind.EVENTS:
            self._on_events(env, now_ms)
        elif kind is MessageKind.SYNC_REQUEST:
            self._on_sync_request(env, now_ms)
        elif kind is MessageKind.SYNC_BATCH:
            self._on_batch(SyncBatch.decode(env.body), now_ms)
        elif kind is MessageKind.SYNC_DONE:
            self._on_done(env, SyncDone.decode(env.body))
        elif kind is MessageKind.SNAPSHOT_REQUEST:
            self._on_snapshot_request(env)
        elif kind is MessageKind.SNAPSHOT_CHUNK:
            self._on_snapshot_chunk(env, SnapshotChunk.decode(env.body))
        elif kind is MessageKind.STORED:
            self._on_stored(env)
        elif kind is MessageKind.SERVE:
            self._on_serve(env)

    def _take(self, server: bytes, wires: Iterable[bytes], now_ms: int) -> Receipt | None:
        community = self.communities.get(server)
        if community is None:
            return None
        events: list[Event] = []
        for wire in wires:
            try:
                events.append(decode_event(wire))
            except DecodeError:
                self.errors += 1
        held = [ev for ev in events if ev.id in community.dag] if self.store is not None else []
        receipt = community.receive(events, now_ms)
        self.errors += len(receipt.refused)
        if self.observe is not None:
            self.observe(server, receipt)
        if held:
            # Re-sent events we already store: the author missed our acknowledgement (it is
            # what makes an author re-send), so acknowledge again.
            self._acknowledge(server, held, [ev.id for ev in held])
        if (receipt.inserted or receipt.moved) and self.store is not None:
            # Moved events are stored again so the store keeps the current order.
            stored = list(self.store(server, receipt.inserted + receipt.moved))
            if stored:
                self._acknowledge(server, receipt.inserted, stored)
        return receipt

    def _acknowledge(self, server: bytes, inserted: list[Event], stored: list[bytes]) -> None:
        """Tell each author which of their events are durably stored (after commit)."""
        by_author: dict[bytes, list[bytes]] = {}
        stored_set = set(stored)
        for ev in inserted:
            if ev.id in stored_set:
                by_author.setdefault(ev.author, []).append(ev.id)
        for author, ids in by_author.items():
            for i in range(0, len(ids), 1024):
                body = encode([server, ids[i : i + 1024]])
                self._send(inbox_topic(author), MessageKind.STORED, body)

    def _on_events(self, env: Envelope, now_ms: int) -> None:
        wires = decode(env.body, max_bytes=MAX_BODY_BYTES)
        if type(wires) is not list or not all(type(w) is bytes for w in wires):
            raise DecodeError("EVENTS body is a list of event wires")
        if len(wires) > MAX_EVENTS_PER_ENVELOPE:
            raise DecodeError("too many events in one envelope")
        server = self._server_of_topic(env.topic)
        if server is None:
            return
        receipt = self._take(server, wires, now_ms)
        community = self.communities.get(server)  # a store hook may have dropped it
        if receipt is not None and receipt.buffered and community is not None and community.ready:
            # A gap: we missed something while away. Ask the sender for what we lack.
            self.request_sync(server, env.sender)

    def _server_of_topic(self, topic: bytes) -> bytes | None:
        return self._topics.get(topic)

    def _may_answer(self, env: Envelope, server: bytes) -> bool:
        community = self.communities.get(server)
        if community is None or not community.ready:
            return False
        if env.topic == self.inbox:
            return True
        return self.serves

    def _reply(self, env: Envelope, kind: MessageKind, body: bytes) -> None:
        self._send(inbox_topic(env.sender), kind, body)

    def _on_sync_request(self, env: Envelope, now_ms: int) -> None:
        request = SyncRequest.decode(env.body)
        if not self._may_answer(env, request.server):
            return
        dag = self.communities[request.server].dag
        batches, done = answer(dag, request)
        for batch in batches:
            self._reply(env, MessageKind.SYNC_BATCH, batch.encode())
        self._reply(env, MessageKind.SYNC_DONE, done.encode())
        if requester_has_more(dag, request):
            # Push-pull: an event only the requester holds (its other copies lost) is found.
            key = (request.server, env.sender)
            if now_ms - self._pulled.get(key, -PULL_BACK_MS) >= PULL_BACK_MS:
                self._pulled[key] = now_ms
                if len(self._pulled) > 4096:
                    del self._pulled[next(iter(self._pulled))]
                self.request_sync(request.server, env.sender)

    def _on_batch(self, batch: SyncBatch, now_ms: int) -> None:
        if self._requests.get(batch.request_id) != batch.server:
            return  # not an answer to anything we asked
        progress = self.progress.get(batch.server)
        if progress is None or batch.server not in self.communities:
            return
        progress.batches += 1
        progress.events += len(batch.events)
        self._received[batch.request_id] = self._received.get(batch.request_id, 0) + len(
            batch.events
        )
        self._take(batch.server, batch.events, now_ms)
        self._check_snapshot(batch.server)
        self._check_done(batch.request_id)

    def trusted(self, server: bytes, peer: bytes) -> bool:
        """Whether ``peer`` may vouch for history in ``server`` (SyncProvider or admin)."""
        community = self.communities.get(server)
        if community is None or not community.ready:
            return False
        return has_permission(community.state, peer, Permission.SYNC_PROVIDER)

    def _on_done(self, env: Envelope, done: SyncDone) -> None:
        if self._requests.get(done.request_id) != done.server:
            return
        self._done[done.request_id] = (env.sender, done.sent, env)
        self._check_done(done.request_id)

    def _check_done(self, request_id: int) -> None:
        """Count an end-of-history marker once its batches are in and its sender is trusted."""
        pending = self._done.get(request_id)
        server = self._requests.get(request_id)
        if pending is None or server is None:
            return
        sender, sent, env = pending
        if self._received.get(request_id, 0) < sent:
            return  # batches still in flight (or lost: the next sync round asks again)
        progress = self.progress.get(server)
        if progress is None or not self.communities[server].ready:
            return
        del self._done[request_id]
        if self.trusted(server, sender) and verify_envelope(env):
            progress.complete_from.add(sender)

    def _on_snapshot_request(self, env: Envelope) -> None:
        request = SnapshotRequest.decode(env.body)
        if not self._may_answer(env, request.server):
            return
        managed = self.communities[request.server].managed
        for chunk in snapshot_chunks(managed, request.request_id):
            self._reply(env, MessageKind.SNAPSHOT_CHUNK, chunk.encode())

    def _on_snapshot_chunk(self, env: Envelope, chunk: SnapshotChunk) -> None:
        assembler = self._snapshots.get(chunk.request_id)
        if assembler is None or assembler.server != chunk.server:
            return
        if not verify_envelope(env):
            raise DecodeError("snapshot chunk with a bad envelope signature")
        if assembler.add(chunk):
            del self._snapshots[chunk.request_id]
            state, claimed, heads = assembler.result()
            community = self.communities.get(chunk.server)
            progress = self.progress.get(chunk.server)
            if community is None or progress is None:
                return
            progress.snapshot_hash = claimed
            progress.snapshot_heads = heads
            progress.snapshot_verified = None
            if not community.ready:
                community.unverified = state
            self._check_snapshot(chunk.server)

    def _check_snapshot(self, server: bytes) -> None:
        """Once history holds the snapshot's heads, replay exactly that history and compare."""
        progress = self.progress.get(server)
        community = self.communities.get(server)
        if progress is None or community is None:
            return
        if progress.snapshot_hash is None or progress.snapshot_verified is not None:
            return
        dag = community.dag
        if not all(h.id in dag for h in progress.snapshot_heads) or not dag.has_genesis:
            return
        replayed = materialize(history_up_to(dag, [h.id for h in progress.snapshot_heads]))
        progress.snapshot_verified = state_hash(replayed) == progress.snapshot_hash
        community.unverified = None

    def _on_stored(self, env: Envelope) -> None:
        value = decode(env.body, max_bytes=MAX_BODY_BYTES)
        if type(value) is not list or len(value) != 2 or type(value[1]) is not list:
            raise DecodeError("malformed STORED acknowledgement")
        server, ids = value
        if type(server) is not bytes or not self.trusted(server, env.sender):
            return
        if not verify_envelope(env):
            raise DecodeError("acknowledgement with a bad envelope signature")
        community = self.communities.get(server)
        if community is None:
            return
        for event_id in ids:
            if type(event_id) is bytes and event_id in community.dag:
                self.stored.setdefault(event_id, set()).add(env.sender)

    def _on_serve(self, env: Envelope) -> None:
        if not self.serves:
            return
        value = decode(env.body, max_bytes=MAX_EVENT_BYTES)
        if type(value) is not list or len(value) != 1 or type(value[0]) is not bytes:
            raise DecodeError("malformed SERVE")
        server = value[0]
        if len(server) != 32:
            raise DecodeError("malformed SERVE")
        fresh = server not in self.communities
        self.open(server)
        if fresh or not self.communities[server].ready:
            self.request_sync(server, env.sender)
