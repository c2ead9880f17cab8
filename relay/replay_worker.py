"""The replay worker (D11): an in-memory serving peer with both memory bounds enforced.

It owns a ``Node(serves=True)`` (no store) that answers sync requests with deltas and snapshot
requests with snapshots, for the communities it carries. Two bounds, checked after every
envelope, so memory never exceeds them by more than one envelope's worth of events:

* **LRU over communities.** Every envelope that concerns a carried community marks it used;
  beyond ``max_communities`` the least recently used one is evicted (it can be asked to SERVE
  again later and will re-sync).
* **Events per community.** A community whose DAG plus pending buffer exceeds
  ``max_events_per_community`` is evicted and *refused*: further envelopes about it are ignored
  (the refusal list is itself bounded, oldest first). Keeping only part of a DAG is not an
  option: state is a replay of the whole history, and a partial DAG would answer sync requests
  with an end-of-history marker while missing events. A community too big for a replay worker
  belongs to a storage worker.

Communities also go through the SyncProvider probation of ``relay.tenancy``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from willow_core.errors import RemoteError
from willow_core.identity import Identity
from willow_core.node import Node
from willow_core.wire import MessageKind, open_envelope

from .tenancy import (
    ANSWER_KINDS,
    MAX_PROBATION,
    UNGRANTED_GRACE_MS,
    Tenancy,
    TopicIndex,
    envelope_server,
)

__all__ = [
    "ReplayWorker",
    "ReplayStats",
    "DEFAULT_MAX_COMMUNITIES",
    "DEFAULT_MAX_EVENTS_PER_COMMUNITY",
    "MAX_REFUSED",
]

#: The original's LRU bound.
DEFAULT_MAX_COMMUNITIES = 1_000
#: Events (DAG + pending) one community may hold here; bigger ones go to storage workers.
DEFAULT_MAX_EVENTS_PER_COMMUNITY = 50_000
#: Over-cap communities remembered (and ignored); beyond this the oldest refusal is forgotten.
MAX_REFUSED = 4_096


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayStats:
    communities: int
    events: int
    lru_evictions: int
    cap_evictions: int
    on_probation: int
    dropped_ungranted: int
    refused_communities: int
    ignored_envelopes: int


class ReplayWorker:
    """A serving ``Node`` bounded in communities (LRU) and in events per community."""

    def __init__(
        self,
        identity: Identity,
        max_events_per_community: int = DEFAULT_MAX_EVENTS_PER_COMMUNITY,
        max_communities: int = DEFAULT_MAX_COMMUNITIES,
        *,
        grace_ms: int = UNGRANTED_GRACE_MS,
        max_probation: int = MAX_PROBATION,
    ) -> None:
        self.identity = identity
        self.max_events = max_events_per_community
        self.max_communities = max_communities
        # One slot of headroom: a SERVE may open a community before the LRU evicts another.
        self.node = Node(identity, serves=True, max_communities=max_communities + 1)
        self.tenancy = Tenancy(self.node, grace_ms=grace_ms, max_probation=max_probation)
        self._topics = TopicIndex()
        self._lru: OrderedDict[bytes, None] = OrderedDict()
        self._refused: OrderedDict[bytes, None] = OrderedDict()
        self.lru_evictions = 0
        self.cap_evictions = 0
        self.dropped_ungranted = 0
        self.ignored = 0

    # --- the shell-facing surface (that of a Node) ------------------------------------------

    def topics(self) -> list[bytes]:
        return self.node.topics()

    def drain(self) -> list[bytes]:
        return self.node.drain()

    def receive(self, envelope_bytes: bytes, now_ms: int) -> None:
        """Handle one envelope, then enforce both bounds; bad input is counted, never raised."""
        node = self.node
        try:
            env = open_envelope(envelope_bytes)
            server = envelope_server(env, self._topics)
        except RemoteError:
            node.errors += 1
            return
        if env.sender == self.identity.public_key:
            return
        if server is not None and server in self._refused:
            self.ignored += 1
            return
        if (
            server is not None
            and server not in node.communities
            and (
                env.kind in ANSWER_KINDS
                or (env.kind is MessageKind.SERVE and not self.tenancy.can_admit(server))
            )
        ):
            self.ignored += 1
            return
        node.receive(envelope_bytes, now_ms)
        if server is not None and server in node.communities:
            self._use(server, now_ms)
        while len(self._lru) > self.max_communities:
            oldest = next(iter(self._lru))
            self.evict(oldest)
            self.lru_evictions += 1
        self._drop_ungranted(self.tenancy.expired(now_ms))

    def tick(self, now_ms: int) -> None:
        """Periodic upkeep (call every second or so): re-check every community's grant."""
        self._drop_ungranted(self.tenancy.review(now_ms))

    # --- bounds ----------------------------------------------------------------------------

    def _use(self, server: bytes, now_ms: int) -> None:
        community = self.node.communities[server]
        if len(community.dag) + len(community.managed.pending) > self.max_events:
            self.evict(server)
            self._refused[server] = None
            if len(self._refused) > MAX_REFUSED:
                self._refused.popitem(last=False)
            self.cap_evictions += 1
            return
        self._lru[server] = None
        self._lru.move_to_end(server)
        self._topics.add(server)
        self.tenancy.watch(server, now_ms)

    def _drop_ungranted(self, servers: list[bytes]) -> None:
        for server in servers:
            self.evict(server)
            self.dropped_ungranted += 1

    def evict(self, server: bytes) -> None:
        """Forget ``server`` entirely (it may be served again after a new SERVE and sync)."""
        node = self.node
        community = node.communities.get(server)
        node.remove(server)  # its exchanges and pending requests go with it
        if community is not None and node.stored:
            for event_id in community.dag.events:
                node.stored.pop(event_id, None)
        self._lru.pop(server, None)
        self._topics.discard(server)
        self.tenancy.forget(server)

    # --- counters --------------------------------------------------------------------------

    def stats(self) -> ReplayStats:
        communities = self.node.communities.values()
        return ReplayStats(
            communities=len(self.node.communities),
            events=sum(len(c.dag) + len(c.managed.pending) for c in communities),
            lru_evictions=self.lru_evictions,
            cap_evictions=self.cap_evictions,
            on_probation=len(self.tenancy.probation),
            dropped_ungranted=self.dropped_ungranted,
            refused_communities=len(self._refused),
            ignored_envelopes=self.ignored,
        )

    def refused(self, server: bytes) -> bool:
        """Whether ``server`` was evicted for exceeding the per-community cap."""
        return server in self._refused
