"""Sync (D9), sans I/O: heads pages in, byte-budgeted batches of missing events out.

Theory of operation. A requester describes what it has as *heads* (author -> seq and id of
its latest event), paged by author id so no request carries more than ``MAX_HEADS`` entries:
page *k* covers the author-id range ``(lo, hi]`` (``None`` = open end) and lists every author
the requester knows in that range. The responder needs no session state: for each author *it*
knows in the range it sends

* everything, if the requester did not list the author (every branch, if the author forked);
* the events after the requester's seq, if it knows the requester's head id;
* nothing, if the head id is unknown and newer than anything it has (the requester is ahead);
* the author's whole history, if the head id is unknown but not newer (the author forked, so
  the requester must learn the other branch; forks are rare and bounded by rate limits).

Events are sent in the deterministic order (parents first), packed into batches of at most
``BATCH_BYTES``, then a ``SyncDone`` end-of-history marker. The requester feeds batches to its
community like any other events; anything arriving before its parents waits in the pending
buffer. Sync is symmetric: each side requests from the other, so both converge.

Snapshots (for a peer with nothing) carry a materialized state and its hash in chunks; the
receiver shows it *unverified* and verifies it by replaying the full history in the background
(``SnapshotAssembler`` + comparing ``state_hash`` after replay).
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import sha256
from typing import NamedTuple

from .dag import EventDag
from .encoding import decode, encode
from .errors import DecodeError
from .event import Event
from .managed import ManagedDag
from .state import ServerState, state_from_obj

__all__ = [
    "MAX_HEADS",
    "BATCH_BYTES",
    "SNAPSHOT_CHUNK_BYTES",
    "MAX_SNAPSHOT_BYTES",
    "Head",
    "SyncRequest",
    "SyncBatch",
    "SyncDone",
    "SnapshotRequest",
    "SnapshotChunk",
    "plan_requests",
    "answer",
    "missing_events",
    "requester_has_more",
    "snapshot_bytes",
    "snapshot_chunks",
    "heads_of",
    "is_id",
    "is_uint",
    "is_opt_id",
    "history_up_to",
    "SnapshotAssembler",
]

#: Authors per request (SEC: a bigger heads summary is a cheap way to make a peer work).
MAX_HEADS = 256
#: Event bytes per batch: a batch and its envelope fit in one 256 KiB frame.
BATCH_BYTES = 192 * 1024
SNAPSHOT_CHUNK_BYTES = 192 * 1024
#: A snapshot larger than this is refused (about a million messages).
MAX_SNAPSHOT_BYTES = 512 * 1024 * 1024
_MAX_BODY = 256 * 1024


class Head(NamedTuple):
    author: bytes
    seq: int
    id: bytes


def is_id(value: object) -> bool:
    return type(value) is bytes and len(value) == 32


def is_uint(value: object) -> bool:
    return type(value) is int and 0 <= value < 2**63


def is_opt_id(value: object) -> bool:
    return value is None or is_id(value)


class SyncRequest(NamedTuple):
    request_id: int
    server: bytes
    heads: tuple[Head, ...]
    lo: bytes | None
    hi: bytes | None

    def encode(self) -> bytes:
        heads = [[h.author, h.seq, h.id] for h in self.heads]
        return encode([self.request_id, self.server, heads, self.lo, self.hi])

    @classmethod
    def decode(cls, body: bytes) -> SyncRequest:
        v = decode(body, max_bytes=_MAX_BODY)
        if (
            type(v) is not list
            or len(v) != 5
            or not is_uint(v[0])
            or not is_id(v[1])
            or type(v[2]) is not list
            or not is_opt_id(v[3])
            or not is_opt_id(v[4])
        ):
            raise DecodeError("malformed sync request")
        if len(v[2]) > MAX_HEADS:
            raise DecodeError(f"heads summary over {MAX_HEADS} authors")
        heads = []
        for h in v[2]:
            if type(h) is not list or len(h) != 3 or not is_id(h[0]) or not is_uint(h[1]):
                raise DecodeError("malformed head")
            if not is_id(h[2]):
                raise DecodeError("malformed head")
            heads.append(Head(h[0], h[1], h[2]))
        authors = [h.author for h in heads]
        if authors != sorted(set(authors)):
            raise DecodeError("heads must be in ascending author order, once each")
        lo, hi = v[3], v[4]
        if any((lo is not None and a <= lo) or (hi is not None and a > hi) for a in authors):
            raise DecodeError("a head lies outside the request's author range")
        return cls(v[0], v[1], tuple(heads), lo, hi)


class SyncBatch(NamedTuple):
    request_id: int
    server: bytes
    events: tuple[bytes, ...]
    more: bool

    def encode(self) -> bytes:
        return encode([self.request_id, self.server, list(self.events), self.more])

    @classmethod
    def decode(cls, body: bytes) -> SyncBatch:
        v = decode(body, max_bytes=_MAX_BODY)
        if (
            type(v) is not list
            or len(v) != 4
            or not is_uint(v[0])
            or not is_id(v[1])
            or type(v[2]) is not list
            or not all(type(w) is bytes for w in v[2])
            or type(v[3]) is not bool
        ):
            raise DecodeError("malformed sync batch")
        return cls(v[0], v[1], tuple(v[2]), v[3])


class SyncDone(NamedTuple):
    """End of history for one request: ``sent`` events in total."""

    request_id: int
    server: bytes
    sent: int

    def encode(self) -> bytes:
        return encode([self.request_id, self.server, self.sent])

    @classmethod
    def decode(cls, body: bytes) -> SyncDone:
        v = decode(body, max_bytes=_MAX_BODY)
        if type(v) is not list or len(v) != 3 or not is_uint(v[0]) or not is_id(v[1]):
            raise DecodeError("malformed sync done")
        if not is_uint(v[2]):
            raise DecodeError("malformed sync done")
        return cls(v[0], v[1], v[2])


class SnapshotRequest(NamedTuple):
    request_id: int
    server: bytes

    def encode(self) -> bytes:
        return encode([self.request_id, self.server])

    @classmethod
    def decode(cls, body: bytes) -> SnapshotRequest:
        v = decode(body, max_bytes=_MAX_BODY)
        if type(v) is not list or len(v) != 2 or not is_uint(v[0]) or not is_id(v[1]):
            raise DecodeError("malformed snapshot request")
        return cls(v[0], v[1])


class SnapshotChunk(NamedTuple):
    request_id: int
    server: bytes
    part: int
    total: int
    data: bytes

    def encode(self) -> bytes:
        return encode([self.request_id, self.server, self.part, self.total, self.data])

    @classmethod
    def decode(cls, body: bytes) -> SnapshotChunk:
        v = decode(body, max_bytes=_MAX_BODY)
        if (
            type(v) is not list
            or len(v) != 5
            or not is_uint(v[0])
            or not is_id(v[1])
            or not is_uint(v[2])
            or not is_uint(v[3])
            or type(v[4]) is not bytes
            or not v[2] < v[3] <= MAX_SNAPSHOT_BYTES // SNAPSHOT_CHUNK_BYTES + 1
        ):
            raise DecodeError("malformed snapshot chunk")
        return cls(v[0], v[1], v[2], v[3], v[4])


# --- requester ------------------------------------------------------------------------------


def _heads(dag: EventDag) -> list[Head]:
    heads = []
    for author in sorted(dag.chains):
        head = dag.head(author)
        if head is not None:
            heads.append(Head(author, head.seq, head.id))
    return heads


def plan_requests(dag: EventDag, first_request_id: int) -> list[SyncRequest]:
    """Requests that together describe everything ``dag`` holds (one per page of heads)."""
    heads = _heads(dag)
    pages = [heads[i : i + MAX_HEADS] for i in range(0, len(heads), MAX_HEADS)] or [[]]
    requests = []
    lo: bytes | None = None
    for index, page in enumerate(pages):
        hi = None if index == len(pages) - 1 else page[-1].author
        requests.append(SyncRequest(first_request_id + index, dag.server_id, tuple(page), lo, hi))
        lo = hi
    return requests


# --- responder ------------------------------------------------------------------------------


def requester_has_more(dag: EventDag, request: SyncRequest) -> bool:
    """Whether ``request`` shows heads we lack (an author we do not know, or an unknown head):
    then the responder should ask the requester in turn, so sync is push-pull, not pull-only."""
    events = dag.events
    return any(h.id not in events for h in request.heads)


def missing_events(dag: EventDag, request: SyncRequest) -> list[Event]:
    """The events of ``dag`` that the requester lacks, in the deterministic order."""
    theirs = {h.author: h for h in request.heads}
    lo, hi = request.lo, request.hi
    out: list[Event] = []
    events = dag.events
    for author, chain in dag.chains.items():
        if (lo is not None and author <= lo) or (hi is not None and author > hi):
            continue
        head = theirs.get(author)
        if author in dag.fork_seq:
            # Every branch: the requester must hold both to judge the fork as we do.
            out.extend(
                e
                for e in events.values()
                if e.author == author and (head is None or e.id != head.id)
            )
            continue
        if head is None:
            start = 1
        elif head.id in events:
            start = head.seq + 1
        elif head.seq > len(chain):
            continue  # they are ahead of us on this author
        else:
            # Their head is unknown yet not newer than ours: they hold a branch we lack, so
            # the author forked; send our whole branch so they can record the fork too.
            start = 1
        out.extend(events[chain[seq]] for seq in range(start, len(chain) + 1))
    depth = dag.depth
    out.sort(key=lambda ev: (depth[ev.id], ev.id))
    return out


def answer(dag: EventDag, request: SyncRequest) -> tuple[list[SyncBatch], SyncDone]:
    """Batches (each within ``BATCH_BYTES``) and the end-of-history marker for ``request``."""
    batches: list[SyncBatch] = []
    current: list[bytes] = []
    size = 0
    sent = 0
    for ev in missing_events(dag, request):
        wire = ev.wire
        if current and size + len(wire) > BATCH_BYTES:
            batches.append(SyncBatch(request.request_id, dag.server_id, tuple(current), True))
            current, size = [], 0
        current.append(wire)
        size += len(wire) + 4
        sent += 1
    if current:
        batches.append(SyncBatch(request.request_id, dag.server_id, tuple(current), False))
    return batches, SyncDone(request.request_id, dag.server_id, sent)


# --- snapshots ------------------------------------------------------------------------------


def snapshot_bytes(managed: ManagedDag) -> bytes:
    """The current state, its hash and the heads it covers, as one canonical blob."""
    state = managed.state
    if state is None:
        raise DecodeError("nothing to snapshot yet")
    heads = [[h.author, h.seq, h.id] for h in _heads(managed.dag)]
    # The state travels as its canonical bytes, so its hash is one SHA-256 on each side.
    state_bytes = encode(state.to_obj())
    return encode(["willow/snapshot/v1", state_bytes, sha256(state_bytes).digest(), heads])


def snapshot_chunks(managed: ManagedDag, request_id: int) -> list[SnapshotChunk]:
    blob = snapshot_bytes(managed)
    parts = [blob[i : i + SNAPSHOT_CHUNK_BYTES] for i in range(0, len(blob), SNAPSHOT_CHUNK_BYTES)]
    return [
        SnapshotChunk(request_id, managed.server_id, i, len(parts), part)
        for i, part in enumerate(parts)
    ]


class SnapshotAssembler:
    """Collects chunks of one snapshot; ``state`` is unverified until history replays to it."""

    __slots__ = ("request_id", "server", "_parts", "_total")

    def __init__(self, request_id: int, server: bytes) -> None:
        self.request_id = request_id
        self.server = server
        self._parts: dict[int, bytes] = {}
        self._total: int | None = None

    def add(self, chunk: SnapshotChunk) -> bool:
        """Take a chunk; returns True once every chunk is in."""
        if chunk.request_id != self.request_id or chunk.server != self.server:
            raise DecodeError("chunk of another snapshot")
        if self._total is None:
            self._total = chunk.total
        elif chunk.total != self._total:
            raise DecodeError("snapshot chunk count changed")
        self._parts[chunk.part] = chunk.data
        if sum(map(len, self._parts.values())) > MAX_SNAPSHOT_BYTES:
            raise DecodeError("snapshot over the size cap")
        return len(self._parts) == self._total

    def result(self) -> tuple[ServerState, bytes, tuple[Head, ...]]:
        """``(state, claimed hash, heads)``; raises if the blob does not hash to its claim."""
        if self._total is None or len(self._parts) != self._total:
            raise DecodeError("snapshot incomplete")
        blob = b"".join(self._parts[i] for i in range(self._total))
        value = decode(blob, max_bytes=MAX_SNAPSHOT_BYTES)
        if (
            type(value) is not list
            or len(value) != 4
            or value[0] != "willow/snapshot/v1"
            or type(value[1]) is not bytes
            or type(value[3]) is not list
        ):
            raise DecodeError("malformed snapshot")
        claimed = value[2]
        if sha256(value[1]).digest() != claimed:
            raise DecodeError("snapshot does not match its own hash")
        # The claim is the hash of these canonical bytes; the state shown is built from them and
        # stays unverified until the history it claims replays to a state with this same hash
        # (``state_hash`` is SHA-256 of exactly such bytes), at which point the replayed state
        # replaces it.
        state = state_from_obj(decode(value[1], max_bytes=MAX_SNAPSHOT_BYTES))
        if state.server_id != self.server:
            raise DecodeError("snapshot of another community")
        try:
            heads = tuple(Head(a, s, i) for a, s, i in value[3])
        except (TypeError, ValueError):
            raise DecodeError("malformed snapshot heads") from None
        return state, claimed, heads


def history_up_to(dag: EventDag, heads: list[bytes]) -> EventDag:
    """A new DAG holding exactly ``heads`` and their ancestors (what a snapshot covered)."""
    keep: set[bytes] = set()
    stack = [h for h in heads if h in dag.events]
    while stack:
        event_id = stack.pop()
        if event_id in keep:
            continue
        keep.add(event_id)
        stack.extend(p for p in dag.events[event_id].parents if p not in keep)
    keep.add(dag.server_id)
    sub = EventDag(dag.server_id)
    nat = dag.nat
    sub.build([dag.events[i] for i in sorted(keep, key=lambda i: (nat[i], i))])
    return sub


def heads_of(events: Iterable[Event]) -> list[Head]:
    """Latest event per author among ``events`` (for tests and diagnostics)."""
    latest: dict[bytes, Event] = {}
    for ev in events:
        known = latest.get(ev.author)
        if known is None or ev.seq > known.seq:
            latest[ev.author] = ev
    return [Head(a, e.seq, e.id) for a, e in sorted(latest.items())]
