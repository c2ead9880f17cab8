"""What both workers share: which community an envelope concerns, and the SyncProvider probation.

A worker carries a community for anyone who asks (``SERVE``), but keeps it only if, once its
history has synced, the worker holds ``SyncProvider`` there (D6/D11: a grant by an admin is what
makes clients trust a worker). Until then the community is *on probation*; when
``UNGRANTED_GRACE_MS`` has passed and the worker is still not granted (or the history never
arrived), the worker drops it. A revoked grant starts a new probation. Time is passed in
(``now_ms``); nothing here reads a clock.

Workers expose the shell-facing surface of a ``Node`` (``identity``, ``topics``, ``receive``,
``drain``) plus ``tick``, so a connection shell takes the worker where it would take a node:
``PeerConnection(worker, ...)``. It must call ``worker.receive``, never ``worker.node.receive``
(which would bypass history pages, probation and the replay worker's bounds).
"""

from __future__ import annotations

from typing import Protocol

from willow_core.encoding import decode_parts
from willow_core.identity import Identity
from willow_core.node import Node
from willow_core.wire import MAX_BODY_BYTES, Envelope, MessageKind, community_topic

__all__ = [
    "UNGRANTED_GRACE_MS",
    "MAX_PROBATION",
    "Peer",
    "Tenancy",
    "TopicIndex",
    "ANSWER_KINDS",
    "envelope_server",
]

#: How long a worker carries a community in which it holds no SyncProvider grant: enough for
#: the history (with the grant, if any) to sync after a SERVE request.
UNGRANTED_GRACE_MS = 5 * 60_000
#: Communities on probation at once; further SERVE requests are ignored until one resolves
#: (anyone can send SERVE, so without this cap strangers could fill a worker).
MAX_PROBATION = 64

#: Kinds whose body is an array with the server id in slot 1 (slot 0 for STORED and SERVE).
_SERVER_AT_1 = frozenset(
    {
        MessageKind.SYNC_REQUEST,
        MessageKind.SYNC_BATCH,
        MessageKind.SYNC_DONE,
        MessageKind.SNAPSHOT_REQUEST,
        MessageKind.SNAPSHOT_CHUNK,
        MessageKind.HISTORY_REQUEST,
        MessageKind.HISTORY_PAGE,
    }
)

#: Answers to our own requests. One about a community the worker no longer carries is dropped
#: before it reaches the Node (which would look up the forgotten community's sync progress).
ANSWER_KINDS = frozenset(
    {MessageKind.SYNC_BATCH, MessageKind.SYNC_DONE, MessageKind.SNAPSHOT_CHUNK}
)


class Peer(Protocol):
    """What a connection shell drives: a ``Node`` or a worker."""

    identity: Identity

    def topics(self) -> list[bytes]: ...

    def receive(self, envelope_bytes: bytes, now_ms: int) -> None: ...

    def drain(self) -> list[bytes]: ...


class TopicIndex:
    """community topic -> server id, for the communities a node carries."""

    __slots__ = ("_servers",)

    def __init__(self) -> None:
        self._servers: dict[bytes, bytes] = {}

    def add(self, server: bytes) -> None:
        self._servers[community_topic(server)] = server

    def discard(self, server: bytes) -> None:
        self._servers.pop(community_topic(server), None)

    def get(self, topic: bytes) -> bytes | None:
        return self._servers.get(topic)


def envelope_server(env: Envelope, topics: TopicIndex) -> bytes | None:
    """The community an envelope concerns, if it names one (a cheap parse: no canonical proof).

    Raises:
        DecodeError: the body is not CBOR within the cap.
    """
    if env.kind is MessageKind.EVENTS:
        return topics.get(env.topic)
    # Every other kind names its community in the body, and the Node acts on *that* one
    # (whatever topic the envelope came on), so route by the body too.
    if env.kind in _SERVER_AT_1:
        slot = 1
    elif env.kind in (MessageKind.STORED, MessageKind.SERVE):
        slot = 0
    else:
        return None
    value = decode_parts(env.body, max_bytes=MAX_BODY_BYTES)
    if type(value) is list and len(value) > slot:
        candidate = value[slot]
        if type(candidate) is bytes and len(candidate) == 32:
            return candidate
    return None


class Tenancy:
    """Communities on probation: carried, but not (yet) backed by a SyncProvider grant."""

    __slots__ = ("node", "grace_ms", "max_probation", "probation")

    def __init__(
        self,
        node: Node,
        *,
        grace_ms: int = UNGRANTED_GRACE_MS,
        max_probation: int = MAX_PROBATION,
    ) -> None:
        self.node = node
        self.grace_ms = grace_ms
        self.max_probation = max_probation
        #: server -> when probation started; insertion order is (with a monotonic clock) age
        self.probation: dict[bytes, int] = {}

    def granted(self, server: bytes) -> bool:
        """Whether the community's replayed history grants this worker SyncProvider."""
        return self.node.trusted(server, self.node.identity.public_key)

    def can_admit(self, server: bytes) -> bool:
        """Whether a SERVE for ``server`` may be taken on now."""
        node = self.node
        if server in node.communities:
            return True
        return (
            len(self.probation) < self.max_probation
            and len(node.communities) < node.max_communities
        )

    def watch(self, server: bytes, now_ms: int) -> None:
        """Update ``server``'s probation: end it once granted, start it when not granted."""
        if self.granted(server):
            self.probation.pop(server, None)
        elif server not in self.probation:
            self.probation[server] = now_ms

    def forget(self, server: bytes) -> None:
        self.probation.pop(server, None)

    def expired(self, now_ms: int) -> list[bytes]:
        """Communities whose probation ran out without a grant: the caller drops them.

        Granted ones leave probation. Only the oldest entries are examined, so a call costs
        O(1) amortized; with a clock that steps back, an entry waits a little longer.
        """
        drop: list[bytes] = []
        probation = self.probation
        while probation:
            server, since = next(iter(probation.items()))
            if now_ms - since < self.grace_ms:
                break
            del probation[server]
            if server in self.node.communities and not self.granted(server):
                drop.append(server)
        return drop

    def review(self, now_ms: int) -> list[bytes]:
        """Re-check every carried community (catches revoked grants); returns what to drop."""
        for server in list(self.node.communities):
            self.watch(server, now_ms)
        return self.expired(now_ms)
