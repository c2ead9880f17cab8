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

Catching up (``request_sync`` with no peer) asks *one* provider, not every serving node: one
that the replayed state grants ``SyncProvider``, picked by a per-requester ranking and rotated
after each completed exchange, so two workers never both send a newcomer the same history.
An exchange is a ``SyncRound``: one window of events in flight at a time, the next asked as
soon as the last is in. If the provider stays silent for ``SYNC_SILENCE_MS`` (ticks measure it),
the node asks the community topic instead and leaves that provider alone for a while, so a
worker that is down costs a few seconds, not the catch-up. With no provider known yet (a
newcomer), the request goes to the topic and the round follows the first node that answers.

Events are self-authenticating, so a node takes them from anyone. What is *not* self-verifying
counts only when its sender holds ``SyncProvider`` (or is an admin) in the community: an
end-of-history marker, a storage acknowledgement. A snapshot is shown (marked unverified)
whoever sent it, since a newcomer has no state to judge the sender by; it becomes verified only
when the history it claims replays to the same state hash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from hashlib import blake2b

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
    SyncRound,
    answer,
    history_up_to,
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

__all__ = [
    "Node",
    "SyncProgress",
    "ReceiptHook",
    "MAX_EVENTS_PER_ENVELOPE",
    "MAX_COMMUNITIES",
    "SYNC_SILENCE_MS",
    "SILENT_PROVIDER_MS",
    "MAX_ROUNDS",
]

#: Events in one live EVENTS envelope (a burst is split across envelopes).
MAX_EVENTS_PER_ENVELOPE = 256
#: Communities one node carries (workers bound theirs further).
MAX_COMMUNITIES = 10_000
#: After asking a peer back (its request showed heads we lack), wait this long before asking
#: the same peer again for the same community: its answer is on the way.
PULL_BACK_MS = 5_000
#: A sync exchange with no batch or marker for this long is over. A live responder answers
#: within a relay round trip plus its own lookup (milliseconds on a healthy path, a second or
#: two for a loaded worker), so silence this long means it is down, restarting, or does not
#: carry the community. An exchange with a provider the node picked then moves to the topic.
SYNC_SILENCE_MS = 5_000
#: A provider that left an exchange silent is not picked again for this long: it may be back
#: by then (a restart), and until then every catch-up would first wait out its silence.
SILENT_PROVIDER_MS = 60_000
#: Exchanges in progress at once (one per community and peer, plus one automatic per
#: community); beyond this the oldest is dropped (the next anti-entropy round asks again).
MAX_ROUNDS = 4_096
#: Senders whose answers to one request are counted (a request on the topic is answered by
#: every serving node; more distinct senders than this are not tracked, their events still go in).
MAX_ANSWERERS = 16
#: Request ids remembered (late answers to older ones are just events, or ignored).
MAX_REQUESTS = 4_096

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
    #: trusted providers whose exchange with us reached the end of their history
    complete_from: set[bytes] = field(default_factory=set)
    #: automatic exchanges (``request_sync`` with no peer) completed; rotates the provider
    rounds: int = 0
    #: the provider the current (or last) automatic exchange asked; None: the community topic
    provider: bytes | None = None
    #: automatic exchanges moved to the topic because the picked provider stayed silent
    fallbacks: int = 0
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
        #: request id -> sender -> events received in its batches (a marker counts only once the
        #: batches it announces are in)
        self._received: dict[int, dict[bytes, int]] = {}
        #: request id -> sender -> (marker, envelope) still waiting for its batches
        self._done: dict[int, dict[bytes, tuple[SyncDone, Envelope]]] = {}
        #: exchanges in progress: (community, peer) for an explicit peer, (community, None) for
        #: the automatic one; and the request each one has in flight
        self._rounds: dict[tuple[bytes, bytes | None], SyncRound] = {}
        self._round_of: dict[int, SyncRound] = {}
        #: (community, provider) -> until when it is not picked (it left an exchange silent)
        self._silent: dict[tuple[bytes, bytes], int] = {}
        #: the latest time the shell passed in (``tick``, ``receive``)
        self._now = 0
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
        """Periodic upkeep, about once a second: drop out-of-order events that waited too long,
        end silent sync exchanges (moving an automatic one to the community topic)."""
        self._now = max(self._now, now_ms)
        for community in self.communities.values():
            community.managed.pending.expire(now_ms)
        for slot, round_ in list(self._rounds.items()):
            if round_.server not in self.communities:
                self._end_round(slot)
            elif round_.quiet is None:
                round_.quiet = now_ms  # silence is measured from the first tick after a sign
            elif now_ms - round_.quiet >= SYNC_SILENCE_MS:
                self._end_round(slot)
                if slot[1] is None and round_.responder is not None:
                    # An automatic exchange whose responder went silent (the provider we
                    # picked, or the node that answered on the topic): leave it alone for a
                    # while and start again with the next provider, or on the topic.
                    self._mark_silent(round_.server, round_.responder, now_ms)
                    self.progress[round_.server].fallbacks += 1
                    self.request_sync(round_.server)

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
        if len(self._requests) > MAX_REQUESTS:  # forget the oldest; late answers are just events
            self._forget_request(next(iter(self._requests)))
        return request_id

    def _forget_request(self, request_id: int) -> None:
        self._requests.pop(request_id, None)
        self._received.pop(request_id, None)
        self._done.pop(request_id, None)
        self._snapshots.pop(request_id, None)
        self._round_of.pop(request_id, None)

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
            self._forget_request(request_id)
        for slot in [k for k in self._rounds if k[0] == server_id]:
            self._end_round(slot)

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
        """Ask ``peer`` for what we lack or, with no peer, one provider of the community (the
        community topic if none is known). Starts an exchange (``SyncRound``), replacing one
        already in progress with the same peer (or the automatic one); returns the number of
        requests sent now (the rest follow as answers come in)."""
        self.open(server_id)
        chosen = False
        if peer is None:
            peer = self._choose(server_id)
            chosen = peer is not None
            self.progress[server_id].provider = peer
        slot = (server_id, None if chosen or peer is None else peer)
        old = self._rounds.get(slot)
        round_ = SyncRound(server_id, peer, chosen=chosen)
        if old is not None:
            self._end_round(slot)
            if old.peer == peer:
                # Asking again does not reset the silence: a dead provider is found out even
                # when anti-entropy asks more often than SYNC_SILENCE_MS.
                round_.quiet = old.quiet
        return self._start_round(slot, round_)

    def syncing(self, server_id: bytes) -> bool:
        """Whether an automatic exchange (``request_sync`` with no peer) is in progress."""
        return (server_id, None) in self._rounds

    def _choose(self, server: bytes) -> bytes | None:
        """The provider to ask: granted ``SyncProvider`` in the replayed state, not ourselves,
        not recently silent. Each node ranks the providers by a hash of its key and theirs (so
        requesters spread over providers) and moves one down the ranking after every completed
        automatic exchange (so no single provider's view is trusted forever)."""
        community = self.communities.get(server)
        if community is None or not community.ready:
            return None
        state = community.state
        me = self.identity.public_key
        now = self._now
        silent = self._silent
        providers = [
            key
            for key, granted in state.peer_permissions.items()
            if Permission.SYNC_PROVIDER in granted
            and key != me
            and silent.get((server, key), now) <= now
            and has_permission(state, key, Permission.SYNC_PROVIDER)
        ]
        if not providers:
            return None
        providers.sort(key=lambda key: blake2b(me + key, digest_size=16).digest())
        return providers[self.progress[server].rounds % len(providers)]

    def _mark_silent(self, server: bytes, provider: bytes, now_ms: int) -> None:
        self._silent.pop((server, provider), None)
        self._silent[(server, provider)] = now_ms + SILENT_PROVIDER_MS
        if len(self._silent) > MAX_ROUNDS:
            del self._silent[next(iter(self._silent))]

    def _start_round(self, slot: tuple[bytes, bytes | None], round_: SyncRound) -> int:
        self._rounds[slot] = round_
        if len(self._rounds) > MAX_ROUNDS:
            self._end_round(next(iter(self._rounds)))
        return self._ask(round_)

    def _end_round(self, slot: tuple[bytes, bytes | None]) -> None:
        round_ = self._rounds.pop(slot, None)
        if round_ is not None and round_.request_id is not None:
            self._round_of.pop(round_.request_id, None)

    def _ask(self, round_: SyncRound) -> int:
        """Send the round's next request: to its responder's inbox (the peer asked, or the node
        that answered on the topic first), or the community topic while nobody has answered."""
        community = self.communities.get(round_.server)
        if community is None:
            return 0
        request_id = self._request_id(round_.server)
        request = round_.next_request(community.dag, request_id)
        self._round_of[request_id] = round_
        to = round_.responder
        topic = community_topic(round_.server) if to is None else inbox_topic(to)
        self._send(topic, MessageKind.SYNC_REQUEST, request.encode())
        self.progress[round_.server].requested += 1
        return 1

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
        self._now = max(self._now, now_ms)
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
            self._on_batch(env, SyncBatch.decode(env.body), now_ms)
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
        if (
            receipt is not None
            and receipt.buffered
            and community is not None
            and community.ready
            # An exchange under way (a catch-up, or one with the sender) will bring it.
            and (server, None) not in self._rounds
            and (server, env.sender) not in self._rounds
        ):
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
        managed = self.communities[request.server].managed
        dag = managed.dag
        batches, done = answer(dag, request, order=managed.order)
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

    def _on_batch(self, env: Envelope, batch: SyncBatch, now_ms: int) -> None:
        if self._requests.get(batch.request_id) != batch.server:
            return  # not an answer to anything we asked
        progress = self.progress.get(batch.server)
        if progress is None or batch.server not in self.communities:
            return
        progress.batches += 1
        progress.events += len(batch.events)
        counts = self._received.setdefault(batch.request_id, {})
        if env.sender in counts or len(counts) < MAX_ANSWERERS:
            counts[env.sender] = counts.get(env.sender, 0) + len(batch.events)
        round_ = self._round_of.get(batch.request_id)
        if round_ is not None and round_.responder in (None, env.sender):
            round_.quiet = None  # a sign of life: the silence clock starts again
        self._take(batch.server, batch.events, now_ms)
        self._check_snapshot(batch.server)
        self._check_done(batch.request_id, env.sender)

    def trusted(self, server: bytes, peer: bytes) -> bool:
        """Whether ``peer`` may vouch for history in ``server`` (SyncProvider or admin)."""
        community = self.communities.get(server)
        if community is None or not community.ready:
            return False
        return has_permission(community.state, peer, Permission.SYNC_PROVIDER)

    def _on_done(self, env: Envelope, done: SyncDone) -> None:
        if self._requests.get(done.request_id) != done.server:
            return
        markers = self._done.setdefault(done.request_id, {})
        if env.sender not in markers and len(markers) >= MAX_ANSWERERS:
            return
        markers[env.sender] = (done, env)
        round_ = self._round_of.get(done.request_id)
        if round_ is not None and round_.responder in (None, env.sender):
            round_.quiet = None
        self._check_done(done.request_id, env.sender)

    def _check_done(self, request_id: int, sender: bytes) -> None:
        """Act on ``sender``'s marker for ``request_id`` once the batches it announces are in.

        The marker of the exchange's responder (for a request on the topic: the first node whose
        marker comes in) moves the exchange on: the next window, the next page, or the end. The
        end counts in ``complete_from`` only from a trusted provider whose envelope signature
        verifies. A marker from anyone else (another serving node answering the same topic
        request) only counts if it is a trusted end of history.
        """
        markers = self._done.get(request_id)
        server = self._requests.get(request_id)
        if markers is None or server is None or sender not in markers:
            return
        done, env = markers[sender]
        if self._received.get(request_id, {}).get(sender, 0) < done.sent:
            return  # batches still in flight (or lost: the exchange goes silent and ends)
        progress = self.progress.get(server)
        community = self.communities.get(server)
        if progress is None or community is None or not community.ready:
            return  # waits for genesis (a marker that overtook the first batches)
        del markers[sender]
        round_ = self._round_of.get(request_id)
        if round_ is None or round_.responder not in (None, sender):
            if done.cursor is None and self.trusted(server, sender) and verify_envelope(env):
                progress.complete_from.add(sender)
            return
        if not verify_envelope(env):
            # Only the signature binds a cursor to its responder: a forged one could skip events.
            raise DecodeError("sync marker with a bad envelope signature")
        del self._round_of[request_id]
        round_.responder = sender
        round_.quiet = None
        round_.answered(done.cursor)
        if not round_.done:
            self._ask(round_)
            return
        self._end_round((server, None if round_.chosen or round_.peer is None else round_.peer))
        if round_.peer is None or round_.chosen:
            progress.rounds += 1
        if self.trusted(server, sender):
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
