"""The storage worker (D11): a serving peer that archives every community it carries in SQLite.

It owns a ``Node(serves=True)`` whose store hook appends each batch of newly inserted events to
the ``EventStore`` and returns their ids only after COMMIT, so the Node's ``STORED``
acknowledgements are never ahead of the disk. Nothing unverified reaches the hook: the Node's
community checks signatures and DAG rules on ingest (D2), and the hook additionally refuses any
event the community's DAG does not hold. On start the worker restores every stored community
through ``ManagedDag.restore`` (no re-verification: it was verified when it was stored).

Besides what the Node answers (sync deltas, snapshots, SERVE), the worker answers
``HISTORY_REQUEST`` with pages from the store (``relay.history``). It keeps a community only
while it holds SyncProvider there (``relay.tenancy``); an ungranted one is dropped, files and
all, after the grace period.

A ``StorageError`` out of ``receive`` is fatal by design: the events it concerned are in memory
but not on disk, and retrying a failed fsync can falsely succeed. The runner must stop the
worker and start a new one, which restores what was committed and re-syncs the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from willow_core.client import Community
from willow_core.encoding import encode
from willow_core.errors import LocalError, RemoteError
from willow_core.event import Event
from willow_core.identity import Identity
from willow_core.node import Node
from willow_core.wire import Envelope, MessageKind, inbox_topic, open_envelope, seal

from .history import HistoryPage, HistoryRequest
from .storage import EventStore, StorageError
from .tenancy import (
    ANSWER_KINDS,
    MAX_PROBATION,
    UNGRANTED_GRACE_MS,
    Tenancy,
    TopicIndex,
    envelope_server,
)

__all__ = ["StorageWorker", "StorageStats"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageStats:
    communities: int
    #: events held in memory (every one of them is also on disk)
    events: int
    on_probation: int
    dropped_ungranted: int
    refused_envelopes: int
    history_pages: int
    remote_errors: int


class StorageWorker:
    """A ``Node`` that serves, an ``EventStore`` under it, and the probation of each community."""

    def __init__(
        self,
        identity: Identity,
        data_dir: Path | str,
        *,
        grace_ms: int = UNGRANTED_GRACE_MS,
        max_probation: int = MAX_PROBATION,
    ) -> None:
        self.identity = identity
        self.store = EventStore(data_dir)
        self.node = Node(identity, serves=True, store=self._store)
        self.tenancy = Tenancy(self.node, grace_ms=grace_ms, max_probation=max_probation)
        self._topics = TopicIndex()
        self._outbox: list[bytes] = []
        #: the storage failure that stopped this worker (every later ``receive`` re-raises it)
        self.failed: StorageError | None = None
        #: communities dropped because their probation ran out
        self.dropped = 0
        #: envelopes ignored: SERVE while probation is full, answers about dropped communities
        self.refused = 0
        self.history_pages = 0

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, now_ms: int) -> int:
        """Restore every stored community (fast path, no re-verification); returns how many.

        Each restored community also queues a sync request on its topic, so other serving
        peers fill in whatever arrived while this worker was down.

        Raises:
            StorageError: a database could not be read or holds rows ``restore`` refuses.
        """
        restored = 0
        for server in self.store.communities():
            if server in self.node.communities:
                continue
            community = Community(self.identity, server)
            try:
                community.managed.restore(self.store.rows(server))
            except (LocalError, RemoteError) as exc:
                raise StorageError("restore", self.store.path(server), "corrupt", str(exc)) from exc
            self.node.add(community)
            self._track(server, now_ms)
            if community.ready:
                self.node.request_sync(server)
            restored += 1
        return restored

    def carry(self, server: bytes, now_ms: int) -> Community:
        """Carry ``server`` on the operator's say-so (as a SERVE request would, minus the sync).

        Probation still applies: without a SyncProvider grant it is dropped after the grace.
        """
        community = self.node.open(server)
        self._track(server, now_ms)
        return community

    def close(self) -> None:
        self.store.close()

    def stats(self) -> StorageStats:
        communities = self.node.communities.values()
        return StorageStats(
            communities=len(self.node.communities),
            events=sum(len(c.dag) for c in communities),
            on_probation=len(self.tenancy.probation),
            dropped_ungranted=self.dropped,
            refused_envelopes=self.refused,
            history_pages=self.history_pages,
            remote_errors=self.node.errors,
        )

    def _track(self, server: bytes, now_ms: int) -> None:
        self._topics.add(server)
        self.tenancy.watch(server, now_ms)

    # --- the shell-facing surface (that of a Node) ------------------------------------------

    def topics(self) -> list[bytes]:
        return self.node.topics()

    def drain(self) -> list[bytes]:
        out = self._outbox + self.node.drain()
        self._outbox = []
        return out

    def receive(self, envelope_bytes: bytes, now_ms: int) -> None:
        """Handle one envelope; bad input is counted in ``node.errors``, never raised.

        Raises:
            StorageError: the archive failed; this worker is done (see the module doc).
        """
        if self.failed is not None:
            raise self.failed
        node = self.node
        try:
            env = open_envelope(envelope_bytes)
            server = envelope_server(env, self._topics)
        except RemoteError:
            node.errors += 1
            return
        if env.sender == self.identity.public_key:
            return
        try:
            self._dispatch(env, envelope_bytes, server, now_ms)
        except StorageError as exc:
            self.failed = exc
            raise

    def _dispatch(self, env: Envelope, raw: bytes, server: bytes | None, now_ms: int) -> None:
        node = self.node
        if env.kind is MessageKind.HISTORY_REQUEST:
            self._on_history(env)
        elif (
            server is not None
            and server not in node.communities
            and (
                env.kind in ANSWER_KINDS
                or (env.kind is MessageKind.SERVE and not self.tenancy.can_admit(server))
            )
        ):
            self.refused += 1
        else:
            node.receive(raw, now_ms)
        if server is not None and server in node.communities:
            self._track(server, now_ms)
        self._drop_expired(self.tenancy.expired(now_ms))

    def tick(self, now_ms: int) -> None:
        """Periodic upkeep (call every second or so): re-check every community's grant.

        Raises:
            StorageError: deleting a dropped community's archive failed.
        """
        if self.failed is not None:
            raise self.failed
        try:
            self._drop_expired(self.tenancy.review(now_ms))
        except StorageError as exc:
            self.failed = exc
            raise

    # --- storage ---------------------------------------------------------------------------

    def _store(self, server: bytes, events: list[Event]) -> Iterable[bytes]:
        """The Node's store hook: commit, then return the ids (the Node then acknowledges)."""
        dag = self.node.communities[server].dag
        held = [ev for ev in events if dag.events.get(ev.id) is ev]
        return self.store.append(server, held, dag.depth)

    def _drop_expired(self, servers: list[bytes]) -> None:
        for server in servers:
            self.drop(server)
            self.dropped += 1

    def drop(self, server: bytes) -> None:
        """Stop carrying ``server`` and delete its archive."""
        self.node.remove(server)  # its exchanges and pending requests go with it
        self._topics.discard(server)
        self.tenancy.forget(server)
        self.store.delete(server)

    # --- history ---------------------------------------------------------------------------

    def _on_history(self, env: Envelope) -> None:
        try:
            request = HistoryRequest.decode(env.body)
        except RemoteError:
            self.node.errors += 1
            return
        community = self.node.communities.get(request.server)
        if community is None or not community.ready:
            return
        rows, more = self.store.history_page(
            request.server,
            request.before_depth,
            request.limit,
            before_id=request.before_id,
        )
        wires = tuple(encode([signable, sig]) for _, _, signable, sig in rows)
        cursor = (rows[-1][1], rows[-1][0]) if rows else None
        page = HistoryPage(request.request_id, request.server, wires, more, cursor)
        self._outbox.extend(self.node.drain())  # keep publication order
        self._outbox.append(
            seal(self.identity, inbox_topic(env.sender), MessageKind.HISTORY_PAGE, page.encode())
        )
        self.history_pages += 1
