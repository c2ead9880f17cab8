"""A seeded, in-process network of sans-I/O Nodes with fault injection (testing tier 2).

No sockets, no clock, no threads: simulated time is an integer of milliseconds and every random
choice comes from one ``random.Random(seed)``, so a seed replays exactly (same deliveries, same
envelopes, same final state). Test and benchmark infrastructure, not a shell anyone deploys.

Theory of operation.

* **Relay semantics.** An envelope a node publishes (``Node.drain``) reaches every *other* node
  that is up and subscribed to its topic (``Node.topics()``, evaluated when the relay fans it
  out), each copy subject to that link's faults.
* **Link faults** (``LinkFaults``, global or per directed link): drop with a probability,
  duplicate with a probability, delay uniformly in a range (different delays reorder; set
  ``fifo=True`` for per-link order as TCP/WebSocket give). **Partitions** cut every link across
  a set of nodes for a time window, at fan-out and again at delivery.
* **Down nodes.** ``disconnect`` keeps a node's memory (a closed laptop); ``crash`` loses it.
  Either way in-flight deliveries to it are lost. ``recover`` rebuilds a crashed node from what
  survives a process restart: a storage worker's store (the ``store`` hook's commits, a dict
  standing in for SQLite) and a peer's local store (flushed on a timer and before every send:
  "persist before send", so a peer never loses its own events); a replay worker keeps only its
  configuration (which communities it carries). Each node's ``known`` communities are that
  configuration: invite links a peer holds, communities a worker was asked to serve.
  ``crash(name, forget_own=n)`` instead restarts a peer from a *stale* store (an old backup, the
  same key on a second device) so that its next event reuses a seq: equivocation.
* **Anti-entropy.** Every node that is up runs a timer: for each community it carries, one
  ``request_sync`` with no peer (the node asks one provider its state grants ``SyncProvider``,
  or the community topic, answered by serving workers; ``Node.tick`` on the same timer moves an
  exchange whose provider went silent to the topic) or to the inbox of a random known
  participant (authors, members, grant holders, the hint from an invite or a SERVE request).
  A peer also re-sends its own events that no storage worker has acknowledged (as
  ``relay.peer`` does on resume): pulling alone never discovers an event whose every copy was
  lost if nobody knows its author (a lost Join). Together they make every replica converge.
* **Settling.** ``settle`` heals everything (no drops, duplicates or partitions; every node up)
  and runs anti-entropy until the replicas have held one event set for a few rounds, then stops
  the timers and drains every message in flight. ``audit`` then compares the replicas with a
  fresh ``materialize`` of the union DAG.

``relay.sim_workload`` drives random runs over this network.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from willow_core.client import Community
from willow_core.encoding import decode
from willow_core.errors import LocalError
from willow_core.event import Event
from willow_core.identity import Identity
from willow_core.kinds import Payload
from willow_core.managed import ManagedDag
from willow_core.materialize import materialize
from willow_core.node import Node
from willow_core.state import state_hash
from willow_core.testing import identity
from willow_core.wire import MessageKind, community_topic, inbox_topic, open_envelope

__all__ = [
    "EPOCH_MS",
    "Row",
    "Role",
    "LinkFaults",
    "Partition",
    "Stats",
    "SimNode",
    "Network",
    "Audit",
    "audit",
]

#: Simulated time 0 as a wall clock (2023-11-14), so event timestamps look real.
EPOCH_MS = 1_700_000_000_000

Row = tuple[bytes, int, bytes, bytes]
"""``(id, depth, signable, signature)``: what ``ManagedDag.restore`` takes back."""

Role = Literal["peer", "storage", "replay"]


@dataclass(slots=True)
class LinkFaults:
    """What happens to each envelope on one directed link."""

    drop: float = 0.0
    duplicate: float = 0.0
    min_delay_ms: int = 1
    max_delay_ms: int = 1


@dataclass(frozen=True, slots=True)
class Partition:
    """Nodes in ``side`` and the rest cannot reach each other during ``[start_ms, end_ms)``."""

    side: frozenset[str]
    start_ms: int
    end_ms: int

    def cuts(self, a: str, b: str, now: int) -> bool:
        return self.start_ms <= now < self.end_ms and ((a in self.side) != (b in self.side))


@dataclass(slots=True)
class Stats:
    published: int = 0
    published_bytes: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0
    partitioned: int = 0
    lost_to_down: int = 0
    crashes: int = 0
    disconnects: int = 0
    #: envelopes published, by message kind
    kinds: dict[str, int] = field(default_factory=dict)


class SimNode:
    """One participant: its Node plus what the simulated process and disk hold."""

    __slots__ = (
        "name",
        "identity",
        "role",
        "node",
        "up",
        "incarnation",
        "auto",
        "durable",
        "saved",
        "known",
        "hints",
        "acked",
        "crashed",
        "inbox",
    )

    def __init__(self, name: str, ident: Identity, role: Role, auto: bool) -> None:
        self.name = name
        self.identity = ident
        self.role: Role = role
        self.node = Node(ident)  # replaced by Network._fresh_node
        self.up = True
        #: bumped whenever the connection drops: older deliveries and timers die with it
        self.incarnation = 0
        #: whether this node runs the anti-entropy timer
        self.auto = auto
        #: storage worker: server -> event id -> row, as committed by the store hook
        self.durable: dict[bytes, dict[bytes, Row]] = {}
        #: peer: server -> rows at the last flush of the local store
        self.saved: dict[bytes, list[Row]] = {}
        #: communities this process is configured to carry (survives crashes)
        self.known: dict[bytes, None] = {}
        #: server -> a key worth asking (the inviter, the peer that asked us to serve)
        self.hints: dict[bytes, bytes] = {}
        #: event ids a trusted storage worker acknowledged to us (kept across crashes)
        self.acked: set[bytes] = set()
        #: down because the process died (``recover``), not just disconnected (``reconnect``)
        self.crashed = False
        self.inbox = inbox_topic(ident.public_key)

    @property
    def key(self) -> bytes:
        return self.identity.public_key

    def community(self, server: bytes) -> Community | None:
        return self.node.communities.get(server)


class Network:
    """Nodes, an event queue in simulated time, and the faults between them."""

    #: own unacknowledged events a peer re-sends per anti-entropy tick
    RETRANSMIT_MAX = 32

    def __init__(
        self,
        seed: int,
        faults: LinkFaults | None = None,
        *,
        sync_every_ms: int = 200,
        flush_every_ms: int = 300,
        fifo: bool = False,
        retransmit: bool = True,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.now = 0
        self.faults = faults or LinkFaults()
        self.link_faults: dict[tuple[str, str], LinkFaults] = {}
        self.partitions: list[Partition] = []
        self.sync_every_ms = sync_every_ms
        self.flush_every_ms = flush_every_ms
        self.fifo = fifo
        #: peers re-send unacknowledged own events on every anti-entropy tick
        self.retransmit = retransmit
        self.nodes: dict[str, SimNode] = {}
        self.stats = Stats()
        #: every event any node authored, by id (the ground truth the replicas must hold)
        self.authored: dict[bytes, Event] = {}
        #: called on every anti-entropy tick of an up node (the workload's background habits)
        self.on_tick: Callable[[SimNode], None] | None = None
        self.timers = True
        #: set by ``settle``: scheduled faults that have not started yet no longer start
        self.healed = False
        self._queue: list[tuple[int, int, Callable[[], object]]] = []
        self._counter = 0
        self._link_clock: dict[tuple[str, str], int] = {}
        self._trace = hashlib.sha256()
        self._topics: dict[bytes, bytes] = {}

    # --- building ---------------------------------------------------------------------------

    def add(self, name: str, role: Role = "peer", *, auto: bool = True) -> SimNode:
        """A node named ``name`` (its identity is derived from the name)."""
        if name in self.nodes:
            raise LocalError(f"node {name!r} exists")
        sn = SimNode(name, identity(f"sim/{name}"), role, auto)
        sn.node = self._fresh_node(sn)
        self.nodes[name] = sn
        self._start_timers(sn)
        return sn

    def _fresh_node(self, sn: SimNode) -> Node:
        if sn.role == "storage":
            return Node(sn.identity, serves=True, store=self._store_hook(sn))
        return Node(sn.identity, serves=sn.role == "replay")

    def _store_hook(self, sn: SimNode) -> Callable[[bytes, list[Event]], Iterable[bytes]]:
        def store(server: bytes, events: list[Event]) -> list[bytes]:
            # New events, and held ones whose place in the order moved: a row is (re)written
            # with the event's current depth, so ``restore`` replays the same order.
            depth = sn.node.communities[server].dag.depth
            table = sn.durable.setdefault(server, {})
            for ev in events:
                table[ev.id] = (ev.id, depth[ev.id], ev.signable, ev.sig)
            return [ev.id for ev in events]

        return store

    def __getitem__(self, name: str) -> SimNode:
        return self.nodes[name]

    def link(self, src: str, dst: str) -> LinkFaults:
        return self.link_faults.get((src, dst), self.faults)

    # --- the event queue --------------------------------------------------------------------

    def at(self, time_ms: int, action: Callable[[], object]) -> None:
        """Run ``action`` at simulated time ``time_ms`` (not before now)."""
        self._counter += 1
        heapq.heappush(self._queue, (max(time_ms, self.now), self._counter, action))

    def run_until(self, time_ms: int) -> None:
        """Process everything scheduled up to ``time_ms``; the clock ends there."""
        queue = self._queue
        while queue and queue[0][0] <= time_ms:
            when, _, action = heapq.heappop(queue)
            self.now = when
            action()
        self.now = max(self.now, time_ms)

    def run_idle(self, limit: int = 1_000_000) -> None:
        """Process the queue until it is empty (timers must be off, or it never is)."""
        steps = 0
        queue = self._queue
        while queue:
            when, _, action = heapq.heappop(queue)
            self.now = when
            action()
            steps += 1
            if steps > limit:
                raise LocalError("the simulation does not go idle")

    @property
    def wall_ms(self) -> int:
        return EPOCH_MS + self.now

    def trace_digest(self) -> bytes:
        """A digest of every delivery so far (time, receiver, envelope): the run's fingerprint."""
        return self._trace.copy().digest()

    # --- relay ------------------------------------------------------------------------------

    def cut(self, a: str, b: str) -> bool:
        return any(p.cuts(a, b, self.now) for p in self.partitions)

    def pump(self, sn: SimNode) -> None:
        """Publish what ``sn`` queued; note which communities it now carries."""
        for community_id in sn.node.communities:
            if community_id not in sn.known:
                sn.known[community_id] = None
        for envelope in sn.node.drain():
            self._publish(sn, envelope)

    def _publish(self, src: SimNode, envelope: bytes) -> None:
        env = open_envelope(envelope)
        stats = self.stats
        stats.published += 1
        stats.published_bytes += len(envelope)
        stats.kinds[env.kind.name] = stats.kinds.get(env.kind.name, 0) + 1
        rng = self.rng
        for dst in self.nodes.values():
            if dst is src or not dst.up or not self._subscribed(dst, env.topic):
                continue
            if self.cut(src.name, dst.name):
                stats.partitioned += 1
                continue
            faults = self.link(src.name, dst.name)
            if faults.drop and rng.random() < faults.drop:
                stats.dropped += 1
                continue
            copies = 1
            if faults.duplicate and rng.random() < faults.duplicate:
                copies = 2
                stats.duplicated += 1
            for _ in range(copies):
                when = self.now + rng.randint(faults.min_delay_ms, faults.max_delay_ms)
                if self.fifo:
                    link = (src.name, dst.name)
                    when = max(when, self._link_clock.get(link, 0))
                    self._link_clock[link] = when
                self.at(when, self._delivery(src, dst, envelope, env.kind, dst.incarnation))

    def _subscribed(self, sn: SimNode, topic: bytes) -> bool:
        """Whether ``topic`` is in ``sn.node.topics()`` (topic hashes cached)."""
        if topic == sn.inbox:
            return True
        topics = self._topics
        for server in sn.node.communities:
            cached = topics.get(server)
            if cached is None:
                cached = topics[server] = community_topic(server)
            if cached == topic:
                return True
        return False

    def _delivery(
        self, src: SimNode, dst: SimNode, envelope: bytes, kind: MessageKind, incarnation: int
    ) -> Callable[[], None]:
        def deliver() -> None:
            if not dst.up or dst.incarnation != incarnation:
                self.stats.lost_to_down += 1
                return
            if self.cut(src.name, dst.name):
                self.stats.partitioned += 1
                return
            self.stats.delivered += 1
            trace = self._trace
            trace.update(self.now.to_bytes(8, "big"))
            trace.update(dst.name.encode())
            trace.update(hashlib.blake2b(envelope, digest_size=16).digest())
            if kind is MessageKind.SERVE:
                self._note_serve(dst, src, envelope)
            node = dst.node
            node.receive(envelope, self.wall_ms)
            if kind is MessageKind.STORED:
                dst.acked.update(node.stored)
            self.pump(dst)

        return deliver

    @staticmethod
    def _note_serve(dst: SimNode, src: SimNode, envelope: bytes) -> None:
        body = decode(open_envelope(envelope).body, max_bytes=1024)
        if type(body) is list and body and type(body[0]) is bytes:
            dst.hints.setdefault(body[0], src.key)

    # --- acting -----------------------------------------------------------------------------

    def act(self, name: str, action: Callable[[Node, int], object]) -> object:
        """Run ``action(node, wall_ms)`` on an up node, persist, publish; refusals return None.

        A ``LocalError`` (``NotPermitted`` included: the client refused before signing) means
        nothing was authored. Authored events are recorded as ground truth.
        """
        sn = self.nodes[name]
        if not sn.up:
            raise LocalError(f"{name} is down")
        try:
            result = action(sn.node, self.wall_ms)
        except LocalError:
            self.pump(sn)
            return None
        if isinstance(result, Event):
            self.authored[result.id] = result
        elif isinstance(result, Community):
            self.authored[result.server_id] = result.dag.events[result.server_id]
        self.flush(sn)  # persist before send
        self.pump(sn)
        return result

    def author(self, name: str, server: bytes, payload: Payload) -> Event | None:
        result = self.act(name, lambda node, now: node.author(server, payload, now))
        return result if isinstance(result, Event) else None

    def flush(self, sn: SimNode) -> None:
        """Write a peer's local store (everything it holds now)."""
        if sn.role != "peer":
            return
        for server, community in sn.node.communities.items():
            sn.saved[server] = community.managed.stored_rows()

    # --- timers -----------------------------------------------------------------------------

    def _start_timers(self, sn: SimNode) -> None:
        incarnation = sn.incarnation
        if sn.auto:
            first = self.now + self.rng.randint(1, self.sync_every_ms)
            self.at(first, lambda: self._tick(sn, incarnation))
        if sn.role == "peer":
            first = self.now + self.rng.randint(1, self.flush_every_ms)
            self.at(first, lambda: self._flush_tick(sn, incarnation))

    def _tick(self, sn: SimNode, incarnation: int) -> None:
        if not self.timers or sn.incarnation != incarnation or not sn.up:
            return
        sn.node.tick(self.wall_ms)  # the shell's periodic upkeep (stale pending events)
        self.anti_entropy(sn)
        if self.on_tick is not None:
            self.on_tick(sn)
        jitter = self.rng.randint(0, self.sync_every_ms // 2)
        self.at(self.now + self.sync_every_ms + jitter, lambda: self._tick(sn, incarnation))

    def _flush_tick(self, sn: SimNode, incarnation: int) -> None:
        if not self.timers or sn.incarnation != incarnation or not sn.up:
            return
        self.flush(sn)
        self.at(self.now + self.flush_every_ms, lambda: self._flush_tick(sn, incarnation))

    def anti_entropy(self, sn: SimNode) -> None:
        """One sync request per community, to the topic or to a random known participant; a
        peer also re-publishes its own events no storage worker has acknowledged yet."""
        node = sn.node
        for server, community in list(node.communities.items()):
            node.request_sync(server, self._sync_target(sn, server))
            if self.retransmit and sn.role == "peer" and community.ready:
                self._retransmit(sn, server, community)
        self.pump(sn)

    def _retransmit(self, sn: SimNode, server: bytes, community: Community) -> None:
        """What ``relay.peer`` does on resume: re-send own events storage has not acknowledged.

        Without it, an event that every live copy of was lost (say, a Join nobody saw) is never
        discovered: anti-entropy only pulls, and nobody pulls from a peer they do not know.
        """
        me = sn.key
        sn.acked.update(sn.node.stored)
        unacked = [
            ev for ev in community.managed.order if ev.author == me and ev.id not in sn.acked
        ]
        if unacked:
            sn.node.publish(server, unacked[: self.RETRANSMIT_MAX])

    def _sync_target(self, sn: SimNode, server: bytes) -> bytes | None:
        community = sn.node.communities[server]
        hint = sn.hints.get(server)
        known: set[bytes] = set()
        if hint is not None:
            known.add(hint)
        if community.ready:
            state = community.state
            known.update(community.dag.chains, state.members, state.peer_permissions)
        known.discard(sn.key)
        choices: list[bytes | None] = [None, *sorted(known)]
        if len(choices) > 1 and self.rng.random() < 0.7:
            return self.rng.choice(choices[1:])
        return None

    # --- faults -----------------------------------------------------------------------------

    def partition(self, side: Iterable[str], start_ms: int, end_ms: int) -> Partition:
        p = Partition(frozenset(side), start_ms, end_ms)
        self.partitions.append(p)
        return p

    def disconnect(self, name: str) -> None:
        """Take ``name`` offline with its memory intact (in-flight deliveries are lost)."""
        sn = self.nodes[name]
        if not sn.up:
            return
        self.stats.disconnects += 1
        sn.up = False
        sn.incarnation += 1

    def reconnect(self, name: str) -> None:
        """Bring a disconnected node back; it asks for what it missed at once."""
        sn = self.nodes[name]
        if sn.up or sn.crashed:
            return
        sn.up = True
        self._start_timers(sn)
        for server in sn.known:
            sn.node.open(server)
        for server in list(sn.node.communities):
            sn.node.request_sync(server, None)
        self.pump(sn)

    def crash(self, name: str, *, forget_own: int = 0) -> list[bytes]:
        """Kill the process: memory is gone, only the durable stores and config remain.

        ``forget_own`` > 0 makes a peer come back from a *stale* local store (an old backup,
        the same key on a second device): its last ``forget_own`` events per community, and
        whatever it holds on top of them, are gone, so its next event reuses a seq (equivocation).
        Returns the ids forgotten.
        """
        sn = self.nodes[name]
        if not sn.up:
            return []
        forgotten = self._forget_own(sn, forget_own) if forget_own else []
        self.stats.crashes += 1
        sn.acked.update(sn.node.stored)
        sn.up = False
        sn.crashed = True
        sn.incarnation += 1
        sn.node = self._fresh_node(sn)  # an empty process image until ``recover``
        return forgotten

    def _forget_own(self, sn: SimNode, count: int) -> list[bytes]:
        forgotten: list[bytes] = []
        self.flush(sn)
        for server, community in sn.node.communities.items():
            dag = community.dag
            mine = sorted(
                (ev for ev in dag.events.values() if ev.author == sn.key), key=lambda e: e.seq
            )
            gone = {ev.id for ev in mine[-count:]}
            kept: list[Row] = []
            for row in sn.saved.get(server, []):
                ev = dag.events[row[0]]
                if ev.id in gone or any(p in gone for p in ev.parents):
                    gone.add(ev.id)
                else:
                    kept.append(row)
            sn.saved[server] = kept
            forgotten.extend(gone)
        return forgotten

    def recover(self, name: str) -> None:
        """Restart a crashed node from what survives on disk, then sync."""
        sn = self.nodes[name]
        if not sn.crashed:
            return
        node = self._fresh_node(sn)
        for server in sn.known:
            rows = self._rows(sn, server)
            community = node.open(server)
            if rows:
                community.managed.restore(rows)
        sn.node = node
        sn.up = True
        sn.crashed = False
        self._start_timers(sn)
        for server in list(node.communities):
            node.request_sync(server, sn.hints.get(server))
        self.pump(sn)

    def restart(self, name: str) -> None:
        self.crash(name)
        self.recover(name)

    def _rows(self, sn: SimNode, server: bytes) -> list[Row]:
        if sn.role == "storage":
            table = sn.durable.get(server, {})
            return sorted(table.values(), key=lambda row: (row[1], row[0]))
        if sn.role == "peer":
            return sn.saved.get(server, [])
        return []

    # --- settling ---------------------------------------------------------------------------

    def heal(self) -> None:
        """No more drops, duplicates or partitions; every node up. Delays stay (reorder)."""
        self.healed = True
        self.partitions.clear()
        self.faults = LinkFaults(0.0, 0.0, self.faults.min_delay_ms, self.faults.max_delay_ms)
        self.link_faults = {
            k: LinkFaults(0.0, 0.0, f.min_delay_ms, f.max_delay_ms)
            for k, f in self.link_faults.items()
        }
        for sn in self.nodes.values():
            if sn.crashed:
                self.recover(sn.name)
            elif not sn.up:
                self.reconnect(sn.name)

    def fingerprint(self, server: bytes) -> tuple[frozenset[bytes], ...]:
        """Each holder's event set (pending counts as not held)."""
        out = []
        for sn in self.nodes.values():
            community = sn.community(server)
            if community is not None:
                ids = frozenset(community.dag.events)
                if len(community.managed.pending):
                    ids |= {b"pending"}
                out.append(ids)
        return tuple(out)

    def converged(self, server: bytes) -> bool:
        sets = self.fingerprint(server)
        return len(set(sets)) == 1 and b"pending" not in sets[0]

    def settle(self, server: bytes, *, stable_rounds: int = 2, max_rounds: int = 200) -> int:
        """Heal, run anti-entropy until ``stable_rounds`` converged rounds, then drain.

        Returns the number of rounds it took (``max_rounds`` if it never converged: the audit
        then shows where).
        """
        self.heal()
        stable = 0
        rounds = 0
        while rounds < max_rounds and stable < stable_rounds:
            self.run_until(self.now + self.sync_every_ms * 3 // 2)
            rounds += 1
            stable = stable + 1 if self.converged(server) else 0
        self.quiesce()
        return rounds

    def quiesce(self) -> None:
        """Stop every timer and deliver everything in flight (``resume`` restarts timers)."""
        self.timers = False
        self.run_idle()
        for sn in self.nodes.values():
            sn.acked.update(sn.node.stored)

    def resume(self) -> None:
        """Restart the timers of every up node after ``quiesce`` (faults may start again).

        ``quiesce`` left the queue empty, so no timer of the old series is still scheduled.
        """
        self.timers = True
        self.healed = False
        for sn in self.nodes.values():
            if sn.up:
                self._start_timers(sn)


@dataclass(slots=True)
class Audit:
    """How the replicas of one community ended, against the union of all their DAGs."""

    server: bytes
    union_events: int
    union_hash: bytes
    #: node -> its incremental state hash (None if it never got genesis)
    hashes: dict[str, bytes | None]
    #: node -> hash of a fresh materialize of its own DAG
    fresh_hashes: dict[str, bytes | None]
    #: node -> events of the union it lacks
    missing: dict[str, int]
    #: node -> acknowledged events (by a storage worker) it lacks
    missing_acked: dict[str, int]
    #: node -> authored events it lacks
    missing_authored: dict[str, int]
    pending: dict[str, int]
    acked: int
    forks: int

    @property
    def ok(self) -> bool:
        return (
            set(self.hashes.values()) == {self.union_hash}
            and set(self.fresh_hashes.values()) == {self.union_hash}
            and not any(self.missing.values())
            and not any(self.missing_acked.values())
            and not any(self.missing_authored.values())
            and not any(self.pending.values())
        )

    def describe(self) -> str:
        def short(h: bytes | None) -> str:
            return "-" if h is None else h.hex()[:12]

        lines = [f"union: {self.union_events} events, hash {short(self.union_hash)}"]
        for name, h in self.hashes.items():
            lines.append(
                f"  {name}: hash {short(h)} fresh {short(self.fresh_hashes[name])} "
                f"missing {self.missing[name]} acked-missing {self.missing_acked[name]} "
                f"authored-missing {self.missing_authored[name]} pending {self.pending[name]}"
            )
        return "\n".join(lines)


def audit(net: Network, server: bytes) -> Audit:
    """Compare every holder of ``server`` with a fresh materialize of the union DAG."""
    holders = [sn for sn in net.nodes.values() if sn.community(server) is not None]
    union: dict[bytes, Event] = {}
    for sn in holders:
        community = sn.community(server)
        assert community is not None
        union.update(community.dag.events)
    # The union DAG, built by the insert rules alone (any order: the pending buffer sorts it).
    builder = ManagedDag(server)
    builder.receive(union.values(), net.wall_ms, verified=True)
    dag = builder.dag
    if len(dag) != len(union):
        raise LocalError("the union of the replicas is not a closed DAG")
    union_hash = state_hash(materialize(dag))
    acked: set[bytes] = set()
    for sn in net.nodes.values():
        acked |= sn.acked
        acked.update(sn.durable.get(server, {}))
    authored = {i for i, ev in net.authored.items() if ev.server == server or i == server}
    hashes: dict[str, bytes | None] = {}
    fresh: dict[str, bytes | None] = {}
    missing: dict[str, int] = {}
    missing_acked: dict[str, int] = {}
    missing_authored: dict[str, int] = {}
    pending: dict[str, int] = {}
    for sn in holders:
        community = sn.community(server)
        assert community is not None
        held = community.dag.events
        hashes[sn.name] = community.state_hash() if community.ready else None
        fresh[sn.name] = state_hash(materialize(community.dag)) if community.ready else None
        missing[sn.name] = sum(1 for i in union if i not in held)
        missing_acked[sn.name] = sum(1 for i in acked if i not in held)
        missing_authored[sn.name] = sum(1 for i in authored if i not in held)
        pending[sn.name] = len(community.managed.pending)
    return Audit(
        server,
        len(union),
        union_hash,
        hashes,
        fresh,
        missing,
        missing_acked,
        missing_authored,
        pending,
        len(acked),
        sum(len(p) for p in dag.fork_proofs.values()),
    )
